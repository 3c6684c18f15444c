"""One generation from start to end, as `kling generate` and the Python API both run it:
choose the provider, check the request against it, check before paying, record, submit, wait,
download. The sync form owns its event loop; the async form runs in the caller's."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.jobs.life import JobOptions, JobResult
from kling_cli.jobs.preflight import preflight
from kling_cli.jobs.record import open_journal
from kling_cli.jobs.run import begin_job, run_job, run_job_async
from kling_cli.routing import (
    explain_auto,
    explain_skipped,
    provider_spec,
    with_default_aspect,
)

__all__ = ["agenerate_job", "generate_job", "job_status", "with_default_aspect"]

if TYPE_CHECKING:
    from kling_cli.attempts import Attempt
    from kling_cli.config import ConfigFile
    from kling_cli.deadline import Deadline
    from kling_cli.events import ProgressListener
    from kling_cli.journal import JobRecord, Journal
    from kling_cli.request import GenerationRequest
    from kling_cli.routing import Route
    from kling_cli.session import Notify, ProviderSession

# Progress display for a job: the provider's name, and the job's tasks in order (a new job's
# are not known yet: None for each).
ProgressFor = Callable[[str, list["str | None"]], "ProgressListener | None"]


@contextmanager
def progress_context(
    progress_for: ProgressFor | None, provider_name: str, tasks: list[str | None]
) -> Iterator[ProgressListener | None]:
    """The caller's progress display for the job, closed (a spinner stopped) however the job
    ends."""
    progress = progress_for(provider_name, tasks) if progress_for else None
    try:
        yield progress
    finally:
        close = getattr(progress, "close", None)
        if close is not None:
            close()


@contextmanager
def _prepared(
    config: ConfigFile,
    provider_id: str | None,
    request: GenerationRequest,
    options: JobOptions,
    *,
    emulate: bool,
    aspect_unset: bool,
    note: Notify,
    max_cost: float | None = None,
) -> Iterator[tuple[ProviderSession, Journal, GenerationRequest]]:
    """The session, the journal and the request as this provider takes it, every check before
    paying passed (`InvalidRequestError`, `ConfigError`, `JournalError` otherwise), its
    estimate within `max_cost` (USD)."""
    from kling_cli.session import open_session

    journal = open_journal()
    try:
        with open_session(provider_id, emulate=emulate, config=config, note=note) as session:
            request = with_default_aspect(request, session.provider, aspect_unset)
            session.provider.check_request(request)
            preflight(options, request, journal=journal, emulated=session.emulated)
            if max_cost is not None:
                from kling_cli.batch_budget import refuse_over_budget
                from kling_cli.jobs.preview import estimated_cost

                refuse_over_budget(estimated_cost(session.provider, request), max_cost)
            yield session, journal, request
    finally:
        journal.close()


def _planned_route(
    config: ConfigFile,
    provider_id: str | None,
    request: GenerationRequest,
    emulate: bool,
    aspect_unset: bool,
) -> Route | None:
    """The providers a job is routed over, when several are asked for (`a,b,c`, `auto`);
    None for one (or none: the single-provider path says what is missing)."""
    from kling_cli.routing import plan_route, requested

    ids = requested(provider_id, config)
    if ids is None or not (len(ids) > 1 or ids == ["auto"]):
        return None
    return plan_route(ids, config, request, emulate=emulate, aspect_unset=aspect_unset)


def generate_job(
    config: ConfigFile,
    provider_id: str | Sequence[str] | None,
    request: GenerationRequest,
    options: JobOptions,
    *,
    emulate: bool = False,
    aspect_unset: bool = False,
    progress_for: ProgressFor | None = None,
    note: Notify = lambda text: None,
    max_cost: float | None = None,
) -> JobResult:
    """Run one generation in its own event loop. Raises before paying (bad input, no key, an
    unwritable output directory or journal, an estimate over `max_cost`); after the submit,
    the outcome, error included, is on the returned result. Several providers (`a,b,c`,
    `auto`): see `_failover`; one whose estimate is over `max_cost` is not tried."""
    provider_id = provider_spec(provider_id)
    route = _planned_route(config, provider_id, request, emulate, aspect_unset)
    if route is not None:
        if max_cost is not None:
            from kling_cli.batch_budget import refuse_over_budget

            refuse_over_budget(min(choice.cost for choice in route.order), max_cost)
        over = [c for c in route.order if max_cost is not None and c.cost > max_cost + 1e-9]
        route = replace(route, order=[c for c in route.order if c not in over])
        skipped = explain_auto(route) if route.auto else explain_skipped(route)
        if skipped is not None:
            note(skipped)
        if over:
            names = ", ".join(choice.provider.id for choice in over)
            note(f"Not trying {names}: estimated over --max-cost (${max_cost:.4f}).")
        chosen = [choice.provider.id for choice in route.order]
        turns = _failover(config, chosen, request, options, emulate, aspect_unset, note)
        return _routed(turns, options, progress_for)
    with _prepared(
        config,
        provider_id,
        request,
        options,
        emulate=emulate,
        aspect_unset=aspect_unset,
        note=note,
        max_cost=max_cost,
    ) as (session, journal, request):
        return _run(session, journal, request, options, progress_for)


@dataclass(frozen=True)
class _Turn:
    """One provider's turn at a routed job: its session, the request as it takes it, and the
    attempts made at the providers before it."""

    session: ProviderSession
    journal: Journal
    request: GenerationRequest
    attempts: list[Attempt]
    # `--timeout` bounds the whole job, every provider's turn together.
    deadline: Deadline


# Yields each provider's turn, is sent the job's result there, returns the result that stands.
_Route = Generator[_Turn, JobResult, JobResult]


def _failover(
    config: ConfigFile,
    order: list[str],
    request: GenerationRequest,
    options: JobOptions,
    emulate: bool,
    aspect_unset: bool,
    note: Notify,
) -> _Route:
    """Failover: the job goes to each provider of `order` in turn, and on to the next only
    when the last one's refusal proves it created nothing and charged nothing
    (`kling_cli.resend.refusal`); after any other outcome it stays where it is, recorded and
    resumable there. Every attempt is recorded with the job that made it. The sync and async
    forms drive it (`_routed`, `_routed_async`), each running the turns its own way."""
    from kling_cli.deadline import Deadline
    from kling_cli.session import open_sessions

    deadline = Deadline(options.timeout)
    journal = open_journal()
    try:
        with open_sessions(order, emulate=emulate, config=config, note=note) as sessions:
            attempts: list[Attempt] = []
            for number, provider_id in enumerate(order):
                session = sessions[provider_id]
                shaped = with_default_aspect(request, session.provider, aspect_unset)
                if number == 0:
                    preflight(options, shaped, journal=journal, emulated=session.emulated)
                result = yield _Turn(session, journal, shaped, attempts, deadline)
                if not _moves_on(result, order, number, sessions, note):
                    return result
                attempts = result.attempts
            raise AssertionError("unreachable: the last provider's result is returned")
    finally:
        journal.close()


def _next_turn(route: _Route, result: JobResult) -> _Turn | JobResult:
    """The next provider's turn, or the result that stands."""
    try:
        return route.send(result)
    except StopIteration as stop:
        standing: JobResult = stop.value
        return standing


