"""Running a job: submit, wait, download; and picking up one a previous run left behind.

`run_job` and `resume_job` are what `generate` and `status` call (one event loop each);
`run_job_async` and `resume_job_async` are what a batch runs for each of its items. Each
returns a `JobResult` and prints nothing; whatever stops the job after its submit, the
`JobLife` records it first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from kling_cli.errors import DownloadError, KlingError, TaskNotFoundError
from kling_cli.jobs.life import JobLife, JobOptions, JobResult
from kling_cli.jobs.lookup import adopt_task as adopt_task
from kling_cli.jobs.lookup import confirm_task as confirm_task
from kling_cli.jobs.lookup import find_job as find_job
from kling_cli.jobs.pickup import MAY_HAVE_EXPIRED_AFTER_SECONDS, NOT_CREATED_AFTER_SECONDS
from kling_cli.jobs.state import overall_state
from kling_cli.jobs.views import saved_urls
from kling_cli.journal import MAY_EXIST, NOT_CREATED, NOT_FOUND, SUBMITTING

if TYPE_CHECKING:
    from kling_cli.attempts import Attempt
    from kling_cli.deadline import Deadline
    from kling_cli.engine import Engine
    from kling_cli.events import ProgressListener
    from kling_cli.journal import JobRecord, Journal, TaskRecord
    from kling_cli.limiter import ProviderLimiter
    from kling_cli.naming import Naming
    from kling_cli.providers.base import Provider, TaskHandle, TaskStatus
    from kling_cli.request import GenerationRequest
    from kling_cli.session import ProviderSession
    from kling_cli.transport import HttpClients

Submitted = list[tuple["TaskHandle", "TaskStatus"]]


def naming_for(job: JobRecord, options: JobOptions) -> Naming:
    from kling_cli.naming import DEFAULT_TEMPLATE, Naming

    return Naming(
        job.name_template or options.name_template or DEFAULT_TEMPLATE,
        job.id,
        job.provider,
        job.prompt,
        str(job.request.get("aspect_ratio", "")),
        str(job.request.get("resolution", "")),
        item_id=options.item_id,
    )


def _engine(
    session: ProviderSession,
    life: JobLife,
    clients: HttpClients | None,
    limiter: ProviderLimiter | None,
    options: JobOptions,
    deadline: Deadline | None = None,
) -> Engine:
    """The job's engine, held to one deadline from now (or to `deadline`, a routed job's,
    which began at its first provider): `--timeout` bounds everything the job does from here
    (uploads, the submit and any synchronous hold, the status stream, polls and downloads)."""
    from kling_cli.deadline import Deadline
    from kling_cli.engine import Engine

    return Engine(
        session.provider,
        session.endpoint,
        listener=life.listener,
        clients=clients,
        limiter=limiter,
        deadline=deadline or Deadline(options.timeout),
    )


async def _lived(life: JobLife, work: Callable[[], Awaitable[JobResult]]) -> JobResult:
    """Run `work`; whatever stops it is recorded by `life` first. A cancellation (Ctrl-C in
    the event loop, a batch being stopped) is recorded and passed on."""
    try:
        return await work()
    except asyncio.CancelledError as exc:
        life.end(exc)
        raise
    except Exception as exc:
        return life.end(exc)


def _run_loop(life: JobLife, coroutine: Coroutine[Any, Any, JobResult]) -> JobResult:
    """One event loop for one job (the CLI's case). Ctrl-C, SIGTERM or SIGHUP while it runs
    end the job as interrupted, recorded, with the result to print."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt as exc:
        # The cancellation it caused inside the loop was recorded already; this records the
        # signal that caused it (its exit code).
        return life.end(exc)


def begin_job(
    session: ProviderSession,
    journal: Journal,
    request: GenerationRequest,
    options: JobOptions,
    progress: ProgressListener | None,
    attempts: list[Attempt] | None,
) -> JobLife:
    """Record a new job at `session`'s provider before anything is sent; `attempts`: a
    routed job's attempts elsewhere (None: not routed)."""
    return JobLife.begin(
        journal,
        session.provider,
        request,
        options,
        emulated=session.emulated,
        progress=progress,
        attempts=attempts,
    )


def run_job(
    session: ProviderSession,
    journal: Journal,
    request: GenerationRequest,
    options: JobOptions,
    *,
    progress: ProgressListener | None = None,
    attempts: list[Attempt] | None = None,
    deadline: Deadline | None = None,
) -> JobResult:
    """Record, submit, wait for and download one job. Call `preflight` first: it checks
    before paying what can be checked. Returns the result; raises nothing after the job is
    recorded (the error is on the result). `attempts`, `deadline`: a routed job's attempts
    elsewhere, and its deadline (None: from now)."""
    from kling_cli.interrupts import deferred

    life: JobLife | None = None
    try:
        # A signal between the journal row and the loop that ends it would leave a job
        # recorded `submitting` forever, though nothing was sent.
        with deferred():
            life = begin_job(session, journal, request, options, progress, attempts)
        return _run_loop(life, run_job_async(session, life, request, options, deadline=deadline))
    except KeyboardInterrupt as exc:
        if life is None:
            raise
        return life.end(exc)


async def run_job_async(
    session: ProviderSession,
    life: JobLife,
    request: GenerationRequest,
    options: JobOptions,
    *,
    clients: HttpClients | None = None,
    limiter: ProviderLimiter | None = None,
    deadline: Deadline | None = None,
) -> JobResult:
    async def work() -> JobResult:
        async with _engine(session, life, clients, limiter, options, deadline) as engine:
            submitted = await engine.submit_job(request, push_timeout=options.push_timeout)
            if not options.wait:
                return life.end(None, submitted_only=True)
            await _finish(engine, life, submitted, options)
        return life.end(None)

    return await _lived(life, work)


async def _finish(
    engine: Engine,
    life: JobLife,
    submitted: Submitted,
    options: JobOptions,
    *,
    on_disk: set[str] | None = None,
    only_save_failures: bool = False,
    picked_up: bool = False,
) -> None:
    outcome = await engine.finish(
        submitted,
        options.output_dir,
        naming_for(life.job, options).stem_for(),
        placement="replace" if options.overwrite else "reuse" if picked_up else "keep",
        on_disk=on_disk or (),
        save=options.save,
    )
    for _, status in outcome.finished:
        if status.error:
            life.warnings.append(
                f"{engine.provider.name} reported a partial failure: {status.error}"
            )
    failures = outcome.failures
    if only_save_failures:
        failures = [failure for failure in failures if isinstance(failure, DownloadError)]
    if failures:
        # The images that were made are on disk; the first failure decides the exit code.
        raise failures[0]


def resume_job(
    session: ProviderSession,
    journal: Journal,
    job: JobRecord,
    options: JobOptions,
    *,
    download: bool,
    progress: ProgressListener | None = None,
    known: Mapping[str, TaskStatus] | None = None,
) -> JobResult:
    """Ask the provider where `job` stands; with `options.wait`, wait for it; with
    `download`, save the images not on disk yet. Never submits anything. `known`: the
    state of these tasks (by id) as a webhook reported it; only they are taken up, and the
    provider is not asked about them."""
    life = JobLife(
        journal,
        job,
        session.provider,
        progress=progress,
        sidecar=options.sidecar,
        attempts=_earlier_attempts(journal, job),
    )
    return _run_loop(life, resume_job_async(session, life, options, download=download, known=known))


def _earlier_attempts(journal: Journal, job: JobRecord) -> list[Attempt] | None:
    """A routed job's attempts at the providers before its own (None: not routed), so that
    finishing it records its own attempt as it now ends, and its sidecar tells them all."""
    from kling_cli.attempts import attempts_of

    recorded = attempts_of(journal, job.id)
    return [attempt for attempt in recorded if attempt.job_id != job.id] if recorded else None


async def resume_job_async(
    session: ProviderSession,
    life: JobLife,
    options: JobOptions,
    *,
    download: bool,
    clients: HttpClients | None = None,
    limiter: ProviderLimiter | None = None,
    known: Mapping[str, TaskStatus] | None = None,
) -> JobResult:
    job = life.job

    async def work() -> JobResult:
        _settle_unanswered(life, session.provider)
        handles = _handles(session.provider, job)
        if known is not None:
            handles = [handle for handle in handles if handle[0].task_id in known]
        if not handles:
            return life.end(None, state=overall_state(job))
        async with _engine(session, life, clients, limiter, options) as engine:
            current: Submitted = []
            for handle, by_our_id, task in handles:
                status: TaskStatus | None
                if known is not None:
                    status = _reported(life, known[handle.task_id], by_our_id, task)
                else:
                    status = await _current_status(engine, life, handle, by_our_id, task)
                if status is not None:
                    life.listener.status_changed(handle, status)
                    current.append((handle, status))
            if current and (options.wait or download):
                if not options.wait:
                    current = [(t, s) for t, s in current if s.state.is_terminal]
                on_disk = saved_urls(job) if download else _all_urls(current)
                await _finish(
                    engine,
                    life,
                    current,
                    options,
                    on_disk=on_disk,
                    # Without --wait, a task that failed is reported, not raised.
                    only_save_failures=not options.wait,
                    picked_up=True,
                )
        record = life.journal.job(job.id)
        return life.end(_forgotten(life, record), state=overall_state(record) if record else None)

    return await _lived(life, work)


async def _current_status(
    engine: Engine, life: JobLife, handle: TaskHandle, by_our_id: bool, task: TaskRecord
) -> TaskStatus | None:
    if not by_our_id:
        try:
            return await engine.refresh(handle)
        except KlingError as exc:
            from kling_cli.jobs.pickup import provider_forgot

            if not provider_forgot(exc):
                raise
            # Recorded, so no later run asks again (or fails on it again); what is done
            # about it is the caller's choice (kling_cli.jobs.pickup).
            life.writer.update_task(
                task.position, state=NOT_FOUND, error=f"{exc.message} (its results expired)"
            )
            return None
    found = await engine.find_by_our_id(handle)
    if found is None:
        _record_unknown(life, task)
        return None
    # Found by our id, which is how the provider knows it from now on: the task is no longer
    # an unanswered submit.
    life.writer.update_task(task.position, task_id=handle.task_id, error="")
    life.recorder.task_ids.append(handle.task_id)
    return found


def _reported(life: JobLife, status: TaskStatus, by_our_id: bool, task: TaskRecord) -> TaskStatus:
    """A task's state as its provider reported it unasked (a webhook). Reported under our
    id, a submit never answered is known to have arrived."""
    if by_our_id and task.client_task_id:
        life.writer.update_task(task.position, task_id=task.client_task_id, error="")
        life.recorder.task_ids.append(task.client_task_id)
    return status


def _settle_unanswered(life: JobLife, provider: Provider) -> None:
    """A submit still `submitting` when its job is picked up lost its process (killed before
    the answer came): it may exist, and where the provider cannot be asked by our id, that
    is all anyone will know."""
    from kling_cli.jobs.pickup import findable_by_our_id

    for task in life.job.tasks:
        if task.state == SUBMITTING and not findable_by_our_id(task, provider.capabilities):
            task.state = MAY_EXIST
            life.writer.update_task(task.position, state=MAY_EXIST, error="never answered")


def _handles(provider: Provider, job: JobRecord) -> list[tuple[TaskHandle, bool, TaskRecord]]:
    """Each task the provider can be asked about, and whether it is asked by our own id
    (its submit was never answered): the tasks `pickup.standing` calls followable."""
    from kling_cli.jobs.pickup import findable_by_our_id
    from kling_cli.providers.base import TaskHandle

    handles = []
    for task in job.tasks:
        if task.state in ("failed", NOT_CREATED, NOT_FOUND):
            continue
        by_our_id = findable_by_our_id(task, provider.capabilities)
        task_id = task.client_task_id if by_our_id else task.task_id
        if task_id:
            handle = TaskHandle(provider.id, task_id, task.expected_images or None, task.extra)
            handles.append((handle, by_our_id, task))
    return handles


def _forgotten(life: JobLife, record: JobRecord | None) -> TaskNotFoundError | None:
    """The error for a job whose every remaining task the provider no longer knows: its
    images cannot be fetched (exit 3), and nothing will change that."""
    from kling_cli.jobs.pickup import Standing, explain, standing

    if record is None or standing(record) is not Standing.TASK_NOT_FOUND:
        return None
    if any(task.state not in (NOT_FOUND, "failed", NOT_CREATED) for task in record.tasks):
        return None
    message = explain(record, life.provider.name) or "the task is gone"
    return TaskNotFoundError(f"Job {record.id}: {message}.")


def _record_unknown(life: JobLife, task: TaskRecord) -> None:
    """A task asked for by our own id that the provider does not know. Long after the stop,
    its submit never arrived; shortly after, it may still be on its way; long after (a day),
    it may also have been made and forgotten since."""
    age = time.time() - life.job.created_at
    if age > MAY_HAVE_EXPIRED_AFTER_SECONDS:
        error = (
            "unknown to the provider a day after it was sent: it never arrived, or it was "
            "made and has expired since, so it may have been charged"
        )
        life.writer.update_task(task.position, state=MAY_EXIST, error=error)
    elif age > NOT_CREATED_AFTER_SECONDS:
        error = "never received by the provider: nothing was charged"
        life.writer.update_task(task.position, state=NOT_CREATED, error=error)
    else:
        error = "not received by the provider yet; check again in a minute"
        life.writer.update_task(task.position, state=MAY_EXIST, error=error)


def _all_urls(current: Submitted) -> set[str]:
    return {output.url for _, status in current for output in status.outputs}
