"""The `--json` contract: one pydantic model per output, and the JSON Schema generated from them.

Every `--json` object carries `schema_version` (`kling_cli.ui.JSON_SCHEMA_VERSION`). Within a
version, fields may be added, never renamed, dropped or retyped; doing so bumps the version
(tests/test_contract.py holds the schemas to a checked-in snapshot of each version).

The generated schemas ship as `kling_cli/schemas.json`, which `kling schema` prints as is: the
models (and pydantic) are loaded only to regenerate that file (`python -m kling_cli.schemas`)
and by the tests, never by a command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from kling_cli.ui import JSON_SCHEMA_VERSION

SCHEMA_FILE = Path(__file__).with_name("schemas.json")


class _Model(BaseModel):
    # An undeclared field fails validation: a renamed field is caught, not silently accepted.
    model_config = ConfigDict(extra="forbid")


class ErrorInfo(_Model):
    code: str
    message: str
    hint: str | None


class SavedImage(_Model):
    """An image on disk; `size_mismatch` (generate only): its size is not the documented one."""

    path: str
    width: int | None
    height: int | None
    bytes: int | None
    sha256: str | None
    url: str | None
    size_mismatch: bool = False


class ExistingImage(_Model):
    """`generate --skip-existing`: a file that was already there, so nothing was submitted."""

    path: str
    skipped: Literal[True]


class Attempt(_Model):
    """One provider a routed job (`-p a,b,c`, `-p auto`) was sent to: `outcome` is a refusal
    that created nothing (`never_sent`, `key_rejected`, `out_of_credits`, `rate_limited`,
    `refused`) or the state the job ended in there; `job_id` the journal job of that attempt."""

    provider: str
    outcome: str
    error: str | None
    job_id: str


class JobSummary(_Model):
    """`cost` in USD as the provider reported it; null when unknown or emulated. `attempts`:
    only for a job routed over several providers, each provider it was sent to, in order."""

    id: str
    provider: str
    task_id: str | None
    state: str
    task_ids: list[str]
    cost: float | None
    emulated: bool
    attempts: list[Attempt] | None = None


class TaskStatus(_Model):
    task_id: str | None
    state: str
    provider_status: str | None
    error: str | None
    cost: float | None
    outputs: list[str]


class StatusJob(JobSummary):
    tasks: list[TaskStatus]
    never_requested: int


class Variant(_Model):
    """One aspect ratio of `generate -a 16:9,1:1,...`: its job (null when it was not
    submitted), its images and its error. `skip_reason` says why a ratio was not submitted:
    `interrupted`, or the account's refusal of an earlier ratio (`out_of_credits`,
    `key_rejected`), after which nothing more was sent."""

    aspect_ratio: str
    exit_code: int
    job: JobSummary | None
    files: list[SavedImage]
    error: ErrorInfo | None
    skip_reason: str | None = None


class Envelope(_Model):
    """generate (also --no-wait and --skip-existing), status, and every command's errors.

    generate with several aspect ratios: `variants` holds one entry per ratio, `files` every
    image of them all, `job` is null, `error` the first variant's error; `report` is the
    gallery written (generate --report, or a multi-ratio run's default)."""

    schema_version: Literal[1]
    status: Literal["success", "error"]
    exit_code: int
    job: StatusJob | JobSummary | None
    files: list[SavedImage | ExistingImage]
    error: ErrorInfo | None
    variants: list[Variant] | None = None
    report: str | None = None


class RequestPreview(_Model):
    """A request a real run would send, credentials shown as `<redacted>`."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any


class RouteEntry(_Model):
    """A provider considered for a request: `order` in which a run tries it (null: it cannot
    serve the request, `unable` says why), and its estimated cost in USD."""

    provider: str
    name: str
    order: int | None
    estimated_cost: float
    key_configured: bool
    unable: str | None


class DryRun(Envelope):
    """`route`: only with several providers (`-p a,b,c`, `-p auto`): the failover order."""

    dry_run: Literal[True]
    provider: str
    key_configured: bool
    requests: list[RequestPreview]
    estimated_cost: float
    route: list[RouteEntry] | None = None


class ProvidersRoute(_Model):
    """`kling providers route`: the provider a run would choose (null: none can serve)."""

    schema_version: Literal[1]
    chosen: str | None
    route: list[RouteEntry]


class BatchDryRunItem(_Model):
    id: str
    line: int
    provider: str
    requests: list[RequestPreview]


class BatchDryRun(Envelope):
    dry_run: Literal[True]
    items: list[BatchDryRunItem]
    estimated_cost: float


class ManifestEntry(_Model):
    """One batch item, as `manifest.json` records it. `request` is the validated request;
    `provider` the one that made it; `attempts` (a batch spread over several providers
    only): each provider it was sent to, in order."""

    id: str
    line: int
    provider: str
    status: Literal["succeeded", "failed", "skipped", "interrupted"]
    job_id: str | None
    task_ids: list[str]
    request: dict[str, Any]
    files: list[dict[str, Any]]
    cost: float | None
    error: str | None
    skip_reason: str | None
    attempts: list[Attempt] | None = None


class BatchItemLine(_Model):
    schema_version: Literal[1]
    item: ManifestEntry


class NotSubmitted(_Model):
    id: str
    line: int
    reason: str | None


class Summary(_Model):
    succeeded: int
    failed: int
    skipped: int
    interrupted: int
    not_submitted: list[NotSubmitted]
    images: int
    cost: float
    estimated_cost: float
    manifest: str
    # The gallery written beside the manifest; None with --no-report.
    report: str | None
    exit_code: int


class BatchSummaryLine(_Model):
    schema_version: Literal[1]
    summary: Summary


class BatchMerge(_Model):
    schema_version: Literal[1]
    manifest: str


class ReportWritten(_Model):
    """`kling report`: the gallery page written."""

    schema_version: Literal[1]
    report: str


class ListedJob(JobSummary):
    prompt: str


class JobsList(_Model):
    schema_version: Literal[1]
    jobs: list[ListedJob]


class PruneCounts(_Model):
    before: str  # the date given, ISO 8601
    removed: int
    kept_unfinished: int
    bytes_before: int
    bytes_after: int
    vacuumed: bool


class JobsPrune(_Model):
    schema_version: Literal[1]
    prune: PruneCounts


class RecordedOutput(_Model):
    url: str
    path: str | None
    sha256: str | None
    bytes: int | None
    width: int | None
    height: int | None


class RecordedTask(_Model):
    task_id: str | None
    client_task_id: str | None
    state: str
    provider_status: str | None
    error: str | None
    cost: float | None
    outputs: list[RecordedOutput]


class JobDetail(JobSummary):
    request: dict[str, Any]
    output_dir: str | None
    error: str | None
    tasks: list[RecordedTask]


class JobShow(_Model):
    schema_version: Literal[1]
    job: JobDetail


class Capabilities(_Model):
    min_references: int
    max_references: int
    min_prompt_chars: int
    auto_aspect_needs_references: bool
    max_images_per_task: int
    native_num_images: bool
    negative_prompt: bool
    modes: list[str]
    aspect_ratios: list[str]
    output_formats: list[str]
    push: list[str]
    local_files: str
    # The field a --webhook goes in (`?name=`: a query parameter); null: none documented.
    webhook: str | None = None
    output_quality: bool = False
    upload_to: bool = False
    safety: bool = False
    url_ttl: bool = False


class Provider(_Model):
    """`price_per_image_usd` in USD, from `price_source` as of `price_as_of`."""

    id: str
    name: str
    key_configured: bool
    key_source: str | None
    capabilities: Capabilities
    price_per_image_usd: float
    price_source: str
    price_as_of: str
    docs: str
    resume: str
    unanswered_submit: Literal["lookup", "idempotent", "unknown"]
    copy_of: str | None
    base_url: str
    service_urls: dict[str, str]
    key_env_vars: list[str]
    secret_env_vars: list[str]
    # Documented request options kling-cli does not expose, with the reason.
    not_offered: dict[str, str] = {}


class ProvidersList(_Model):
    schema_version: Literal[1]
    providers: list[Provider]


class ProviderShow(_Model):
    schema_version: Literal[1]
    provider: Provider


class Setting(_Model):
    """`value`: keys masked; `source`: where a key comes from (a variable, the config file)."""

    name: str
    value: str | None
    source: str | None


class ConfigList(_Model):
    schema_version: Literal[1]
    path: str
    settings: list[Setting]


# `kling schema COMMAND`: what a command prints with --json, one object per line. A command that
# fails prints the error envelope, so every command's schema admits it.
OUTPUTS: dict[str, Any] = {
    "generate": Envelope | DryRun,
    "status": Envelope,
    "ingest": Envelope,
    "batch": BatchItemLine | BatchSummaryLine | BatchDryRun | Envelope,
    "batch merge": BatchMerge | Envelope,
    "report": ReportWritten | Envelope,
    "jobs": JobsList | Envelope,
    "jobs show": JobShow | Envelope,
    "jobs prune": JobsPrune | Envelope,
    "providers": ProvidersList | Envelope,
    "providers show": ProviderShow | Envelope,
    "providers route": ProvidersRoute | Envelope,
    "config list": ConfigList | Envelope,
}


def build() -> dict[str, Any]:
    """Every command's schema, keyed by command, as `kling_cli/schemas.json` ships them."""
    assert JSON_SCHEMA_VERSION == 1, "update the Literal[1] fields with the version"
    commands = {}
    for command, model in OUTPUTS.items():
        schema = TypeAdapter(model).json_schema()
        commands[command] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:kling-image-cli:schema:{JSON_SCHEMA_VERSION}:" + command.replace(" ", "-"),
            "title": f"kling {command} --json",
            **schema,
        }
    return {"schema_version": JSON_SCHEMA_VERSION, "commands": commands}


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(render(), encoding="utf-8")
