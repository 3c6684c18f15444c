"""`kling jobs show ID` for a person: one field a line, labels aligned, lists as lists, paths as
the user would write them; the journal's values, never Python's reprs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord, TaskRecord

# The request's fields in the order a person reads them, with their label.
REQUEST_LABELS = {
    "prompt": "prompt",
    "negative_prompt": "negative prompt",
    "references": "references",
    "aspect_ratio": "aspect ratio",
    "resolution": "resolution",
    "num_images": "images",
    "output_format": "format",
    "mode": "mode",
}
WIDTH = max(len(label) for label in REQUEST_LABELS.values()) + 2


def job_lines(job: JobRecord) -> list[str]:
    from kling_cli.jobs.views import describe_job, shown_path

    created = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M:%S")
    cost = describe_job(job)["cost"]
    fields: list[tuple[str, Any]] = [
        ("job", f"{job.id}  (emulated)" if job.emulated else job.id),
        ("provider", job.provider),
        ("created", created),
        ("state", f"{job.state}: {job.error}" if job.error else job.state),
    ]
    request = dict(job.request)
    for key, label in REQUEST_LABELS.items():
        fields.append((label, request.pop(key, None)))
    fields += sorted(request.items())  # a field a later version added
    fields.append(("output dir", shown_path(job.output_dir) if job.output_dir else None))
    fields.append(("cost", f"${cost:.4f}" if cost is not None else None))
    lines = []
    for label, value in fields:
        if value in (None, "", [], ()):
            continue
        if isinstance(value, list | tuple):
            lines.append(f"{label}:")
            lines += [f"  - {item}" for item in value]
        else:
            lines.append(f"{label + ':':<{WIDTH}}{value}")
    if job.tasks:
        lines.append("tasks:")
    for task in job.tasks:
        lines += task_lines(task, "- ", sizes=True)
    return lines


def task_lines(task: TaskRecord, marker: str, *, sizes: bool = False) -> list[str]:
    """A task as a person reads it: its id after `marker`, its state, its error, and its
    images (the path where saved, else the URL; with `sizes`, their pixel size)."""
    from kling_cli.jobs.views import shown_path

    detail = f" ({task.provider_status})" if task.provider_status else ""
    lines = [f"  {marker}{task.task_id or task.client_task_id or '?'}: {task.state}{detail}"]
    if task.error:
        lines.append(f"    {task.error}")
    for out in task.outputs:
        size = f"  {out.width}x{out.height}" if sizes and out.width and out.height else ""
        lines.append(f"    {shown_path(out.path) if out.path else out.url}{size}")
    return lines
