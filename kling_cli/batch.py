"""Batch runs: many generations from a JSONL or CSV manifest, concurrently, resumable.

Every item is validated before anything is submitted. Each item is one journal job carrying a
key derived from the item itself, so running the same manifest again skips what is done and
picks up what was submitted but not finished, without submitting it again.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kling_cli.errors import InvalidRequestError, OutOfCreditsError
from kling_cli.events import NullListener
from kling_cli.limiter import ProviderLimiter
from kling_cli.naming import safe_name
from kling_cli.providers import get_provider
from kling_cli.providers.base import Provider

# Item fields, with the names a manifest may use for each.
FIELD_ALIASES: dict[str, str] = {
    "id": "id",
    "prompt": "prompt",
    "provider": "provider",
    "refs": "references",
    "ref": "references",
    "references": "references",
    "aspect_ratio": "aspect_ratio",
    "resolution": "resolution",
    "num_images": "num_images",
    "n": "num_images",
    "format": "output_format",
    "output_format": "output_format",
    "negative_prompt": "negative_prompt",
    "mode": "mode",
}
MANIFEST_NAME = "manifest.json"
BATCH_NAME_TEMPLATE = "{id}"
# Why an item was skipped: done by an earlier run, or not submitted because the run stopped
# submitting (--max-cost would be passed; the provider said the account is out of credits).
SKIPPED_DONE = "done"
SKIPPED_BUDGET = "budget"
SKIPPED_OUT_OF_CREDITS = "out_of_credits"
SKIPPED_INTERRUPTED = "interrupted"
NOT_SUBMITTED = {
    SKIPPED_BUDGET: "budget",
    SKIPPED_OUT_OF_CREDITS: "out of credits",
    SKIPPED_INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class BatchItem:
    line: int  # 1-based line in the file (CSV: counting the header)
    fields: Mapping[str, Any]

    @property
    def item_id(self) -> str:
        """The item's id made safe as a file name on every system (it names the files)."""
        fallback = f"item-{self.line}"
        return safe_name(str(self.fields.get("id") or fallback), fallback=fallback)


@dataclass
class PlannedItem:
    item: BatchItem
    provider: Provider
    request: Any  # GenerationRequest (pydantic is imported lazily)
    key: str = ""


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

    @property
    def not_submitted(self) -> bool:
        """Skipped because the run stopped submitting, so still to do."""
        return self.skip_reason in NOT_SUBMITTED


def read_items(text: str, *, source: str) -> list[BatchItem]:
    """JSONL (one object per line) or CSV (a header row names the fields)."""
    stripped = text.lstrip()
    if not stripped:
        raise InvalidRequestError(f"{source} has no items.")
    if stripped.startswith("{"):
        return _read_jsonl(text, source)
    return _read_csv(text, source)


def _read_jsonl(text: str, source: str) -> list[BatchItem]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise InvalidRequestError(f"{source} line {number}: not valid JSON ({exc}).") from None
        if not isinstance(value, dict):
            raise InvalidRequestError(f"{source} line {number}: expected a JSON object.")
        items.append(BatchItem(number, value))
    return items


def _read_csv(text: str, source: str) -> list[BatchItem]:
    reader = csv.DictReader(io.StringIO(text))
    items = []
    for row in reader:
        fields: dict[str, Any] = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        refs = fields.pop("refs", None) or fields.pop("ref", None) or fields.pop("references", None)
        if refs:
            # Several references in one cell, separated by `|` or whitespace.
            fields["refs"] = [r for r in re.split(r"[|\s]+", refs) if r]
        for number_field in ("num_images", "n"):
            if number_field in fields:
                try:
                    fields[number_field] = int(fields[number_field])
                except ValueError:
                    raise InvalidRequestError(
                        f"{source} line {reader.line_num}, field {number_field}: "
                        f"{fields[number_field]!r} is not a whole number."
                    ) from None
        items.append(BatchItem(reader.line_num, fields))
    return items


def select_shard(items: list[BatchItem], shard: str | None) -> list[BatchItem]:
    """`K/N`: the K-th of N deterministic slices (every N-th item, starting at the K-th)."""
    if shard is None:
        return items
    match = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InvalidRequestError(
            f"--shard {shard!r} must be K/N with 1 <= K <= N, e.g. 2/4 for the second of four."
        )
    k, n = int(match[1]), int(match[2])
    return [item for index, item in enumerate(items) if index % n == k - 1]


