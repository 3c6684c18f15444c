"""What a provider entry of the catalog is: its capabilities, its price, and the facts every
provider states (identity, key variables, how an interrupted job is picked up). The entries
themselves are in kling_cli.providers.catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from kling_cli.limits import ASPECT_RATIOS, OUTPUT_FORMATS

LocalFileTransport = Literal["unsupported", "inline-base64", "data-uri", "upload"]


@dataclass(frozen=True)
class Capabilities:
    max_references: int = 10
    # At least this many references: endpoints that only edit images.
    min_references: int = 0
    # Images one task can return; `-n` above this is fanned out over several tasks.
    max_images: int = 9
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    auto_aspect_needs_references: bool = False
    min_prompt_chars: int = 1
    output_formats: tuple[str, ...] = OUTPUT_FORMATS
    negative_prompt: bool = False
    modes: tuple[str, ...] = ("default",)
    local_files: LocalFileTransport = "unsupported"
    # "sync": results can come back on the submit response itself.
    push: tuple[str, ...] = ()
    # The client chooses the task id, so a task can be looked up after a submit whose answer
    # was lost, instead of submitting again.
    client_task_id_lookup: bool = False
    # The provider documents that resending the same submit with the same key is the same
    # call (Comfy Router's Idempotency-Key): a failed or unanswered submit is resent.
    idempotent_submit: bool = False
    # Delivery options (kling_cli.delivery): where the provider's docs name a completion
    # webhook, the field it goes in (`?name=` for a query parameter); the others, whether
    # the docs name the option for this model.
    webhook: str | None = None
    output_quality: bool = False
    upload_to: bool = False
    safety: bool = False
    url_ttl: bool = False


@dataclass(frozen=True)
class Price:
    usd_per_image: float
    source: str
    as_of: str


class ProviderInfo:
    """A provider's identity, key variables, capabilities and price. Subclasses set the class
    attributes; `adapter` names the `Provider` subclass with the wire code, as module:class."""

    id: str
    name: str
    default_base_url: str
    key_env_vars: tuple[str, ...]
    docs_url: str
    capabilities: Capabilities
    price: Price
    adapter: str
    # Providers that sign requests with a key pair name the secret's variables here.
    secret_env_vars: tuple[str, ...] = ()
    # Other hosts of the provider's own that take its key, by name (see `Endpoint`).
    service_urls: ClassVar[Mapping[str, str]] = {}
    # How many items a batch starts at once before the provider has accepted any, where it
    # documents a limit or advice; None: all of --concurrency. The cap then follows the
    # provider's answers (kling_cli.limiter).
    initial_concurrency: int | None = None
    # The built-in provider this one is a named copy of (a second account, a relay).
    copy_of: str | None = None
    # How a job interrupted after its submit (Ctrl-C, --timeout, a dropped connection) is
    # picked up again by `kling status`, or why it cannot be: shown by `kling providers show`.
    resume: str = "resumed by the task id its submit answered with; an unanswered submit is lost"

    @property
    def needs_secret_key(self) -> bool:
        return bool(self.secret_env_vars)

    @property
    def secret_env_var(self) -> str:
        return f"KLING_{self.id.upper()}_SECRET_KEY"

    @property
    def key_env_var(self) -> str:
        return f"KLING_{self.id.upper()}_API_KEY"

    @property
    def key_hint(self) -> str:
        """What to do about a rejected key, for the error message."""
        keys = " or ".join(f"${name}" for name in (self.key_env_var, *self.key_env_vars))
        if not self.needs_secret_key:
            return f"Check the key with `kling config set-key {self.id}` or {keys}."
        secret_names = dict.fromkeys((self.secret_env_var, *self.secret_env_vars))
        secrets = " or ".join(f"${name}" for name in secret_names)
        return (
            f"Check the access key and secret key with `kling config set-key {self.id}`, "
            f"or {keys} and {secrets}."
        )
