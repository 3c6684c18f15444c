"""`kling jobs`: every job ever submitted, from the local journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from kling_cli.commands import common
from kling_cli.commands.common import JSON_OPTION
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output, describe_job, versioned

app = typer.Typer(help="List the jobs kling has submitted (the local journal).")
# Every state the journal gives a job (kling_cli.journal and the commands that finish jobs).


@app.callback(invoke_without_command=True)
def list_jobs(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Only jobs in this state."),
    provider: str | None = typer.Option(None, "--provider", "-p", help="Only this provider."),
    limit: int = typer.Option(20, "--limit", help="How many, newest first."),
    as_json: bool = JSON_OPTION,
) -> int:
    """List recent jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return ExitCode.OK
    from kling_cli.jobs.state import JOB_STATES

    if state is not None and state not in JOB_STATES:
        raise InvalidRequestError(
            f"--state {state!r} is not a job state; use one of {', '.join(JOB_STATES)}."
        )
    from kling_cli.jobs.record import open_journal

    output: Output = ctx.obj
    journal = open_journal()
    try:
        jobs = journal.recent(limit=limit, state=state, provider=provider)
    finally:
        journal.close()
    if output.json_mode:
        output.emit_json(
            versioned(jobs=[{**describe_job(job), "prompt": job.prompt} for job in jobs])
        )
        return ExitCode.OK
    if not jobs:
        output.note("No jobs yet.")
        return ExitCode.OK
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "CREATED", "PROVIDER", "STATE", "IMAGES", "PROMPT"):
        # One job a line, even in a pipe's 80 columns (`grep`-able); the id is never cut.
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=13 * (column == "ID"))
    for job in jobs:
        created = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")
        prompt = job.prompt if len(job.prompt) <= 40 else job.prompt[:39] + "…"
        provider = f"{job.provider} (emulated)" if job.emulated else job.provider
        table.add_row(job.id, created, provider, job.state, str(job.images_on_disk), prompt)
    output.stdout.print(table)
    return ExitCode.OK


@app.command("show")
def show_job(
    ctx: typer.Context,
    job_id: str = typer.Argument(
        ...,
        metavar="ID",
        help="A job id or a provider task id.",
        autocompletion=common.job_ids,
    ),
    preview: bool = common.PREVIEW_OPTION,
    as_json: bool = JSON_OPTION,
) -> int:
    """Show one job as recorded: request, tasks, images (no network call)."""
    from kling_cli.attempts import attempts_of
    from kling_cli.jobs.record import open_journal

    output: Output = ctx.obj
    journal = open_journal()
    try:
        job = journal.find(job_id)
        attempts = attempts_of(journal, job.id) if job is not None else []
    finally:
        journal.close()
    if job is None:
        raise InvalidRequestError(f"No job or task {job_id!r} in the journal.")
    tasks: list[dict[str, Any]] = [
        {
            "task_id": task.task_id,
            "client_task_id": task.client_task_id,
            "state": task.state,
            "provider_status": task.provider_status,
            "error": task.error,
            "cost": task.cost,
            "outputs": [vars(out) for out in task.outputs],
        }
        for task in job.tasks
    ]
    if output.json_mode:
        output.emit_json(
            versioned(
                job={
                    **describe_job(job),
                    "request": job.request,
                    "output_dir": job.output_dir,
                    "emulated": job.emulated,
                    "error": job.error,
                    "tasks": tasks,
                    **({"attempts": [a.to_json() for a in attempts]} if attempts else {}),
                }
            )
        )
        return ExitCode.OK
    from kling_cli.commands.job_record import job_lines

    for line in job_lines(job):
        output.result(line)
    if attempts:
        output.result("attempts:")
    for number, attempt in enumerate(attempts, start=1):
        why = f": {attempt.error}" if attempt.error else ""
        output.result(
            f"  {number}. {attempt.provider} {attempt.outcome}{why} (job {attempt.job_id})"
        )
    if preview:
        from kling_cli.commands.look import images_on_disk, preview_saved

        preview_saved(output, images_on_disk(job))
    return ExitCode.OK


@app.command("prune")
def prune_jobs(
    ctx: typer.Context,
    before: str = typer.Option(
        ...,
        "--before",
        metavar="DATE",
        help="Remove finished jobs created before this local date or time (2026-11-01, "
        "2026-11-01T18:00).",
    ),
    vacuum: bool | None = typer.Option(
        None,
        "--vacuum/--no-vacuum",
        help="Compact the journal afterwards [default: when a quarter of it is free].",
        show_default=False,
    ),
    as_json: bool = JSON_OPTION,
) -> int:
    """Forget finished jobs; unfinished ones (that could still cost or deliver) always stay."""
    from kling_cli.jobs.prune import prune
    from kling_cli.jobs.record import open_journal

    try:
        cutoff = datetime.fromisoformat(before)
    except ValueError:
        raise InvalidRequestError(
            f"--before {before!r} is not a date; write it as 2026-11-01 or 2026-11-01T18:00."
        ) from None
    output: Output = ctx.obj
    journal = open_journal()
    try:
        result = prune(journal, cutoff.timestamp(), vacuum=vacuum)
    finally:
        journal.close()
    if output.json_mode:
        output.emit_json(versioned(prune={"before": cutoff.isoformat(), **vars(result)}))
        return ExitCode.OK
    freed = max(result.bytes_before - result.bytes_after, 0)
    output.result(f"Removed {result.removed} finished job(s) created before {before}.")
    if result.kept_unfinished:
        output.result(f"Kept {result.kept_unfinished} older job(s) that are not finished.")
    if result.vacuumed:
        output.result(f"Compacted the journal: {freed / 1e6:.1f} MB freed.")
    return ExitCode.OK
