"""`kling batch FILE`: many generations from a JSONL or CSV manifest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kling_cli.commands.common import (
    DEFAULT_OUTPUT_DIR,
    JSON_OPTION,
    PROVIDER_OPTION,
    load_config,
    open_sessions,
)
from kling_cli.config import resolve_provider_id
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output

if TYPE_CHECKING:
    from kling_cli.batch import ItemResult

DEFAULT_CONCURRENCY = 8


def batch(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="JSONL or CSV manifest; `-` for stdin."),
    provider: str | None = PROVIDER_OPTION,
    aspect_ratio: str | None = typer.Option(
        None, "--aspect-ratio", "-a", help="Default aspect ratio for items without one."
    ),
    resolution: str | None = typer.Option(
        None, "--resolution", "-R", help="Default resolution for items without one."
    ),
    num_images: int | None = typer.Option(
        None, "--num-images", "-n", help="Default image count for items without one."
    ),
    output_dir: Path = typer.Option(
        DEFAULT_OUTPUT_DIR, "--output-dir", "-o", help="Where images and manifest.json go."
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-j",
        help=f"Items in flight at once [default: {DEFAULT_CONCURRENCY}, fewer at first for "
        "providers that advise it].",
        show_default=False,
    ),
    shard: str | None = typer.Option(
        None, "--shard", help="K/N: run only the K-th of N deterministic slices (CI matrices)."
    ),
    max_cost: float | None = typer.Option(
        None,
        "--max-cost",
        help="USD (finite, 0 or more): refuse to start when the estimate is higher; stop "
        "submitting new items when the spend so far would pass it.",
    ),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Seconds each item may take, upload to download (finite, > 0)."
    ),
    sidecar: bool = typer.Option(
        True, "--sidecar/--no-sidecar", help="Write <image>.json beside each image."
    ),
    name: str = typer.Option(
        "{id}", "--name", help="File name template (see `kling generate --help`)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate, print each item's requests and the cost; send none."
    ),
    as_json: bool = JSON_OPTION,
    emulate: bool = typer.Option(
        False, "--emulate", help="Run against the built-in offline emulator (no key, no cost)."
    ),
) -> int:
    """Run every item of a manifest; re-running it skips what is done and resumes the rest."""
    from kling_cli.batch import check_max_cost, estimated_cost
    from kling_cli.deadline import check_timeout
    from kling_cli.manifest import plan_items, read_items, select_shard
    from kling_cli.naming import check_template

    output: Output = ctx.obj
    check_timeout(timeout)
    check_max_cost(max_cost)
    check_template(name)
    if concurrency is not None and concurrency < 1:
        raise InvalidRequestError(f"--concurrency must be at least 1, not {concurrency}.")
    source = "stdin" if file == "-" else file
    text = sys.stdin.read() if file == "-" else _read_file(file)
    items = select_shard(read_items(text, source=source), shard)
    defaults = {
        key: value
        for key, value in {
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
            "num_images": num_images,
        }.items()
        if value is not None
    }
    config = load_config(output)
    default_provider = resolve_provider_id(provider, config) or ("runware" if emulate else None)
    planned = plan_items(
        items,
        defaults,
        source=source,
        default_provider=default_provider,
        registry=config.registry,
    )
    estimate = estimated_cost(planned)
    if max_cost is not None and estimate > max_cost:
        raise InvalidRequestError(
            f"The estimated cost is ${estimate:.2f}, over --max-cost ${max_cost:.2f}; "
            "nothing was submitted."
        )
    if dry_run:
        return _dry_run(output, planned, config, estimate)
    provider_ids = sorted({item.provider.id for item in planned})
    _preflight(planned, output_dir, name)
    with open_sessions(provider_ids, emulate=emulate, output=output, config=config) as sessions:
        results, interrupt = _run(
            output,
            sessions,
            planned,
            output_dir=output_dir,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            # A --concurrency the user chose is where every provider starts; by default,
            # providers that advise fewer start there (429s lower either, kling_cli.limiter).
            documented_start=concurrency is None,
            timeout=timeout,
            emulated=emulate,
            sidecars=sidecar,
            name_template=name,
            max_cost=max_cost,
        )
    exit_code = _summarize(output, results, output_dir, estimate, max_cost)
    if interrupt is None:
        return exit_code
    from kling_cli.errors import InterruptedByUser, signal_number

    stopped = InterruptedByUser(
        "Interrupted; items already submitted keep running at their provider (they are paid for).",
        signum=signal_number(interrupt),
        hint="Run the same command again: it resumes them and does the rest.",
    )
    if not output.json_mode:
        output.error(stopped)
    return int(stopped.exit_code)


def _preflight(planned: list[Any], output_dir: Path, template: str) -> None:
    """Before paying: the output directory, and every item's file names."""
    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.preflight import check_names, check_output_dir

    for plan in planned:
        options = JobOptions(output_dir, name_template=template, item_id=plan.item.item_id)
        check_names(options, plan.request)
    check_output_dir(output_dir)


