"""A batch from its items to its results, as `kling batch` and `kling_cli.run_batch` both run
it: every item checked before anything is paid (`plan_batch`), then the runner over one
journal and one session per provider (`execute_batch`). No printing: callbacks report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.batch_results import ItemResult
    from kling_cli.config import ConfigFile
    from kling_cli.manifest import BatchItem, PlannedItem
    from kling_cli.providers.base import Provider
    from kling_cli.session import Notify

DEFAULT_CONCURRENCY = 8


class PlannedItems:
    """The items a run will do, every one checked already, each built again (its request,
    `kling_cli.manifest.plan_item`) only when it is reached: iterating holds one item at a
    time, however long the manifest."""

    def __init__(
        self,
        items: Callable[[], Iterable[BatchItem]],
        build: Callable[[Iterable[BatchItem]], Iterator[PlannedItem]],
        count: int,
        providers: Mapping[str, Provider],
        *,
        spread: bool = False,
    ) -> None:
        self._items, self._build = items, build
        self.count, self.providers = count, dict(providers)
        self.spread = spread  # items may go to any of several providers (`-p a,b,c`)

    def __iter__(self) -> Iterator[PlannedItem]:
        return self._build(self._items())

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class BatchPlan:
    """The items a run will do (every one valid), and their estimated cost in USD."""

    planned: PlannedItems
    estimate: float


def plan_batch(
    items: Sequence[BatchItem] | Callable[[], Iterable[BatchItem]],
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
    line. `items` may be a function giving a fresh iterator over them at each call: they are
    then read once to be checked and again as the run reaches each, holding none. An item
    whose aspect ratio is a list becomes one item per ratio (`expand_variants`) before the
    shard is picked; `-p a,b,c` spreads the items that name no provider over those providers."""
    from kling_cli.batch_budget import check_max_cost, item_estimate, refuse_over_budget
    from kling_cli.config import resolve_provider_id
    from kling_cli.manifest import expand_variants, plan_items, repeated_id_hashes, shard_filter

    check_max_cost(max_cost)
    given = items if callable(items) else (lambda: items)

    def source_items() -> Iterator[BatchItem]:
        return expand_variants(given(), source=source, default_aspect=defaults.get("aspect_ratio"))

    selected = shard_filter(shard)
    spread = _spread_ids(resolve_provider_id(provider, config), config)
    spread_over = [config.registry.lookup(i) for i in spread] if spread else []
    default_provider = (spread[0] if spread else resolve_provider_id(provider, config)) or (
        "runware" if emulate else None
    )

    def build(
        items: Iterable[BatchItem], repeated: set[int] | None = None
    ) -> Iterator[PlannedItem]:
        planned = plan_items(
            items,
            defaults,
            source=source,
            default_provider=default_provider,
            registry=config.registry,
            spread=spread or (),
            repeated=set() if repeated is None else repeated,  # checked by the first pass
        )
        if selected is not None:
            planned = (p for p in planned if selected(p.item))
        return _with_alternatives(planned, spread_over) if spread_over else planned

    count, estimate, providers = 0, 0.0, {}
    for plan in build(source_items(), repeated_id_hashes(source_items())):
        count += 1
        estimate += item_estimate(plan)
        for able in (plan.provider, *plan.alternatives):
            providers[able.id] = able
    refuse_over_budget(estimate, max_cost)
    return BatchPlan(
        PlannedItems(source_items, build, count, providers, spread=bool(spread_over)), estimate
    )


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


def _with_alternatives(
    planned: Iterable[PlannedItem], providers: list[Any]
) -> Iterator[PlannedItem]:
    """Each item that names no provider may be made by any of `providers` that can serve
    it (checked as for the one it was planned on)."""
    from kling_cli.errors import InvalidRequestError

    for plan in planned:
        if not plan.item.fields.get("provider"):  # an item that names its provider stays on it
            able = []
            for provider in providers:
                try:
                    provider.check_request(plan.request)
                except InvalidRequestError:
                    continue
                able.append(provider)
            plan.alternatives = tuple(able)
        yield plan


def preflight_batch(
    planned: Iterable[PlannedItem], output_dir: Path, template: str, *, skip_existing: bool
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
    on_unreached: Callable[[ItemResult], None] | None = None,
    **settings: Any,
) -> tuple[list[ItemResult], KeyboardInterrupt | None]:
    """Run the plan in one event loop. Returns every item's result (in the order they ended)
    and the interruption (Ctrl-C, SIGTERM, SIGHUP) that stopped the run, if one did: the
    items in flight then are `interrupted` (recorded, resumable), and the ones never reached
    are skipped as `interrupted`. `settings` are `BatchRunner`'s (output_dir, concurrency,
    timeout, ...). With `on_unreached`, no result is kept (memory stays flat in the item
    count): each one is passed to `on_result` only, those never reached to `on_unreached`,
    and the list returned is empty."""
    from kling_cli.batch import BatchRunner
    from kling_cli.batch_results import SKIPPED_INTERRUPTED, ItemResult
    from kling_cli.jobs.record import open_journal
    from kling_cli.session import open_sessions

    # Those the checking pass found: no pass over the manifest only for them.
    provider_ids = sorted(plan.planned.providers)
    with open_sessions(provider_ids, emulate=emulate, config=config, note=note) as sessions:
        journal = open_journal()
        try:
            journal.check_writable()
            # One commit per turn of the event loop, not per event: with many items in flight,
            # a commit (an fsync) for each would hold the loop most of the time.
            journal.group_commits()
            runner = BatchRunner(
                journal=journal,
                sessions=sessions,
                emulated=emulate,
                on_start=on_start,
                on_result=on_result,
                on_retry=on_retry,
                keep_results=on_unreached is None,
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
    results = list(runner.results) if on_unreached is None else []
    if interrupt is not None:
        for item in runner.unreached():
            skipped = ItemResult(item, "skipped", skip_reason=SKIPPED_INTERRUPTED)
            if on_unreached is None:
                results.append(skipped)
            else:
                on_unreached(skipped)
    return results, interrupt
