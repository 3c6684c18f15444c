"""`kling batch FILE`: many generations from a JSONL or CSV manifest."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kling_cli import delivery
from kling_cli.batch_run import DEFAULT_CONCURRENCY
from kling_cli.commands import common
from kling_cli.commands.batch_report import Progress, Tally, counted, summarize
from kling_cli.commands.common import (
    BATCH_PROVIDER_OPTION,
    DEFAULT_OUTPUT_DIR,
    JSON_OPTION,
    load_config,
)
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output, versioned

if TYPE_CHECKING:
    from kling_cli.batch_results import ItemResult
    from kling_cli.manifest import Spool


def batch(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="JSONL or CSV manifest; `-` for stdin."),
    provider: str | None = BATCH_PROVIDER_OPTION,
    aspect_ratio: str | None = typer.Option(
        None,
        "--aspect-ratio",
        "-a",
        help="Default aspect ratio for items without one; several (16:9,1:1) or all: one item "
        "per ratio.",
        autocompletion=common.aspect_ratios,
    ),
    resolution: str | None = typer.Option(
        None,
        "--resolution",
        "-R",
        help="Default resolution for items without one.",
        autocompletion=common.resolutions,
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
    skip_existing: bool = typer.Option(
        False,
        "--skip-existing",
        help="Skip (and pay nothing for) items whose files are all in --output-dir already, "
        "even with no journal (a fresh CI cache).",
    ),
    resubmit_unknown: bool = typer.Option(
        False,
        "--resubmit-unknown",
        help="Submit again items an earlier run may have created (a submit never answered, "
        "with no way to look it up) or whose task the provider no longer knows. MAY CHARGE "
        "TWICE.",
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
    no_report: bool = typer.Option(
        False, "--no-report", help="Do not write report.html (a gallery) beside manifest.json."
    ),
    summary_md: Path | None = typer.Option(
        None,
        "--summary-md",
        metavar="PATH",
        help="Append the totals and a table in Markdown to PATH (e.g. $GITHUB_STEP_SUMMARY).",
    ),
    webhook: str | None = common.WEBHOOK_OPTION,
    quality: int | None = common.QUALITY_OPTION,
    upload_to: str | None = common.UPLOAD_TO_OPTION,
    safety: str | None = common.SAFETY_OPTION,
    url_ttl: int | None = common.URL_TTL_OPTION,
    as_json: bool = JSON_OPTION,
    emulate: bool = typer.Option(
        False, "--emulate", help="Run against the built-in offline emulator (no key, no cost)."
    ),
) -> int:
    """Run every item of a manifest; re-running it skips what is done and resumes the rest.

    With --shard K/N, items go to shards by a hash of their id; `kling batch merge DIR...`
    folds the shards' manifest.json files into one."""
    from kling_cli.batch_run import execute_batch, plan_batch, preflight_batch
    from kling_cli.deadline import check_timeout
    from kling_cli.naming import check_template
    from kling_cli.run_manifest import ManifestWriter

    output: Output = ctx.obj
    check_timeout(timeout)
    check_template(name)
    if concurrency is not None and concurrency < 1:
        raise InvalidRequestError(f"--concurrency must be at least 1, not {concurrency}.")
    source = "stdin" if file == "-" else file
    # Read again as the run reaches each item, so that nothing is held per item.
    spool = _spool(file)
    defaults = {
        key: value
        for key, value in {
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
            "num_images": num_images,
        }.items()
        if value is not None
    }
    # Defaults for items without their own (a manifest field of the same name).
    defaults.update(
        delivery.delivery_fields(
            webhook=webhook, quality=quality, upload_to=upload_to, safety=safety, url_ttl=url_ttl
        )
    )
    config = load_config(output)
    plan = plan_batch(
        spool.items(source=source),
        config,
        source=source,
        defaults=defaults,
        provider=provider,
        emulate=emulate,
        shard=shard,
        max_cost=max_cost,
    )
    estimate = plan.estimate
    if dry_run:
        return _dry_run(output, plan.planned, config, estimate)
    preflight_batch(plan.planned, output_dir, name, skip_existing=skip_existing)
    progress = Progress(output, len(plan.planned))
    tally = Tally(ManifestWriter())
    thumbnails = None
    if not no_report:
        from kling_cli.report import ThumbnailMaker

        # Made as items end, on a worker thread, so the report at the end only links them.
        thumbnails = ThumbnailMaker(output_dir)

    def on_result(result: ItemResult) -> None:
        progress.finished(result)
        tally.add(result)
        if thumbnails is not None:
            thumbnails.add(result.files)

    try:
        _, interrupt = execute_batch(
            config,
            plan,
            emulate=emulate,
            on_start=progress.started,
            on_result=on_result,
            on_unreached=tally.add,
            on_retry=progress.retrying,
            note=output.note,
            output_dir=output_dir,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            # A --concurrency the user chose is where every provider starts; by default,
            # providers that advise fewer start there (429s lower either, kling_cli.limiter).
            documented_start=concurrency is None,
            timeout=timeout,
            sidecars=sidecar,
            name_template=name,
            max_cost=max_cost,
            skip_existing=skip_existing,
            resubmit_unknown=resubmit_unknown,
        )
    finally:
        progress.close()
        spool.close()
        if thumbnails is not None:
            thumbnails.close()
    if interrupt is None:
        return summarize(
            output,
            tally,
            output_dir,
            estimate,
            max_cost,
            sharded=shard is not None,
            report=not no_report,
            summary_md=summary_md,
        )
    from kling_cli.errors import InterruptedByUser, signal_number

    stopped = InterruptedByUser(
        "Interrupted; items already submitted keep running at their provider (they are paid for).",
        signum=signal_number(interrupt),
        hint="Run the same command again: it resumes them and does the rest.",
    )
    summarize(
        output,
        tally,
        output_dir,
        estimate,
        max_cost,
        interrupted_exit=stopped.exit_code,
        sharded=shard is not None,
        report=not no_report,
        summary_md=summary_md,
    )
    if not output.json_mode:
        output.error(stopped)
    return int(stopped.exit_code)


