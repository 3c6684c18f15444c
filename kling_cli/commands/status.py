"""`kling status`: where a job stands, from the journal and the provider; resume it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli.commands.common import JSON_OPTION, PROVIDER_OPTION, ProviderSession, open_session
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output, describe_job, envelope, progress_for

# A submit still unknown this long after it was sent never arrived.
NOT_CREATED_AFTER_SECONDS = 600

if TYPE_CHECKING:
    from kling_cli.engine import JobOutcome
    from kling_cli.events import Listeners
    from kling_cli.journal import JobRecord, Journal
    from kling_cli.providers.base import TaskHandle, TaskStatus


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
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait with --wait."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Where to save [default: where the job was started]."
    ),
    as_json: bool = JSON_OPTION,
) -> int:
    """Ask the provider where a job stands; with --wait and --download, finish it."""
    from kling_cli.journal import Journal

    output: Output = ctx.obj
    journal = Journal.open_default()
    try:
        job = _find_job(journal, identifier, provider)
        if job.emulated:
            raise InvalidRequestError(
                f"Job {job.id} ran against the built-in emulator, which stopped with it; "
                "there is nothing to resume."
            )
        if job.state == "not_created":
            _print_job(output, job)
            return ExitCode.OK
        with open_session(job.provider, emulate=False, output=output) as session:
            target = output_dir or Path(job.output_dir)
            job = _refresh_job(session, journal, job, output, wait, download, timeout, target)
    finally:
        journal.close()
    _print_job(output, job)
    return ExitCode.OK


def _find_job(journal: Journal, identifier: str | None, provider: str | None) -> JobRecord:
    if identifier is None:
        latest = journal.latest()
        if latest is None:
            raise InvalidRequestError("No jobs yet; `kling generate` records every job it submits.")
        return latest
    found = journal.find(identifier)
    if found is not None:
        return found
    if provider is None:
        raise InvalidRequestError(
            f"No job or task {identifier!r} in the journal; to ask a provider about a task "
            "submitted elsewhere, add --provider."
        )
    # A task submitted from another machine or tool: adopt it, so it can be resumed.
    from kling_cli.providers import get_provider

    provider_id = get_provider(provider).id
    job_id = journal.create_job(provider_id, {}, str(Path.cwd() / "kling-output"))
    position = journal.add_task(job_id, None, 0)
    journal.update_task(job_id, position, task_id=identifier, state="pending")
    adopted = journal.job(job_id)
    assert adopted is not None
    return adopted


def _refresh_job(
    session: ProviderSession,
    journal: Journal,
    job: JobRecord,
    output: Output,
    wait: bool,
    download: bool,
    timeout: float,
    output_dir: Path,
) -> JobRecord:
    from kling_cli.events import Listeners
    from kling_cli.journal import JobRecorder, job_state_after

    progress = progress_for(output, session.provider.name)
    listener = Listeners(JobRecorder(journal, job.id, job.tasks), progress)
    try:
        import asyncio  # not at module level: it is slow to import

        outcome = asyncio.run(
            _drive(session, journal, job, listener, wait, download, timeout, output_dir)
        )
    except BaseException as exc:
        journal.set_job_state(job.id, job_state_after(exc), getattr(exc, "message", None))
        raise
    finally:
        progress.close()
    refreshed = journal.job(job.id)
    assert refreshed is not None
    journal.set_job_state(job.id, _overall_state(refreshed, outcome))
    final = journal.job(job.id)
    assert final is not None
    return final


async def _drive(
    session: ProviderSession,
    journal: Journal,
    job: JobRecord,
    listener: Listeners,
    wait: bool,
    download: bool,
    timeout: float,
    output_dir: Path,
) -> JobOutcome | None:
    from kling_cli.engine import Engine
    from kling_cli.naming import DEFAULT_TEMPLATE, Naming

    handles = _handles(session, job)
    positions = {
        key: task.position
        for task in job.tasks
        for key in (task.task_id, task.client_task_id)
        if key
    }
    if not handles:
        raise InvalidRequestError(
            f"Job {job.id} has no task the provider can be asked about: its submit was never "
            "answered, and the provider offers no way to look a task up by our id."
        )
    async with Engine(session.provider, session.endpoint, listener=listener) as engine:
        current: list[tuple[TaskHandle, TaskStatus]] = []
        for handle, by_our_id in handles:
            if by_our_id:
                found = await engine.find_by_our_id(handle)
                if found is None:
                    _record_unknown(journal, job, positions[handle.task_id])
                    continue
                status = found
            else:
                status = await engine.refresh(handle)
            listener.status_changed(handle, status)
            current.append((handle, status))
        if not current or not (wait or download):
            return None
        if not wait:
            current = [(task, status) for task, status in current if status.state.is_terminal]
        on_disk = {
            out.url
            for task in job.tasks
            for out in task.outputs
            if out.path and Path(out.path).exists()
        }
        outcome = await engine.finish(
            current,
            output_dir,
            Naming(
                job.name_template or DEFAULT_TEMPLATE,
                job.id,
                job.provider,
                job.prompt,
                str(job.request.get("aspect_ratio", "")),
                str(job.request.get("resolution", "")),
            ).stem_for(),
            timeout=timeout,
            on_disk=on_disk if download else {o.url for _, s in current for o in s.outputs},
        )
    if wait and outcome.failures:
        raise outcome.failures[0]
    return outcome


def _handles(session: ProviderSession, job: JobRecord) -> list[tuple[TaskHandle, bool]]:
    """Each task the provider can be asked about, and whether it is asked by our own id
    (its submit was never answered)."""
    from kling_cli.journal import MAY_EXIST, SUBMITTING
    from kling_cli.providers.base import TaskHandle

    handles = []
    for task in job.tasks:
        task_id = task.task_id
        lookup = session.provider.capabilities.client_task_id_lookup
        by_our_id = task_id is None and task.state in (SUBMITTING, MAY_EXIST) and lookup
        if by_our_id:
            # Stopped before the answer was recorded: the id we chose finds the task.
            task_id = task.client_task_id
        if task_id:
            handle = TaskHandle(
                session.provider.id, task_id, task.expected_images or None, task.extra
            )
            handles.append((handle, bool(by_our_id)))
    return handles


def _record_unknown(journal: Journal, job: JobRecord, position: int) -> None:
    """A task asked for by our own id that the provider does not know. Long after the stop,
    its submit never arrived; shortly after, it may still be on its way."""
    from kling_cli.journal import MAY_EXIST, NOT_CREATED

    if time.time() - job.created_at > NOT_CREATED_AFTER_SECONDS:
        error = "never received by the provider: nothing was charged"
        journal.update_task(job.id, position, state=NOT_CREATED, error=error)
    else:
        error = "not received by the provider yet; check again in a minute"
        journal.update_task(job.id, position, state=MAY_EXIST, error=error)


def _overall_state(job: JobRecord, outcome: JobOutcome | None) -> str:
    from kling_cli.journal import NOT_CREATED

    states = {task.state for task in job.tasks}
    if states == {NOT_CREATED}:
        return NOT_CREATED
    states.discard(NOT_CREATED)
    if "failed" in states and states <= {"failed", "succeeded"}:
        return "failed" if "succeeded" not in states else "partial"
    if states == {"succeeded"}:
        expected = sum(len(task.outputs) for task in job.tasks)
        return "succeeded" if job.images_on_disk >= expected else "generated"
    return "running"


def _print_job(output: Output, job: JobRecord) -> None:
    files = [
        {
            "path": out.path,
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
        output.emit_json(envelope(exit_code=ExitCode.OK, job=described, files=files))
        return
    output.result(f"{job.id}  {job.provider}  {job.state}")
    for task in job.tasks:
        detail = f" ({task.provider_status})" if task.provider_status else ""
        output.result(f"  task {task.task_id or task.client_task_id or '?'}: {task.state}{detail}")
        if task.error:
            output.result(f"    {task.error}")
        for out in task.outputs:
            output.result(f"    {out.path or out.url}")
    if job.state == "not_created":
        output.note("The provider never received this job, so nothing was charged; run it again.")
    if job.state in ("generated", "running", "timed_out", "interrupted", "download_failed"):
        output.note(f"Finish it with: kling status {job.id} --wait --download")
