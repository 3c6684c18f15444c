"""A batch from its items to its results, as `kling batch` and `kling_cli.run_batch` both run
it: every item checked before anything is paid (`plan_batch`), then the runner over one
journal and one session per provider (`execute_batch`). No printing: callbacks report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.batch import ItemResult
    from kling_cli.config import ConfigFile
    from kling_cli.manifest import BatchItem, PlannedItem
    from kling_cli.session import Notify

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class BatchPlan:
    """The items a run will do (every one valid), and their estimated cost in USD."""

    planned: list[PlannedItem]
    estimate: float


def plan_batch(
    items: list[BatchItem],
    config: ConfigFile,
    *,
    source: str,
    defaults: Mapping[str, Any],
    provider: str | None,
    emulate: bool,
    shard: str | None = None,
    max_cost: float | None = None,
) -> BatchPlan:
    """Check every item against the documented limits and its provider (the whole manifest,
    also when only a shard runs: a bad line fails every shard before any pays), pick the
    shard, and refuse an estimate over `max_cost`. `InvalidRequestError` names each bad
    line."""
    from kling_cli.batch import check_max_cost, estimated_cost, refuse_over_budget
    from kling_cli.config import resolve_provider_id
    from kling_cli.manifest import expand_variants, plan_items, select_shard

    check_max_cost(max_cost)
    items = expand_variants(items, source=source, default_aspect=defaults.get("aspect_ratio"))
    in_shard = {id(item) for item in select_shard(items, shard)}
    spread = _spread_ids(resolve_provider_id(provider, config), config)
    default_provider = (spread[0] if spread else resolve_provider_id(provider, config)) or (
        "runware" if emulate else None
    )
    planned = plan_items(
        items,
        defaults,
        source=source,
        default_provider=default_provider,
        registry=config.registry,
        spread=spread or (),
    )
    planned = [plan for plan in planned if id(plan.item) in in_shard]
    if spread:
        _spread_over(planned, [config.registry.lookup(i) for i in spread])
    estimate = estimated_cost(planned)
    refuse_over_budget(estimate, max_cost)
    return BatchPlan(planned, estimate)


def _spread_ids(spec: str | None, config: ConfigFile) -> list[str] | None:
    """`-p a,b,c` for a batch: the providers its items are spread over; None for one."""
    from kling_cli.errors import InvalidRequestError
    from kling_cli.routing import AUTO, provider_ids

    ids = provider_ids(spec)
    if not ids or (len(ids) == 1 and ids != [AUTO]):
        return None
    if AUTO in ids:
        raise InvalidRequestError(
            "-p auto chooses a provider for one generation; spread a batch by naming its "
            "providers (-p runware,fal,wavespeed)."
        )
    if len(set(ids)) != len(ids):
        raise InvalidRequestError(f"--provider {','.join(ids)} names a provider twice.")
    for provider_id in ids:
        config.registry.info(provider_id)
    return ids


def _spread_over(planned: list[PlannedItem], providers: list[Any]) -> None:
    """Each item that names no provider may be made by any of `providers` that can serve
    it (checked as for the first, which every item was validated against)."""
    from kling_cli.errors import InvalidRequestError

    for plan in planned:
        if plan.item.fields.get("provider"):
            continue  # an item that names its provider stays on it
        able = []
        for provider in providers:
            try:
                provider.check_request(plan.request)
            except InvalidRequestError:
                continue
            able.append(provider)
        plan.alternatives = tuple(able)


def preflight_batch(
    planned: list[PlannedItem], output_dir: Path, template: str, *, skip_existing: bool
) -> None:
    """Before paying: the output directory, and every item's file names."""
    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.preflight import check_names, check_output_dir
    from kling_cli.naming import check_skippable, check_template

    check_template(template)
    if skip_existing:
        check_skippable(template)
    for plan in planned:
        options = JobOptions(output_dir, name_template=template, item_id=plan.item.item_id)
        check_names(options, plan.request)
    check_output_dir(output_dir)


def execute_batch(
    config: ConfigFile,
    plan: BatchPlan,
    *,
    emulate: bool,
    on_start: Callable[[PlannedItem], None] = lambda item: None,
    on_result: Callable[[ItemResult], None] = lambda result: None,
    on_retry: Callable[[str, float], None] = lambda reason, delay: None,
    note: Notify = lambda text: None,
    **settings: Any,
) -> tuple[list[ItemResult], KeyboardInterrupt | None]:
    """Run the plan in one event loop. Returns every item's result (in the order they ended)
    and the interruption (Ctrl-C, SIGTERM, SIGHUP) that stopped the run, if one did: the
    items in flight then are `interrupted` (recorded, resumable), and the ones never reached
    are skipped as `interrupted`. `settings` are `BatchRunner`'s (output_dir, concurrency,
    timeout, ...)."""
    from kling_cli.batch import SKIPPED_INTERRUPTED, BatchRunner, ItemResult
    from kling_cli.jobs.record import open_journal
    from kling_cli.session import open_sessions

    provider_ids = sorted(
        {p.id for item in plan.planned for p in (item.provider, *item.alternatives)}
    )
    with open_sessions(provider_ids, emulate=emulate, config=config, note=note) as sessions:
        journal = open_journal()
        try:
            journal.check_writable()
            runner = BatchRunner(
                journal=journal,
                sessions=sessions,
                emulated=emulate,
                on_start=on_start,
                on_result=on_result,
                on_retry=on_retry,
                **settings,
            )
            interrupt: KeyboardInterrupt | None = None
            try:
                import asyncio  # not at module level: `kling batch --help` needs none of it

                asyncio.run(runner.run(plan.planned))
            except KeyboardInterrupt as exc:
                interrupt = exc
                for result in runner.results:
                    if result.status == "interrupted":  # in flight: each names its paid job
                        on_result(result)
        finally:
            journal.close()
    results = list(runner.results)
    if interrupt is not None:
        reached = {id(result.item) for result in results}
        results += [
            ItemResult(item, "skipped", skip_reason=SKIPPED_INTERRUPTED)
            for item in plan.planned
            if id(item) not in reached
        ]
    return results, interrupt