def plan_items(
    items: Iterable[BatchItem],
    defaults: Mapping[str, Any],
    *,
    source: str,
    default_provider: str | None,
) -> list[PlannedItem]:
    """Validate every item against the documented limits and its provider's capabilities,
    before anything is submitted. The first bad item fails the run, naming line and field."""
    from kling_cli.request import build_request

    planned = []
    seen_ids: dict[str, int] = {}
    for item in items:
        fields: dict[str, Any] = {}
        for name, value in item.fields.items():
            canonical = FIELD_ALIASES.get(name)
            if canonical is None:
                raise InvalidRequestError(
                    f"{source} line {item.line}: unknown field {name!r}; fields are "
                    f"{', '.join(sorted(set(FIELD_ALIASES) - {'ref', 'n', 'references'}))}."
                )
            fields[canonical] = value
        if item.item_id in seen_ids:
            raise InvalidRequestError(
                f"{source} line {item.line}: id {item.item_id!r} is already used on line "
                f"{seen_ids[item.item_id]}; ids name the output files, so they must be unique."
            )
        seen_ids[item.item_id] = item.line
        provider_id = fields.pop("provider", None) or default_provider
        fields.pop("id", None)
        merged = {**defaults, **fields}
        if isinstance(merged.get("references"), str):
            merged["references"] = [merged["references"]]
        try:
            if provider_id is None:
                raise InvalidRequestError(
                    "no provider: give the item a provider field, or pass --provider."
                )
            provider = get_provider(str(provider_id))
            if (
                merged.get("aspect_ratio") is None
                and "auto" not in provider.capabilities.aspect_ratios
            ):
                merged["aspect_ratio"] = "1:1"
            request = build_request(**merged)
            provider.check_request(request)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{source} line {item.line}: {exc.message}") from None
        planned.append(PlannedItem(item, provider, request))
    return planned


def item_key(planned: PlannedItem, output_dir: Path) -> str:
    """Same item, same output folder: same key, so a re-run finds the job again."""
    material = json.dumps(
        {
            "id": planned.item.item_id,
            "provider": planned.provider.id,
            "request": planned.request.model_dump(mode="json"),
            "output_dir": str(output_dir.resolve()),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def item_estimate(planned: PlannedItem) -> float:
    return float(planned.provider.price.usd_per_image * planned.request.num_images)


def estimated_cost(planned: Iterable[PlannedItem]) -> float:
    return sum(item_estimate(p) for p in planned)


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

    def stopped_submitting(self, planned: PlannedItem) -> str | None:
        if planned.provider.id in self.out_of_credits:
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
    # Whether providers that advise fewer items in flight start there.
    documented_start: bool = True
    on_start: Callable[[PlannedItem], None] = lambda item: None
    on_result: Callable[[ItemResult], None] = lambda result: None
    on_retry: Callable[[str, float], None] = lambda reason, delay: None
    # The items ended so far, in the order they ended: what a summary shows when the run is
    # interrupted.
    results: list[ItemResult] = field(default_factory=list)

    async def run(self, planned: list[PlannedItem]) -> list[ItemResult]:
        from kling_cli.transport import HttpClients

        provider_ids = {p.provider.id for p in planned}
        state = _RunState(
            {
                provider_id: HttpClients.create(max_connections=max(self.concurrency, 8))
                for provider_id in provider_ids
            },
            {
                p.provider.id: ProviderLimiter(
                    self.concurrency,
                    p.provider.initial_concurrency if self.documented_start else None,
                )
                for p in planned
            },
            Budget(self.max_cost),
        )
        pending = iter(planned)
        results = self.results

        async def worker() -> None:
            # A fixed pool pulling from one iterator: memory stays flat however long the
            # manifest, unlike one coroutine per item.
            for item in pending:
                self.on_start(item)
                result = await self._run_item(item, state)
                results.append(result)
                self.on_result(result)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(planned)))))
        finally:
            for clients in state.clients.values():
                await clients.aclose()
        return results

    async def _run_item(self, planned: PlannedItem, state: _RunState) -> ItemResult:
        planned.key = planned.key or item_key(planned, self.output_dir)
        existing = self.journal.find_batch_item(planned.key)
        if existing is not None and _finished_and_saved(existing):
            return _result_from_job(planned, existing, "skipped", SKIPPED_DONE)
        # Resume what a previous run left in flight (already paid for); an item whose tasks
        # all failed gets a fresh attempt.
        if existing is not None and _in_flight(existing, planned.provider):
            async with state.limiters[planned.provider.id].slot():
                return await self._follow(planned, state, existing)
        reason = state.stopped_submitting(planned)
        if reason is not None:  # without waiting for a slot first
            return ItemResult(planned, "skipped", skip_reason=reason)
        estimate = item_estimate(planned)
        async with state.limiters[planned.provider.id].slot():
            reason = state.stopped_submitting(planned)
            if reason is None and not state.budget.reserve(estimate):
                reason = SKIPPED_BUDGET
            if reason is not None:
                return ItemResult(planned, "skipped", skip_reason=reason)
            result = await self._follow(planned, state, None)
        state.budget.settle(estimate, result.cost)
        if result.error_code == OutOfCreditsError.code:
            state.out_of_credits.add(planned.provider.id)
        return result

    async def _follow(self, planned: PlannedItem, state: _RunState, existing: Any) -> ItemResult:
        """Submit the item, or pick up the job `existing` where a previous run left it; wait,
        download, and record it all in the journal (the jobs layer owns the job's life)."""
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
            )
            try:
                outcome = await run_job_async(session, life, planned.request, options, **shared)
            except BaseException:
                self.results.append(self._interrupted(planned, life))
                raise
        job = self.journal.job(life.job.id) or life.job
        error = outcome.error
        result = _result_from_job(planned, job, "failed" if error else "succeeded")
        if error:
            result.error, result.error_code = error.message, error.code
        return result

    def _interrupted(self, planned: PlannedItem, life: Any) -> ItemResult:
        """An item in flight when the run was stopped: recorded, resumable by a re-run."""
        job = self.journal.job(life.job.id) or life.job
        result = _result_from_job(planned, job, "interrupted")
        result.error = "interrupted; running the batch again resumes it"
        result.error_code = "interrupted"
        return result


