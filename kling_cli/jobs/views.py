"""How a job is shown: the `job` object of `--json`, its files as recorded or as saved by this
run, and paths as the user would write them. Pure data: no I/O but checking a file exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.download import SavedFile
    from kling_cli.journal import JobRecord


def describe_job(job: JobRecord) -> dict[str, Any]:
    """The `job` object of the JSON envelope: the local job id, the first task's provider id
    (all of them in `task_ids` when `-n` was fanned out), the state, the reported cost in USD
    (None when an emulator made it: no money was spent), and whether it was emulated."""
    task_ids = [task.task_id for task in job.tasks if task.task_id]
    costs = [task.cost for task in job.tasks if task.cost is not None]
    return {
        "id": job.id,
        "provider": job.provider,
        "task_id": task_ids[0] if task_ids else None,
        "state": job.state,
        "task_ids": task_ids,
        "cost": round(sum(costs), 6) if costs and not job.emulated else None,
        "emulated": job.emulated,
    }


def shown_path(path: str) -> str:
    """A recorded (absolute) path as the user would write it: relative to the working
    directory when it is under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def recorded_files(job: JobRecord) -> list[dict[str, Any]]:
    """The images of the job saved so far, as the journal recorded them (no disk access)."""
    return [
        {
            "path": shown_path(out.path),
            "width": out.width,
            "height": out.height,
            "bytes": out.bytes,
            "sha256": out.sha256,
            "url": out.url,
        }
        for task in job.tasks
        for out in task.outputs
        if out.path
    ]


def saved_file_entry(saved: SavedFile) -> dict[str, Any]:
    """An image saved by this run, in the shape `recorded_files` gives recorded ones."""
    return {
        "path": str(saved.path),
        "width": saved.width,
        "height": saved.height,
        "bytes": saved.bytes,
        "sha256": saved.sha256,
        "url": saved.url,
    }


def saved_urls(job: JobRecord) -> set[str]:
    """The image URLs of the job whose file is on disk."""
    return {
        out.url
        for task in job.tasks
        for out in task.outputs
        if out.path and Path(out.path).exists()
    }
