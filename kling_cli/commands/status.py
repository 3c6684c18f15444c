"""`kling status`: where a job stands, from the journal and the provider; resume it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kling_cli.commands import common
from kling_cli.commands.common import (
    JSON_OPTION,
    OPEN_OPTION,
    PREVIEW_OPTION,
    PROVIDER_OPTION,
    REVEAL_OPTION,
    load_config,
)
from kling_cli.errors import ExitCode, KlingError
from kling_cli.ui import Output, describe_job, envelope, progress_for

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord


def status(
    ctx: typer.Context,
    identifier: str | None = common.latest_job_argument(
        "A job id (see `kling jobs`) or a provider task id [default: the latest job]."
    ),
    provider: str | None = PROVIDER_OPTION,
    wait: bool = typer.Option(False, "--wait", help="Poll until every task has ended."),
    download: bool = typer.Option(
        False, "--download", help="Save the images that are not on disk yet."
    ),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Seconds this command may take (finite, > 0)."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Where to save [default: where the job was started]."
    ),
    open_images: bool = OPEN_OPTION,
    reveal: bool = REVEAL_OPTION,
    preview: bool = PREVIEW_OPTION,
    as_json: bool = JSON_OPTION,
) -> int:
    """Ask the provider where a job stands; with --wait and --download, finish it."""
    from kling_cli.deadline import check_timeout
    from kling_cli.jobs.generation import job_status
    from kling_cli.jobs.pickup import cannot_fetch

    output: Output = ctx.obj
    check_timeout(timeout)
    job, result = job_status(
        load_config(output),
        identifier,
        provider,
        wait=wait,
        download=download,
        timeout=timeout,
        output_dir=output_dir,
        progress_for=lambda name, task_ids: progress_for(output, name, task_ids=task_ids),
        note=output.note,
    )
    if result is None:
        # Answered from the journal (kling_cli.jobs.pickup): a forgotten task is exit 3.
        exit_code = print_job(output, job, cannot_fetch(job))
    else:
        for warning in result.warnings:
            output.warn(warning)
        exit_code = print_job(output, job, result.error)
    from kling_cli.commands.look import images_on_disk, launch_saved, preview_saved

    # Every image of the job on disk, saved now or by an earlier run.
    paths = images_on_disk(job)
    if preview:
        preview_saved(output, paths)
    launch_saved(output, paths, open_images=open_images, reveal=reveal)
    return exit_code


def print_job(output: Output, job: JobRecord, error: KlingError | None) -> int:
    from kling_cli.commands.job_record import task_lines
    from kling_cli.jobs.pickup import Standing, standing
    from kling_cli.jobs.state import RESUMABLE, never_requested, resume_command
    from kling_cli.jobs.views import recorded_files

    files = recorded_files(job)
    exit_code = int(error.exit_code) if error else int(ExitCode.OK)
    if output.json_mode:
        described = describe_job(job)
        described["tasks"] = [
            {
                "task_id": task.task_id,
                "state": task.state,
                "provider_status": task.provider_status,
                "error": task.error,
                "cost": task.cost,
                "outputs": [out.url for out in task.outputs],
            }
            for task in job.tasks
        ]
        described["never_requested"] = never_requested(job)
        attempts = _attempts(job)
        if attempts:
            described["attempts"] = attempts
        output.emit_json(envelope(exit_code=exit_code, job=described, files=files, error=error))
        return exit_code
    emulated = " (emulated)" if job.emulated else ""
    output.result(f"{job.id}  {job.provider}{emulated}  {job.state}")
    for task in job.tasks:
        for line in task_lines(task, "task "):
            output.result(line)
    missing = never_requested(job)
    if missing:
        output.note(
            f"{missing} of the {job.request.get('num_images')} images asked for were never "
            "requested (the run stopped before submitting them), so nothing was charged for "
            "them; generate them again if you need them."
        )
    if job.state == "not_created":
        output.note("The provider never received this job, so nothing was charged; run it again.")
    if job.state == "may_exist" and not any(task.task_id for task in job.tasks):
        output.note(
            "Its submit was never answered and the provider cannot be asked by our id: check "
            "the provider's dashboard before submitting again."
        )
    if error is not None:
        output.error(error)
    elif job.state in RESUMABLE and not job.emulated and standing(job) is Standing.FOLLOW:
        output.note(f"Finish it with: {resume_command(job.id)}")
    return exit_code


def _attempts(job: JobRecord) -> list[dict[str, Any]]:
    """The providers a routed job was sent to, in order, as `generate --json` shows them."""
    from kling_cli.attempts import attempts_of
    from kling_cli.jobs.record import open_journal

    journal = open_journal()
    try:
        return [attempt.to_json() for attempt in attempts_of(journal, job.id)]
    finally:
        journal.close()
