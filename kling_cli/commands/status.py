"""`kling status`: where a job stands, from the journal and the provider; resume it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli.commands.common import JSON_OPTION, PROVIDER_OPTION, load_config, open_session
from kling_cli.errors import ExitCode, InvalidRequestError, KlingError
from kling_cli.ui import Output, describe_job, envelope, progress_for

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord


def status(
    ctx: typer.Context,
    identifier: str | None = typer.Argument(
        None,
        metavar="[ID]",
        help="A job id (see `kling jobs`) or a provider task id [default: the latest job].",
        show_default=False,
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
    as_json: bool = JSON_OPTION,
) -> int:
    """Ask the provider where a job stands; with --wait and --download, finish it."""
    from kling_cli.deadline import check_timeout
    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.pickup import Standing, standing
    from kling_cli.jobs.record import open_journal
    from kling_cli.jobs.run import adopt_task, find_job, resume_job
    from kling_cli.naming import DEFAULT_TEMPLATE

    output: Output = ctx.obj
    check_timeout(timeout)
    journal = open_journal()
    try:
        job = find_job(journal, identifier, provider)
        if job is not None and standing(job) is not Standing.FOLLOW:
            # Finished and on disk, never created, forgotten by the provider, or unanswered
            # with no way to ask: the journal knows all there is (kling_cli.jobs.pickup).
            return _print_job(output, job, _cannot_fetch(job))
        if job is not None and job.emulated:
            raise InvalidRequestError(
                f"Job {job.id} ran against the built-in emulator, which stopped with it; "
                "there is nothing to resume."
            )
        config = load_config(output)
        chosen = job.provider if job is not None else provider
        with open_session(chosen, emulate=False, output=output, config=config) as session:
            if job is None:
                assert identifier is not None
                job = adopt_task(session, journal, identifier)
            options = JobOptions(
                output_dir or Path(job.output_dir),
                timeout,
                wait,
                name_template=job.name_template or DEFAULT_TEMPLATE,
            )
            if output_dir is not None:
                _check_dir(output_dir)
            progress = progress_for(output, session.provider.name)
            try:
                result = resume_job(
                    session, journal, job, options, download=download, progress=progress
                )
            finally:
                progress.close()
            final = result.record or journal.job(job.id) or job
    finally:
        journal.close()
    for warning in result.warnings:
        output.warn(warning)
    return _print_job(output, final, result.error)


def _check_dir(directory: Path) -> None:
    from kling_cli.jobs.preflight import check_output_dir

    check_output_dir(directory)


def _cannot_fetch(job: JobRecord) -> KlingError | None:
    """Exit 3 for a job whose task the provider no longer knows: its images are gone."""
    from kling_cli.errors import TaskNotFoundError
    from kling_cli.jobs.pickup import Standing, explain, standing

    if standing(job) is not Standing.TASK_NOT_FOUND:
        return None
    message = explain(job, job.provider) or "the task is gone"
    return TaskNotFoundError(
        f"Job {job.id}: {message}.", hint="Generate it again with `kling generate` if you need it."
    )


def _print_job(output: Output, job: JobRecord, error: KlingError | None) -> int:
    from kling_cli.jobs.life import recorded_files, shown_path
    from kling_cli.jobs.state import RESUMABLE, never_requested, resume_command

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
        output.emit_json(envelope(exit_code=exit_code, job=described, files=files, error=error))
        return exit_code
    emulated = " (emulated)" if job.emulated else ""
    output.result(f"{job.id}  {job.provider}{emulated}  {job.state}")
    for task in job.tasks:
        detail = f" ({task.provider_status})" if task.provider_status else ""
        output.result(f"  task {task.task_id or task.client_task_id or '?'}: {task.state}{detail}")
        if task.error:
            output.result(f"    {task.error}")
        for out in task.outputs:
            output.result(f"    {shown_path(out.path) if out.path else out.url}")
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
    elif job.state in RESUMABLE and not job.emulated:
        output.note(f"Finish it with: {resume_command(job.id)}")
    return exit_code
