"""What the Python API (`kling_cli.api`) returns: a saved image, a job as recorded, a
provider, a batch item; and how the jobs layer's results become them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.attempts import Attempt
    from kling_cli.jobs.life import JobResult
    from kling_cli.journal import JobRecord


@dataclass(frozen=True)
class Image:
    """A saved image: its path, size in pixels, length in bytes and SHA-256 (hex)."""

    path: Path
    width: int
    height: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Job:
    """A job as recorded: its local id, provider, provider task ids, state (`succeeded`,
    `submitted`, `running`, ...), reported cost in USD (None when unknown or emulated),
    whether the emulator made it, and the images saved so far."""

    id: str
    provider: str
    task_ids: tuple[str, ...]
    state: str
    cost: float | None
    emulated: bool
    images: tuple[Image, ...]
    # A job sent to several providers (`provider="a,b"` or "auto"): each it was sent to.
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class ProviderSummary:
    """A provider that serves Kling Image O1: id, name, listed USD per image, and whether a
    key is configured for it."""

    id: str
    name: str
    usd_per_image: float
    key_configured: bool


@dataclass(frozen=True)
class BatchItemResult:
    """One batch item as it ended: its id, `status` (`succeeded`, `failed`, `skipped`,
    `interrupted`), job id and task ids, the images saved, reported cost in USD, the error
    message of a failed item and the `skip_reason` of a skipped one (`done`, `budget`,
    `unknown_outcome`, ...)."""

    id: str
    status: str
    job_id: str | None
    task_ids: tuple[str, ...]
    images: tuple[Image, ...]
    cost: float | None
    error: str | None
    skip_reason: str | None


def batch_item(result: Any) -> BatchItemResult:
    return BatchItemResult(
        result.item.item.item_id,
        result.status,
        result.job_id,
        tuple(result.task_ids),
        tuple(
            Image(
                Path(file["path"]),
                file.get("width") or 0,
                file.get("height") or 0,
                file.get("bytes") or 0,
                file.get("sha256") or "",
            )
            for file in result.files
        ),
        result.cost,
        result.error,
        result.skip_reason,
    )


def job_of(result: JobResult) -> Job:
    if result.error is not None:
        raise result.error
    if result.record is not None:
        import dataclasses

        return dataclasses.replace(job_from_record(result.record), attempts=tuple(result.attempts))
    summary = result.job
    return Job(
        summary["id"],
        summary["provider"],
        tuple(summary["task_ids"]),
        summary["state"],
        summary["cost"],
        summary["emulated"],
        tuple(
            Image(saved.path, saved.width, saved.height, saved.bytes, saved.sha256)
            for saved in result.files
        ),
        tuple(result.attempts),
    )


def job_from_record(record: JobRecord) -> Job:
    from kling_cli.jobs.views import describe_job

    summary = describe_job(record)
    images = tuple(
        Image(Path(out.path), out.width or 0, out.height or 0, out.bytes or 0, out.sha256 or "")
        for task in record.tasks
        for out in task.outputs
        if out.path
    )
    return Job(
        record.id,
        record.provider,
        tuple(summary["task_ids"]),
        record.state,
        summary["cost"],
        record.emulated,
        images,
    )
