"""Batch runs: many generations from a JSONL or CSV manifest, concurrently, resumable.

Every item is validated before anything is submitted. Each item is one journal job carrying a
key derived from the item itself, so running the same manifest again skips what is done and
picks up what was submitted but not finished, without submitting it again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kling_cli.batch_items import earlier_job, item_key
from kling_cli.batch_spread import Spread
from kling_cli.errors import InvalidRequestError, OutOfCreditsError
from kling_cli.events import NullListener
from kling_cli.journal import NOT_CREATED
from kling_cli.limiter import ProviderLimiter
from kling_cli.manifest import PlannedItem

BATCH_NAME_TEMPLATE = "{id}"
# Why an item was skipped: done by an earlier run, or not submitted because the run stopped
# submitting (--max-cost would be passed; the provider said the account is out of credits).
SKIPPED_DONE = "done"
SKIPPED_BUDGET = "budget"
SKIPPED_OUT_OF_CREDITS = "out_of_credits"
SKIPPED_INTERRUPTED = "interrupted"
# Not submitted again because that may pay twice (kling_cli.jobs.pickup): an earlier submit
# may have created a task nothing can find, or the provider forgot the task it made.
SKIPPED_UNKNOWN = "unknown_outcome"
SKIPPED_NOT_FOUND = "task_not_found"
# `--skip-existing`: every file the item would write is on disk already.
SKIPPED_EXISTS = "exists"
NOT_SUBMITTED = {
    SKIPPED_BUDGET: "budget",
    SKIPPED_OUT_OF_CREDITS: "out of credits",
    SKIPPED_INTERRUPTED: "interrupted",
    SKIPPED_UNKNOWN: "unknown outcome",
    SKIPPED_NOT_FOUND: "task not found",
}
# What only `--resubmit-unknown` submits again.
MAY_PAY_TWICE = frozenset({SKIPPED_UNKNOWN, SKIPPED_NOT_FOUND})
# A spread item whose provider stopped taking items before it was sent (never shown: the
# item goes to another provider).
_PROVIDER_STOPPED = "provider_stopped"


@dataclass
class ItemResult:
    item: PlannedItem
    status: str  # "succeeded", "failed", "skipped", "interrupted" (in flight when stopped)
    job_id: str | None = None
    task_ids: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    cost: float | None = None
    error: str | None = None
    error_code: str | None = None
    skip_reason: str | None = None  # SKIPPED_* when status is "skipped"
    # What the user should read besides the outcome (a journal that could not be written).
    warnings: list[str] = field(default_factory=list)
    # A spread item: set when its provider provably created nothing (it may go elsewhere),
    # and the providers it was sent to.
    refusal: str | None = None
    attempts: list[Any] = field(default_factory=list)  # kling_cli.attempts.Attempt

    @property
    def not_submitted(self) -> bool:
        """Skipped because the run stopped submitting, so still to do."""
        return self.skip_reason in NOT_SUBMITTED


def item_estimate(planned: PlannedItem) -> float:
    return float(planned.provider.price.usd_per_image * planned.request.num_images)


def estimated_cost(planned: Iterable[PlannedItem]) -> float:
    return sum(item_estimate(p) for p in planned)


def check_max_cost(usd: float | None) -> float | None:
    """`--max-cost` if it is a usable limit in USD: finite and not negative (0 allows nothing
    to be spent). NaN, infinite and negative values are refused (`InvalidRequestError`, exit
    2): NaN compares false with everything, so it would silently switch the cap off."""
    if usd is not None and (not math.isfinite(usd) or usd < 0):
        raise InvalidRequestError(
            f"--max-cost must be a finite number of US dollars, 0 or more, not {usd:g}."
        )
    return usd


def refuse_over_budget(estimate: float, max_cost: float | None) -> None:
    """Refuse to start (`InvalidRequestError`, exit 2) when the estimate in USD is over
    `--max-cost`, which `check_max_cost` has checked."""
    check_max_cost(max_cost)
    if max_cost is not None and estimate > max_cost + 1e-9:
        raise InvalidRequestError(
            f"The estimated cost is ${estimate:.2f}, over --max-cost ${max_cost:.2f}; "
            "nothing was submitted."
        )


@dataclass
class Budget:
    """`--max-cost` during a run: what the items this run submitted cost, as their provider
    reported it, or at their estimate while that is unknown."""

    limit: float | None
    spent: float = 0.0
    exhausted: bool = False

    def reserve(self, estimate: float) -> bool:
        """Whether an item estimated at `estimate` may be submitted now. Once one may not,
        none may: the run stops submitting."""
        over = self.limit is not None and self.spent + estimate > self.limit + 1e-9
        self.exhausted = self.exhausted or over
        if self.exhausted:
            return False
        self.spent += estimate
        return True

    def settle(self, estimate: float, cost: float | None) -> None:
        """The item ended: count what the provider reported instead of the estimate."""
        if cost is not None:
            self.spent += cost - estimate


@dataclass
class _RunState:
    """What the workers of one run share: per provider, its HTTP clients (with the uploads
    made so far) and its limiter; the budget, and the providers that said the account is out
    of credits."""

    clients: dict[str, Any]  # kling_cli.transport.HttpClients by provider id
    limiters: dict[str, ProviderLimiter]
    budget: Budget
    out_of_credits: set[str] = field(default_factory=set)
    spread: Spread = field(default_factory=Spread)

    def stopped_submitting(self, planned: PlannedItem) -> str | None:
        if planned.alternatives:
            if all(p.id in self.out_of_credits for p in planned.alternatives):
                return SKIPPED_OUT_OF_CREDITS
            if planned.provider.id in self.out_of_credits | self.spread.stopped:
                return _PROVIDER_STOPPED  # while it waited: it goes to another
        elif planned.provider.id in self.out_of_credits:
            return SKIPPED_OUT_OF_CREDITS
        return SKIPPED_BUDGET if self.budget.exhausted else None


@dataclass
class BatchRunner:
    """Runs planned items with bounded concurrency, recording each in the journal."""

    journal: Any  # kling_cli.journal.Journal
    sessions: Mapping[str, Any]  # kling_cli.session.ProviderSession by provider id
    output_dir: Path
    concurrency: int
    timeout: float
    emulated: bool = False
    sidecars: bool = True
    name_template: str = BATCH_NAME_TEMPLATE
    max_cost: float | None = None
    # Submit again items that may exist unseen or whose task the provider forgot.
    resubmit_unknown: bool = False
    # Skip items whose files are all on disk, whatever the journal says.
    skip_existing: bool = False
    # Whether providers that advise fewer items in flight start there.
    documented_start: bool = True
    on_start: Callable[[PlannedItem], None] = lambda item: None
    on_result: Callable[[ItemResult], None] = lambda result: None
    on_retry: Callable[[str, float], None] = lambda reason, delay: None
    # The items ended so far, in the order they ended: what a summary shows when the run is
    # interrupted. With `keep_results` off, only the items in flight when it was.
    results: list[ItemResult] = field(default_factory=list)
    keep_results: bool = True
    # Items taken from the plan and not ended yet, and the plan's rest: what an interrupted
    # run never reached (`unreached`).
    _in_flight: dict[int, PlannedItem] = field(default_factory=dict, init=False)
    _pending: Iterator[PlannedItem] = field(default_factory=lambda: iter(()), init=False)

    async def run(self, planned: Iterable[PlannedItem]) -> list[ItemResult]:
        from kling_cli.transport import HttpClients

        providers = _providers(planned)
        state = _RunState(
            {
                provider_id: HttpClients.create(max_connections=max(self.concurrency, 8))
                for provider_id in providers
            },
            {
                provider.id: ProviderLimiter(
                    self.concurrency,
                    provider.initial_concurrency if self.documented_start else None,
                )
                for provider in providers.values()
            },
            Budget(self.max_cost),
        )
        pending = self._pending = iter(planned)
        results, in_flight = self.results, self._in_flight

        async def worker() -> None:
            # A fixed pool pulling from one iterator: memory stays flat however long the
            # manifest, unlike one coroutine per item.
            for item in pending:
                in_flight[id(item)] = item
                self.on_start(item)
                result = await self._run_item(item, state)
                del in_flight[id(item)]
                if self.keep_results:
                    results.append(result)
                self.on_result(result)

        # Spread over several providers, each has its own `concurrency` in flight.
        workers = self.concurrency * (len(providers) if _spread(planned) else 1)
        try:
            await asyncio.gather(*(worker() for _ in range(int(min(workers, _count(planned))))))
        finally:
            for clients in state.clients.values():
                await clients.aclose()
        return results

    def unreached(self) -> Iterator[PlannedItem]:
        """After an interruption: the items taken and not ended with a result (waiting for a
        slot), then every item the run never took."""
        ended = {id(result.item) for result in self.results if result.status == "interrupted"}
        yield from (item for key, item in self._in_flight.items() if key not in ended)
        yield from self._pending

    async def _run_item(self, planned: PlannedItem, state: _RunState) -> ItemResult:
        from kling_cli.jobs.pickup import Standing, standing

        planned.key = planned.key or item_key(planned, self.output_dir)
        existing = earlier_job(self.journal, planned, self.output_dir)
        if existing is not None and planned.alternatives:
            # A spread item an earlier run sent somewhere stays there.
            made_by = {p.id: p for p in planned.alternatives}.get(existing.provider)
            if made_by is None and any(t.state != NOT_CREATED for t in existing.tasks):
                return _made_elsewhere(planned, existing)
            planned.provider = made_by or planned.provider
        capabilities = planned.provider.capabilities
        found = standing(existing, capabilities)
        if found is Standing.DONE:
            return _result_from_job(planned, existing, "skipped", SKIPPED_DONE)
        if found is Standing.FOLLOW and existing is not None:
            # What a previous run left in flight is paid for: resumed (looked up by our own
            # id where its submit was never answered), never submitted again.
            async with state.limiters[planned.provider.id].slot():
                result = await self._follow(planned, state, existing)
            existing = self.journal.job(existing.id) or existing
            found = standing(existing, capabilities, asked=True)
            if found in (Standing.DONE, Standing.FOLLOW):
                return result
        if self.skip_existing and self._on_disk(planned):
            return ItemResult(planned, "skipped", skip_reason=SKIPPED_EXISTS)
        if found is not Standing.FRESH and not self.resubmit_unknown:
            return _may_pay_twice(planned, existing, found)
        if planned.alternatives:
            return await self._spread(planned, state)
        return await self._submit(planned, state)

    async def _spread(self, planned: PlannedItem, state: _RunState) -> ItemResult:
        """A spread item goes to the provider with the most room, and to another only when
        the one it went to provably created nothing (kling_cli.batch_spread)."""
        attempts: list[Any] = []
        tried: set[str] = set()
        result = ItemResult(planned, "skipped", skip_reason=SKIPPED_OUT_OF_CREDITS)
        while True:
            excluded = tried | state.out_of_credits
            chosen = state.spread.choose(planned.alternatives, state.limiters, excluded)
            if chosen is None:
                return result
            planned.provider = chosen
            result = await self._submit(planned, state, attempts)
            tried.add(chosen.id)
            if result.skip_reason == _PROVIDER_STOPPED:
                result = ItemResult(planned, "skipped", skip_reason=SKIPPED_OUT_OF_CREDITS)
                continue
            state.spread.ended(chosen.id, result.refusal, result.error_code)
            if result.refusal is None:
                return result
            attempts = result.attempts

    def _on_disk(self, planned: PlannedItem) -> bool:
        from kling_cli.jobs.life import JobOptions
        from kling_cli.jobs.preflight import existing_outputs

        options = JobOptions(
            self.output_dir, name_template=self.name_template, item_id=planned.item.item_id
        )
        return existing_outputs(options, planned.request) is not None

    async def _submit(
        self, planned: PlannedItem, state: _RunState, attempts: list[Any] | None = None
    ) -> ItemResult:
        reason = state.stopped_submitting(planned)
        if reason is not None:  # without waiting for a slot first
            return ItemResult(planned, "skipped", skip_reason=reason)
        estimate = item_estimate(planned)
        limiter = state.limiters[planned.provider.id]
        async with state.spread.slot(limiter, planned.provider.id):
            reason = state.stopped_submitting(planned)
            if reason is None and not state.budget.reserve(estimate):
                reason = SKIPPED_BUDGET
            if reason is not None:
                return ItemResult(planned, "skipped", skip_reason=reason)
            result = await self._follow(planned, state, None, attempts)
        state.budget.settle(estimate, result.cost)
        if result.error_code == OutOfCreditsError.code:
            state.out_of_credits.add(planned.provider.id)
        return result

    async def _follow(
        self,
        planned: PlannedItem,
        state: _RunState,
        existing: Any,
        attempts: list[Any] | None = None,
    ) -> ItemResult:
        """Submit the item, or pick up the job `existing` where a previous run left it; wait,
        download, and record it all in the journal (the jobs layer owns the job's life).
        `attempts`: a spread item's attempts at other providers so far."""
        from kling_cli.jobs.life import JobLife, JobOptions
        from kling_cli.jobs.run import resume_job_async, run_job_async

        session = self.sessions[planned.provider.id]
        options = JobOptions(
            self.output_dir,
            self.timeout,
            sidecar=self.sidecars,
            name_template=self.name_template,
            item_id=planned.item.item_id,
            batch_key=planned.key,
        )
        reporter = _RetryReporter(self.on_retry)
        shared = {
            "clients": state.clients[planned.provider.id],
            "limiter": state.limiters[planned.provider.id],
        }
        if existing is not None:
            life = JobLife(
                self.journal, existing, planned.provider, progress=reporter, sidecar=self.sidecars
            )
            try:
                outcome = await resume_job_async(session, life, options, download=True, **shared)
            except BaseException:
                self.results.append(self._interrupted(planned, life))
                raise
        else:
            life = JobLife.begin(
                self.journal,
                planned.provider,
                planned.request,
                options,
                emulated=session.emulated,
                progress=reporter,
                attempts=attempts,
            )
            try:
                outcome = await run_job_async(session, life, planned.request, options, **shared)
            except BaseException:
                self.results.append(self._interrupted(planned, life))
                raise
        job = outcome.record or self.journal.job(life.job.id)  # `end` read it after its last write
        return _result_from_outcome(planned, outcome, job or life.job)

    def _interrupted(self, planned: PlannedItem, life: Any) -> ItemResult:
        """An item in flight when the run was stopped: recorded, resumable by a re-run."""
        job = self.journal.job(life.job.id) or life.job
        result = _result_from_job(planned, job, "interrupted")
        result.error = "interrupted; running the batch again resumes it"
        result.error_code = "interrupted"
        return result


def _providers(planned: Iterable[PlannedItem]) -> dict[str, Any]:
    """Each provider the items may use (their alternatives too), by id: a lazy plan
    (`kling_cli.batch_run.PlannedItems`) knows them without building every item."""
    known = getattr(planned, "providers", None)
    if known is not None:
        return dict(known)
    return {q.id: q for p in planned for q in (p.provider, *p.alternatives)}


def _spread(planned: Iterable[PlannedItem]) -> bool:
    """Whether items may go to any of several providers (`-p a,b,c`)."""
    known = getattr(planned, "spread", None)
    return bool(known) if known is not None else any(p.alternatives for p in planned)


def _count(planned: Iterable[PlannedItem]) -> int | float:
    return len(planned) if isinstance(planned, Sized) else math.inf


class _RetryReporter(NullListener):
    def __init__(self, on_retry: Callable[[str, float], None]) -> None:
        self.on_retry = on_retry

    def retrying(self, reason: str, delay: float) -> None:
        self.on_retry(reason, delay)


def _may_pay_twice(planned: PlannedItem, job: Any, found: str) -> ItemResult:
    """An item not submitted again because that may pay twice: said why, and how to."""
    from kling_cli.jobs.pickup import Standing, explain

    reason = SKIPPED_NOT_FOUND if found == Standing.TASK_NOT_FOUND else SKIPPED_UNKNOWN
    result = _result_from_job(planned, job, "skipped", reason)
    why = explain(job, planned.provider.name, asked=True) or "it may exist already"
    result.error = f"not submitted again: {why}."
    return result


def _made_elsewhere(planned: PlannedItem, job: Any) -> ItemResult:
    """A spread item an earlier run sent to a provider this run does not list: never sent
    anywhere else, as that one may have made (and charged) it."""
    result = _result_from_job(planned, job, "skipped", SKIPPED_UNKNOWN)
    result.error = (
        f"not submitted again: an earlier run sent it to {job.provider} (job {job.id}), which "
        f"this run does not list; add {job.provider} to -p to find it there."
    )
    return result


def _result_from_outcome(planned: PlannedItem, outcome: Any, job: Any) -> ItemResult:
    """An item's result from its job's: an item is done only when every image it asked for
    was made and saved; one whose fan-out was cut short (images never requested, or a submit
    that may exist unseen) is not, whatever its tasks that did run say."""
    from kling_cli.jobs.state import incomplete
    from kling_cli.jobs.views import saved_file_entry

    error = outcome.error
    result = _result_from_job(planned, job, "failed" if error else "succeeded")
    if outcome.record is None:
        # The journal fell behind (its disk is full, another process holds it): what this
        # run saved is the truth.
        result.files = [saved_file_entry(saved) for saved in outcome.files]
    result.warnings = list(outcome.warnings)
    result.refusal = outcome.refusal.value if outcome.refusal else None
    result.attempts = list(outcome.attempts)
    if error:
        result.error, result.error_code = error.message, error.code
        return result
    reason = incomplete(job)
    if reason is not None:
        result.status, result.error_code, result.error = "failed", "incomplete", reason
    return result


def _result_from_job(
    planned: PlannedItem, job: Any, status: str, skip_reason: str | None = None
) -> ItemResult:
    from kling_cli.jobs.views import recorded_files

    files = recorded_files(job)
    costs = [task.cost for task in job.tasks if task.cost is not None]
    return ItemResult(
        planned,
        status,
        job_id=job.id,
        task_ids=[task.task_id for task in job.tasks if task.task_id],
        files=files,
        cost=round(sum(costs), 6) if costs else None,
        skip_reason=skip_reason,
    )


def manifest_entry(result: ItemResult) -> dict[str, Any]:
    return {
        "id": result.item.item.item_id,
        "line": result.item.item.line,
        "provider": result.item.provider.id,
        "status": result.status,
        "job_id": result.job_id,
        "task_ids": result.task_ids,
        "request": result.item.request.model_dump(mode="json"),
        "files": result.files,
        "cost": result.cost,
        "error": result.error,
        "skip_reason": result.skip_reason,
        **({"attempts": [a.to_json() for a in result.attempts]} if result.attempts else {}),
    }