def _moves_on(
    result: JobResult, order: list[str], number: int, sessions: dict[str, Any], note: Notify
) -> bool:
    """Whether a routed job goes on from provider `number` of `order` to the next: only
    after a refusal that proves nothing was created, and never past the last."""
    from kling_cli import interrupts

    if result.refusal is None or number + 1 == len(order):
        return False
    name, following = (sessions[order[n]].provider.name for n in (number, number + 1))
    if interrupts.pending() is not None:
        # A Ctrl-C or SIGTERM whose exception Python swallowed (raised inside a `__del__`)
        # still stops the paying: the job ends with this refusal, nothing sent elsewhere.
        note(f"Stopping as asked: {following} is not tried.")
        return False
    reason = result.error.message if result.error else result.refusal.value
    note(f"{name} created nothing and charged nothing ({reason}); trying {following}.")
    return True


def _routed(route: _Route, options: JobOptions, progress_for: ProgressFor | None) -> JobResult:
    """`_failover`'s turns, each in its own event loop."""
    with closing(route):
        turn: _Turn | JobResult = next(route)
        while isinstance(turn, _Turn):
            result = _run(turn.session, turn.journal, turn.request, options, progress_for, turn)
            turn = _next_turn(route, result)
        return turn


async def _routed_async(
    route: _Route, options: JobOptions, progress: ProgressListener | None
) -> JobResult:
    """`_failover`'s turns in the caller's event loop."""
    with closing(route):
        turn: _Turn | JobResult = next(route)
        while isinstance(turn, _Turn):
            life = begin_job(
                turn.session, turn.journal, turn.request, options, progress, turn.attempts
            )
            ran = run_job_async(turn.session, life, turn.request, options, deadline=turn.deadline)
            turn = _next_turn(route, await ran)
        return turn