class _RetryReporter(NullListener):
    def __init__(self, on_retry: Callable[[str, float], None]) -> None:
        self.on_retry = on_retry

    def retrying(self, reason: str, delay: float) -> None:
        self.on_retry(reason, delay)


def _in_flight(job: Any, provider: Provider) -> bool:
    """A task of the job may be running (and is paid for): a task id the provider gave, or
    an unanswered submit the provider can find by the id we chose. Never submitted again."""
    from kling_cli.journal import MAY_EXIST, SUBMITTING

    lookup = provider.capabilities.client_task_id_lookup
    return any(
        (task.task_id and task.state != "failed")
        or (lookup and task.client_task_id and task.state in (SUBMITTING, MAY_EXIST))
        for task in job.tasks
    )


def _saved_urls(job: Any) -> set[str]:
    return {
        out.url
        for task in job.tasks
        for out in task.outputs
        if out.path and Path(out.path).exists()
    }


def _finished_and_saved(job: Any) -> bool:
    """Every task succeeded and every image it made is on disk (whatever state the job row
    says: a run stopped between the last download and that write)."""
    outputs = [out for task in job.tasks for out in task.outputs]
    all_succeeded = bool(job.tasks) and all(task.state == "succeeded" for task in job.tasks)
    return all_succeeded and bool(outputs) and len(_saved_urls(job)) == len(outputs)


def _result_from_job(
    planned: PlannedItem, job: Any, status: str, skip_reason: str | None = None
) -> ItemResult:
    files = [
        {
            "path": out.path,
            "sha256": out.sha256,
            "bytes": out.bytes,
            "width": out.width,
            "height": out.height,
        }
        for task in job.tasks
        for out in task.outputs
        if out.path
    ]
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
    }


def write_manifest(output_dir: Path, results: list[ItemResult]) -> Path:
    """`manifest.json`: one entry per item, in manifest order, for the next CI step."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / MANIFEST_NAME
    ordered = sorted(results, key=lambda r: r.item.item.line)
    document = {"version": 1, "items": [manifest_entry(result) for result in ordered]}
    temporary = path.with_suffix(".json.part")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)
    return path
