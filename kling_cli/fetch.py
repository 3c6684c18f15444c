"""Fetching a job's results: wait for each task, then save the images not on disk yet, all
through one engine and within its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kling_cli.download import Placement, SavedFile, sync_directory
from kling_cli.engine import job_summary, resume_command
from kling_cli.errors import DownloadError, KlingError, WaitTimeoutError

if TYPE_CHECKING:
    from kling_cli.engine import Engine
    from kling_cli.providers.base import TaskHandle, TaskStatus

# A job's images download this many at a time.
MAX_PARALLEL_DOWNLOADS = 4

# A file stem for (task id, image number in the job, images in the job).
NameFor = Callable[[str, int, int], str]


@dataclass
class JobOutcome:
    finished: list[tuple[TaskHandle, TaskStatus]] = field(default_factory=list)
    files: list[SavedFile] = field(default_factory=list)
    failures: list[KlingError] = field(default_factory=list)


async def finish(
    engine: Engine,
    submitted: list[tuple[TaskHandle, TaskStatus]],
    output_dir: Path,
    name_for: NameFor,
    *,
    placement: Placement = "keep",
    on_disk: Collection[str] = (),
    save: bool = True,
) -> JobOutcome:
    """Wait for every task, then download the images not yet on disk, all within the
    engine's deadline. A task that fails does not stop the others: what was made is
    saved, and the failures are returned. Images are numbered across the whole job, so a
    fanned-out `-n 3` gives 1, 2, 3."""
    outcomes = await asyncio.gather(
        *(engine.wait(task, status) for task, status in submitted),
        return_exceptions=True,
    )
    result = JobOutcome()
    for (task, _), outcome in zip(submitted, outcomes, strict=True):
        if isinstance(outcome, KlingError):
            result.failures.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            result.finished.append((task, outcome))
    count = sum(len(status.outputs) for _, status in result.finished)
    first = 1
    # Without `save` (the provider uploads the images itself, --upload-to): waited for only.
    for task, status in result.finished if save else ():
        try:
            result.files += await download(
                engine,
                task,
                status,
                output_dir,
                name_for,
                first,
                count,
                placement=placement,
                on_disk=on_disk,
            )
        except DownloadError as exc:
            result.failures.append(exc)
        first += len(status.outputs)
    return result


async def download(
    engine: Engine,
    task: TaskHandle,
    status: TaskStatus,
    output_dir: Path,
    name_for: NameFor,
    first_index: int = 1,
    count: int | None = None,
    *,
    placement: Placement = "keep",
    on_disk: Collection[str] = (),
) -> tuple[SavedFile, ...]:
    semaphore = asyncio.Semaphore(MAX_PARALLEL_DOWNLOADS)
    total = count if count is not None else len(status.outputs)

    async def fetch(index: int, url: str) -> SavedFile:
        stem = name_for(task.task_id, index, total)
        async with semaphore:
            return await engine.download_one(url, output_dir, stem, placement)

    # Every download of the task runs to its end (none is left running unattended after
    # another failed), so that all the images that did land are made durable and told.
    outcomes = await asyncio.gather(
        *(
            fetch(index, output.url)
            for index, output in enumerate(status.outputs, start=first_index)
            if output.url not in on_disk
        ),
        return_exceptions=True,
    )
    files = tuple(outcome for outcome in outcomes if isinstance(outcome, SavedFile))
    if files:
        sync_directory(output_dir)
    # Told only now: each image's bytes were fsynced before its name appeared, and the
    # folder's one fsync above made the names durable; a journal or a reader told earlier
    # could be left naming a file a power cut took away.
    for saved in files:
        engine.listener.saved(task, saved)
    for outcome in outcomes:
        if isinstance(outcome, DownloadError | WaitTimeoutError):
            outcome.job = job_summary(task, status)
            outcome.hint = outcome.hint or resume_command(task)
            raise outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return files
