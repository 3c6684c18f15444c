"""A job's state, from its tasks and from how the command that ran it stopped; and what the
user is told to do next. One place, so `generate`, `status` and `batch` agree."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import traceback
from typing import TYPE_CHECKING

from kling_cli.errors import (
    DownloadError,
    InterruptedByUser,
    JournalError,
    KlingError,
    NetworkError,
    SaveError,
    TaskFailedError,
    WaitTimeoutError,
    signal_number,
)
from kling_cli.journal import MAY_EXIST, NOT_CREATED, NOT_FOUND, SUBMITTING

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord

# Every state a job can be recorded in (the journal's `jobs.state`).
JOB_STATES = (
    "submitting",
    "submitted",
    "running",
    "generated",
    "succeeded",
    "partial",
    "failed",
    "timed_out",
    "interrupted",
    "download_failed",
    MAY_EXIST,
    NOT_CREATED,
    NOT_FOUND,
    "error",
)
# Job states that `kling status ID --wait --download` can take further.
RESUMABLE = frozenset(
    {"submitted", "generated", "running", "timed_out", "interrupted", "download_failed", "error"}
)


def job_state_after(error: BaseException | None) -> str:
    """The job's state once a command stops, from how it stopped."""
    if error is None:
        return "succeeded"
    for kind, state in (
        (TaskFailedError, "failed"),
        (WaitTimeoutError, "timed_out"),
        (InterruptedByUser, "interrupted"),
        (KeyboardInterrupt, "interrupted"),
        (asyncio.CancelledError, "interrupted"),
        (DownloadError, "download_failed"),
        (NetworkError, MAY_EXIST),
    ):
        if isinstance(error, kind):
            return state
    return "error"


BUG_HINT = "This is a bug in kling-cli; rerun with KLING_DEBUG=1 for a traceback and report it."


def classify(error: BaseException) -> KlingError:
    """Any failure as the error the user is shown, with its documented exit code: what the
    environment did (a full disk, a locked journal) is never reported as a bug."""
    if isinstance(error, KlingError):
        return error
    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return InterruptedByUser("Interrupted.", signum=signal_number(error))
    if isinstance(error, sqlite3.Error):
        return JournalError(f"The jobs journal could not be written ({error}).")
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return SaveError(f"Cannot save the images{where}: {error.strerror or error}.")
    if os.environ.get("KLING_DEBUG"):
        traceback.print_exception(error)
    return KlingError(f"Unexpected {type(error).__name__}: {error}", hint=BUG_HINT)


def never_requested(job: JobRecord) -> int:
    """Images the job asked for whose task was never submitted (the run stopped first)."""
    asked = int(job.request.get("num_images") or 0)
    requested = sum(task.expected_images or 0 for task in job.tasks)
    return max(asked - requested, 0) if job.tasks else 0


def incomplete(job: JobRecord) -> str | None:
    """Why a job whose tasks that ran are done is still not done, or None: images its fan-out
    never requested, or tasks whose submit may exist unseen (no answer, no way to ask)."""
    missing = never_requested(job)
    unseen = sum(1 for t in job.tasks if not t.task_id and t.state in (SUBMITTING, MAY_EXIST))
    parts = []
    if missing:
        parts.append(f"{missing} of its images were never requested (not charged)")
    if unseen:
        parts.append(f"{unseen} task(s) may exist unseen (check the provider's dashboard)")
    return f"incomplete: {'; '.join(parts)}" if parts else None


def overall_state(job: JobRecord) -> str:
    """The job's state from its tasks as recorded, after a `kling status` refresh."""
    states = {task.state for task in job.tasks}
    if not states or states == {NOT_CREATED}:
        return NOT_CREATED
    states.discard(NOT_CREATED)
    if states == {NOT_FOUND}:
        return NOT_FOUND
    # A task the provider forgot made no images this job can have: as good as failed.
    states = {"failed" if state == NOT_FOUND else state for state in states}
    if states & {SUBMITTING, MAY_EXIST} and not states - {SUBMITTING, MAY_EXIST}:
        return MAY_EXIST
    if states <= {"failed", "succeeded"} and "failed" in states:
        return "failed" if "succeeded" not in states else "partial"
    if states == {"succeeded"}:
        expected = sum(len(task.outputs) for task in job.tasks)
        if job.images_on_disk < expected:
            return "generated"
        return "partial" if never_requested(job) else "succeeded"
    if states <= {"succeeded", "failed", MAY_EXIST, SUBMITTING}:
        return MAY_EXIST
    return "running"


def resume_command(job_id: str) -> str:
    return f"kling status {job_id} --wait --download"