def _dry_run(output: Output, planned: list[Any], config: Any, estimate: float) -> int:
    import json

    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.preview import preview
    from kling_cli.session import dry_run_endpoint

    items = []
    for plan in planned:
        endpoint, _ = dry_run_endpoint(plan.provider, config)
        # A batch waits for every item, as `generate` does without --no-wait.
        options = JobOptions(Path("."), 600.0)
        items.append(
            {
                "id": plan.item.item_id,
                "line": plan.item.line,
                "provider": plan.provider.id,
                "requests": preview(plan.provider, endpoint, plan.request, options),
            }
        )
    if output.json_mode:
        from kling_cli.ui import envelope

        output.emit_json(
            {
                **envelope(exit_code=ExitCode.OK),
                "dry_run": True,
                "items": items,
                "estimated_cost": round(estimate, 6),
            }
        )
        return ExitCode.OK
    for item in items:
        output.result(f"# {item['id']} (line {item['line']}, {item['provider']})")
        for described in item["requests"]:
            output.result(f"{described['method']} {described['url']}")
            output.result(json.dumps(described["body"], ensure_ascii=False))
    output.note(f"Nothing was sent. {counted(len(items), 'item')}; estimated cost ${estimate:.4f}.")
    return ExitCode.OK


def counted(number: int, noun: str) -> str:
    """`1 image`, `2 images`: a count with its noun agreeing (nouns here take an -s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _read_file(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {file}: {exc.strerror}.") from None


def _run(
    output: Output, sessions: dict[str, Any], planned: list[Any], **settings: Any
) -> tuple[list[ItemResult], KeyboardInterrupt | None]:
    """Every item's result, and the interruption (Ctrl-C, SIGTERM, SIGHUP) that stopped the
    run, if one did: then the items it never reached are reported as not submitted."""
    from kling_cli.batch import SKIPPED_INTERRUPTED, BatchRunner, ItemResult
    from kling_cli.jobs.record import open_journal

    journal = open_journal()
    journal.check_writable()
    progress = _Progress(output, len(planned))
    runner = BatchRunner(
        journal=journal,
        sessions=sessions,
        on_start=progress.started,
        on_result=progress.finished,
        on_retry=progress.retrying,
        **settings,
    )
    interrupt: KeyboardInterrupt | None = None
    try:
        import asyncio  # not at module level: it is slow to import

        asyncio.run(runner.run(planned))
    except KeyboardInterrupt as exc:
        interrupt = exc
    finally:
        progress.close()
        journal.close()
    results = list(runner.results)
    if interrupt is not None:
        reached = {id(result.item) for result in results}
        results += [
            ItemResult(item, "skipped", skip_reason=SKIPPED_INTERRUPTED)
            for item in planned
            if id(item) not in reached
        ]
    return results, interrupt


class _Progress:
    """A progress bar on a terminal; one line per finished item otherwise; JSON lines with
    --json."""

    def __init__(self, output: Output, total: int) -> None:
        self.output = output
        self.total = total
        self.done = self.failed = self.images = self.running = 0
        self.spent = 0.0  # as reported by the providers
        self.bar: Any = None
        if output.stderr.is_terminal and not output.json_mode:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=output.stderr,
                transient=True,
            )
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def started(self, item: Any) -> None:
        self.running += 1
        self._show()

    def _show(self, advance: int = 0) -> None:
        if self.bar is None:
            return
        parts = [f"{self.running} running", f"{self.failed} failed", counted(self.images, "image")]
        if self.spent:
            parts.append(f"${self.spent:.2f} spent")
        self.bar.update(self.task, advance=advance, description=" · ".join(parts))

    def finished(self, result: ItemResult) -> None:
        from kling_cli.batch import NOT_SUBMITTED, manifest_entry

        self.done += 1
        self.running -= 1
        self.failed += result.status == "failed"
        self.images += len(result.files)
        if result.status != "skipped":  # done in an earlier run, paid then
            self.spent += result.cost or 0.0
        if self.output.json_mode:
            self.output.emit_json({"item": manifest_entry(result)})
        line = f"{result.status:<9} {result.item.item.item_id}"
        if result.error:
            line += f": {result.error}"
        elif result.not_submitted:
            line += f" ({NOT_SUBMITTED[result.skip_reason or '']})"
        else:
            line += f" ({counted(len(result.files), 'image')})"
        if self.bar is not None:
            self._show(advance=1)
            if result.status == "failed":
                self.bar.console.print(line, markup=False, highlight=False)
        elif not self.output.json_mode:
            self.output.note(f"[{self.done}/{self.total}] {line}")

    def retrying(self, reason: str, delay: float) -> None:
        if self.bar is None and not self.output.json_mode:
            self.output.note(f"{reason}; retrying in {delay:.1f} s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summarize(
    output: Output,
    results: list[ItemResult],
    output_dir: Path,
    estimate: float,
    max_cost: float | None,
) -> int:
    from kling_cli.batch import NOT_SUBMITTED, SKIPPED_BUDGET, SKIPPED_DONE, write_manifest

    manifest = write_manifest(output_dir, results)
    ordered = sorted(results, key=lambda r: r.item.item.line)
    counts = {
        state: sum(r.status == state for r in results)
        for state in ("succeeded", "failed", "skipped", "interrupted")
    }
    not_submitted = [r for r in ordered if r.not_submitted]
    images = sum(len(r.files) for r in results)
    spent = sum(r.cost for r in results if r.cost is not None and r.status != "skipped")
    partial = counts["failed"] or counts["interrupted"] or not_submitted
    exit_code = ExitCode.SOME_ITEMS_FAILED if partial else ExitCode.OK
    if output.json_mode:
        output.emit_json(
            {
                "summary": {
                    **counts,
                    "not_submitted": [
                        {
                            "id": r.item.item.item_id,
                            "line": r.item.item.line,
                            "reason": r.skip_reason,
                        }
                        for r in not_submitted
                    ],
                    "images": images,
                    "cost": round(spent, 6),
                    "estimated_cost": round(estimate, 6),
                    "manifest": str(manifest),
                    "exit_code": int(exit_code),
                }
            }
        )
        return exit_code
    output.result(str(manifest))
    done = sum(r.skip_reason == SKIPPED_DONE for r in results)
    skipped = f"{done} skipped (already done)"
    for reason, label in NOT_SUBMITTED.items():
        count = sum(r.skip_reason == reason for r in not_submitted)
        skipped += f", {count} skipped ({label})" if count else ""
    output.note(
        f"{counts['succeeded']} succeeded, {counts['failed']} failed, {skipped}; "
        f"{counted(images, 'image')}; reported cost ${spent:.4f}."
    )
    for result in ordered:
        item = result.item.item
        if result.status == "failed":
            output.note(f"  failed: {item.item_id} (line {item.line}): {result.error}")
        elif result.not_submitted:
            label = NOT_SUBMITTED[result.skip_reason or ""]
            output.note(f"  skipped ({label}): {item.item_id} (line {item.line})")
    if any(r.skip_reason == SKIPPED_BUDGET for r in not_submitted) and max_cost is not None:
        output.note(
            f"Stopped submitting before the spend passed --max-cost ${max_cost:.2f}; what was "
            "submitted was finished. Run again with a higher --max-cost to do the rest."
        )
    return exit_code
