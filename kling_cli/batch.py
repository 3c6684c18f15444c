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

# The budget and result names are re-exported: callers written against `kling_cli.batch`,
# where they used to live, keep working.
from kling_cli.batch_budget import Budget as Budget
from kling_cli.batch_budget import check_max_cost as check_max_cost
from kling_cli.batch_budget import item_estimate as item_estimate
from kling_cli.batch_budget import refuse_over_budget as refuse_over_budget
from kling_cli.batch_items import earlier_job, item_key
from kling_cli.batch_results import MAY_PAY_TWICE as MAY_PAY_TWICE
from kling_cli.batch_results import NOT_SUBMITTED as NOT_SUBMITTED
from kling_cli.batch_results import SKIPPED_BUDGET as SKIPPED_BUDGET
from kling_cli.batch_results import SKIPPED_DONE as SKIPPED_DONE
from kling_cli.batch_results import SKIPPED_EXISTS as SKIPPED_EXISTS
from kling_cli.batch_results import SKIPPED_INTERRUPTED as SKIPPED_INTERRUPTED
from kling_cli.batch_results import SKIPPED_NOT_FOUND as SKIPPED_NOT_FOUND
from kling_cli.batch_results import SKIPPED_OUT_OF_CREDITS as SKIPPED_OUT_OF_CREDITS
from kling_cli.batch_results import SKIPPED_UNKNOWN as SKIPPED_UNKNOWN
from kling_cli.batch_results import ItemResult as ItemResult
from kling_cli.batch_results import (
    made_elsewhere,
    may_pay_twice,
    result_from_job,
    result_from_outcome,
)
from kling_cli.batch_results import manifest_entry as manifest_entry
from kling_cli.batch_spread import Spread
from kling_cli.errors import OutOfCreditsError
from kling_cli.events import NullListener
from kling_cli.journal import NOT_CREATED
from kling_cli.limiter import ProviderLimiter
from kling_cli.manifest import PlannedItem

BATCH_NAME_TEMPLATE = "{id}"
# A spread item whose provider stopped taking items before it was sent (never shown: the
# item goes to another provider).
_PROVIDER_STOPPED = "provider_stopped"


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
                return made_elsewhere(planned, existing)
            planned.provider = made_by or planned.provider
        capabilities = planned.provider.capabilities
        found = standing(existing, capabilities)
        if found is Standing.DONE:
            return result_from_job(planned, existing, "skipped", SKIPPED_DONE)
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
            return may_pay_twice(planned, existing, found)
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
        return result_from_outcome(planned, outcome, job or life.job)

    def _interrupted(self, planned: PlannedItem, life: Any) -> ItemResult:
        """An item in flight when the run was stopped: recorded, resumable by a re-run."""
        job = self.journal.job(life.job.id) or life.job
        result = result_from_job(planned, job, "interrupted")
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