def _run(
    session: ProviderSession,
    journal: Journal,
    request: GenerationRequest,
    options: JobOptions,
    progress_for: ProgressFor | None,
    turn: _Turn | None = None,
) -> JobResult:
    """One provider's job in its own event loop, shown by the caller's progress display;
    `turn`: a routed job's turn at this provider (None: not routed)."""
    tasks: list[str | None] = [None] * len(request.split(session.provider.capabilities.max_images))
    with progress_context(progress_for, session.provider.name, tasks) as progress:
        return run_job(
            session,
            journal,
            request,
            options,
            progress=progress,
            attempts=turn.attempts if turn else None,
            deadline=turn.deadline if turn else None,
        )


async def agenerate_job(
    config: ConfigFile,
    provider_id: str | Sequence[str] | None,
    request: GenerationRequest,
    options: JobOptions,
    *,
    emulate: bool = False,
    aspect_unset: bool = False,
    progress: ProgressListener | None = None,
) -> JobResult:
    """`generate_job` inside the caller's running event loop (a notebook, an orchestrator).
    A cancellation is recorded (the job is `interrupted`, resumable) and passed on."""
    provider_id = provider_spec(provider_id)
    route = _planned_route(config, provider_id, request, emulate, aspect_unset)
    if route is not None:
        chosen = [choice.provider.id for choice in route.order]
        turns = _failover(config, chosen, request, options, emulate, aspect_unset, lambda _: None)
        return await _routed_async(turns, options, progress)
    with _prepared(
        config,
        provider_id,
        request,
        options,
        emulate=emulate,
        aspect_unset=aspect_unset,
        note=lambda text: None,
    ) as (session, journal, request):
        life = begin_job(session, journal, request, options, progress, None)
        return await run_job_async(session, life, request, options)


def job_status(
    config: ConfigFile,
    identifier: str | None,
    provider_id: str | None,
    *,
    wait: bool = False,
    download: bool = False,
    timeout: float = 600.0,
    output_dir: Path | None = None,
    progress_for: ProgressFor | None = None,
    note: Notify = lambda text: None,
) -> tuple[JobRecord, JobResult | None]:
    """Where a job stands (`identifier`: a job id, a task id, or None for the latest; a task
    the journal does not know is asked of `provider_id` and adopted once it exists). A job
    that finished with its images on disk, or was never created, is answered from the journal
    with no network call (result None); otherwise its provider is asked and, with `wait` and
    `download`, the job finished. Never submits. Raises `InvalidRequestError` for an unknown
    job or an emulated one that did not finish, `TaskNotFoundError` for an unknown task."""
    from kling_cli.errors import IncompleteJobError, InvalidRequestError
    from kling_cli.jobs.lookup import adopt_task, find_job
    from kling_cli.jobs.pickup import Standing, standing
    from kling_cli.jobs.preflight import check_output_dir
    from kling_cli.jobs.run import resume_job
    from kling_cli.jobs.state import incomplete
    from kling_cli.naming import DEFAULT_TEMPLATE
    from kling_cli.session import open_session

    journal = open_journal()
    try:
        job = find_job(journal, identifier, provider_id)
        if job is not None and standing(job) is not Standing.FOLLOW:
            # Finished and on disk, never created, forgotten by the provider, or unanswered
            # with no way to ask: the journal knows all there is.
            return job, None
        if job is not None and job.emulated:
            raise InvalidRequestError(
                f"Job {job.id} ran against the built-in emulator, which stopped with it; "
                "there is nothing to resume."
            )
        chosen = job.provider if job is not None else provider_id
        with open_session(chosen, emulate=False, config=config, note=note) as session:
            if output_dir is not None:
                check_output_dir(output_dir)
            if job is None:
                assert identifier is not None
                job = adopt_task(session, journal, identifier, output_dir)
            options = JobOptions(
                output_dir or Path(job.output_dir),
                timeout,
                wait,
                name_template=job.name_template or DEFAULT_TEMPLATE,
            )
            task_ids = [task.task_id for task in job.tasks]
            with progress_context(progress_for, session.provider.name, task_ids) as progress:
                result = resume_job(
                    session, journal, job, options, download=download, progress=progress
                )
            final = result.record or journal.job(job.id) or job
            reason = incomplete(final) if wait and result.error is None else None
            if reason is not None:
                result.error = IncompleteJobError(
                    f"Job {job.id} is {reason}.",
                    hint="Generate the missing images again if you need them.",
                )
            return final, result
    finally:
        journal.close()