def _dry_run(output: Output, planned: Iterable[Any], config: Any, estimate: float) -> int:
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
    for item, plan in zip(items, planned, strict=True):
        # A spread item shows the request for the first provider that can take it.
        where = "/".join(p.id for p in plan.alternatives) or item["provider"]
        output.result(f"# {item['id']} (line {item['line']}, {where})")
        for described in item["requests"]:
            output.result(f"{described['method']} {described['url']}")
            output.result(json.dumps(described["body"], ensure_ascii=False))
    output.note(f"Nothing was sent. {counted(len(items), 'item')}; estimated cost ${estimate:.4f}.")
    return ExitCode.OK


def _spool(file: str) -> Spool:
    from kling_cli.manifest import Spool

    if file == "-":
        binary = getattr(sys.stdin, "buffer", None)  # None: a text stream stands in for stdin
        return Spool(binary or io.BytesIO(sys.stdin.read().encode("utf-8")))
    try:
        with Path(file).open("rb") as data:
            return Spool(data)
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {file}: {exc.strerror}.") from None


def merge(
    ctx: typer.Context,
    directories: list[Path] = typer.Argument(
        ..., metavar="DIR", help="Output folders of the shards (each with a manifest.json)."
    ),
    output_dir: Path = typer.Option(
        Path("."), "--output-dir", "-o", help="Where the merged manifest.json goes."
    ),
    copy_files: bool = typer.Option(
        False, "--copy-files", help="Copy each item's images (and sidecars) there too."
    ),
    as_json: bool = JSON_OPTION,
) -> int:
    """Fold the manifest.json of each shard's output folder into one."""
    from kling_cli.run_manifest import merge as merge_manifests

    output: Output = ctx.obj
    path = merge_manifests(directories, output_dir, copy_files=copy_files)
    if output.json_mode:
        output.emit_json(versioned(manifest=str(path)))
    else:
        output.result(str(path))
    return ExitCode.OK
