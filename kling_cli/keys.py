"""API keys: where a provider's key comes from (environment, then the config file), whether
it can be sent at all, and how it is shown without being given away."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kling_cli.errors import ConfigError

if TYPE_CHECKING:
    from kling_cli.config import ConfigFile
    from kling_cli.providers.catalog import ProviderInfo


@dataclass(frozen=True)
class ResolvedKey:
    value: str
    source: str  # an environment variable's name, or "config file"


def resolve_key(
    provider: ProviderInfo,
    config: ConfigFile,
    environ: Mapping[str, str] | None = None,
    *,
    check: bool = True,
) -> ResolvedKey | None:
    """`KLING_<ID>_API_KEY`, then the provider's own variable, then the config file. With
    `check`, a key that cannot be sent in an HTTP header raises ConfigError (exit 4) naming
    where it came from; listings pass `check=False` to show it anyway."""
    environ = os.environ if environ is None else environ
    found = _first_key(
        (provider.key_env_var, *provider.key_env_vars),
        config.get(f"providers.{provider.id}.api_key"),
        environ,
    )
    if found is not None and check:
        check_key_text(
            found, f"{provider.name} {'access' if provider.needs_secret_key else 'API'} key"
        )
    return found


def resolve_secret_key(
    provider: ProviderInfo,
    config: ConfigFile,
    environ: Mapping[str, str] | None = None,
    *,
    check: bool = True,
) -> ResolvedKey | None:
    """For key-pair providers: `KLING_<ID>_SECRET_KEY`, the provider's own variable, then the
    config file; checked as `resolve_key` checks."""
    if not provider.needs_secret_key:
        return None
    environ = os.environ if environ is None else environ
    found = _first_key(
        (provider.secret_env_var, *provider.secret_env_vars),
        config.get(f"providers.{provider.id}.secret_key"),
        environ,
    )
    if found is not None and check:
        check_key_text(found, f"{provider.name} secret key")
    return found


def _first_key(
    names: tuple[str, ...], stored: Any, environ: Mapping[str, str]
) -> ResolvedKey | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return ResolvedKey(value, name)
    if isinstance(stored, str) and stored.strip():
        return ResolvedKey(stored.strip(), "config file")
    return None


def key_problem(value: str) -> str | None:
    """Why a key cannot be sent as an HTTP header value (printable ASCII only, RFC 9110
    field values), naming the character's position but never the key; None when it can."""
    for position, char in enumerate(value, start=1):
        if char in "\r\n":
            return f"a line break at character {position}"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"a control character (U+{ord(char):04X}) at character {position}"
        if ord(char) > 0x7E:
            return f"a non-ASCII character (U+{ord(char):04X}) at character {position}"
    return None


def check_key_text(key: ResolvedKey, what: str) -> None:
    """Raise ConfigError (exit 4) for a key that could not be sent, before any request."""
    problem = key_problem(key.value)
    if problem is None:
        return
    source = "the config file" if key.source == "config file" else key.source
    raise ConfigError(
        f"The {what} from {source} contains {problem}; keys are printable ASCII, so it "
        "cannot be sent. Copy the key again without it.",
        hint="Nothing was sent.",
    )


def mask_key(key: str) -> str:
    """Enough to tell two keys apart, never enough to use one."""
    return f"****{key[-4:]}" if len(key) >= 16 else "****"
