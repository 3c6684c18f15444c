"""`kling generate`: validate, submit, wait with progress, download, print the files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli import delivery
from kling_cli.commands import common
from kling_cli.commands.common import (
    DEFAULT_OUTPUT_DIR,
    GENERATE_PROVIDER_OPTION,
    JSON_OPTION,
    OPEN_OPTION,
    PREVIEW_OPTION,
    REVEAL_OPTION,
    load_config,
)
from kling_cli.errors import ExitCode, InterruptedByUser, InvalidRequestError
from kling_cli.ui import Output, envelope, print_job_result, progress_for

if TYPE_CHECKING:
    from kling_cli.config import ConfigFile
    from kling_cli.jobs.life import JobOptions
    from kling_cli.request import GenerationRequest

DEFAULT_TIMEOUT_SECONDS = 600.0


def generate(
    ctx: typer.Context,
    prompt: str = typer.Argument(
        ..., help="What to draw; `-` reads it from stdin. Name references as @image_1, @image_2..."
    ),
    provider: str | None = GENERATE_PROVIDER_OPTION,
    ref: list[str] = typer.Option(
        [],
        "--ref",
        "-r",
        help="A reference image: URL or local JPEG/PNG (repeatable, up to 10, @image_N order).",
    ),
    aspect_ratio: str | None = typer.Option(
        None,
        "--aspect-ratio",
        "-a",
        help="auto, 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3 or 21:9 "
        "[default: auto with references, else 1:1]; several (16:9,1:1,9:16) or all (the "
        "eight ratios): one job each, same prompt and references.",
        show_default=False,
        autocompletion=common.aspect_ratios,
    ),
    resolution: str = typer.Option(
        "1k", "--resolution", "-R", help="1k or 2k.", autocompletion=common.resolutions
    ),
    num_images: int = typer.Option(1, "--num-images", "-n", help="How many images (1-9)."),
    output_format: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="png, jpeg or webp, where the provider lets you choose [default: png].",
        show_default=False,
    ),
    output_dir: Path = typer.Option(
        DEFAULT_OUTPUT_DIR, "--output-dir", "-o", help="Where to save the images."
    ),
    name: str = typer.Option(
        "{slug}-{task}",
        "--name",
        help="File name template: {id} {job} {task} {index} {provider} {date} {time} {slug} "
        "{aspect} {resolution} {ext}.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing files instead of adding -1, -2..."
    ),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Do nothing (and pay nothing) if the files exist."
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_SECONDS,
        "--timeout",
        help="Seconds the whole job may take, from upload to the last download (finite, > 0).",
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Submit, print the job id, and exit without waiting."
    ),
    negative_prompt: str | None = typer.Option(
        None, "--negative-prompt", help="What to keep out of the image, where supported."
    ),
    mode: str = typer.Option(
        "default", "--mode", help="default, or multi-shot where supported (see `kling providers`)."
    ),
    sidecar: bool = typer.Option(
        True, "--sidecar/--no-sidecar", help="Write <image>.json beside each image."
    ),
    fit: bool = typer.Option(
        False,
        "--fit",
        help="Convert local references that break a limit (format, size, a small side) "
        "instead of refusing them; never crops.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the requests that would be sent and the cost; send none."
    ),
    max_cost: float | None = typer.Option(
        None,
        "--max-cost",
        help="USD (finite, 0 or more): refuse to start when the estimate (of every aspect "
        "ratio) is higher.",
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        metavar="PATH",
        help="Write a gallery of the run (report.html) to PATH [default: OUTPUT_DIR/report.html "
        "with several aspect ratios].",
        show_default=False,
    ),
    no_report: bool = typer.Option(
        False, "--no-report", help="Write no gallery, even with several aspect ratios."
    ),
    open_images: bool = OPEN_OPTION,
    reveal: bool = REVEAL_OPTION,
    preview: bool = PREVIEW_OPTION,
    webhook: str | None = common.WEBHOOK_OPTION,
    quality: int | None = common.QUALITY_OPTION,
    upload_to: str | None = common.UPLOAD_TO_OPTION,
    download: bool = common.DOWNLOAD_OPTION,
    safety: str | None = common.SAFETY_OPTION,
    url_ttl: int | None = common.URL_TTL_OPTION,
    as_json: bool = JSON_OPTION,
    emulate: bool = typer.Option(
        False, "--emulate", help="Run against the built-in offline emulator (no key, no cost)."
    ),
) -> int:
    """Generate images from a prompt and optional reference images."""
    from kling_cli.deadline import check_timeout

    output: Output = ctx.obj
    if prompt == "-":
        prompt = sys.stdin.read().strip()
    check_timeout(timeout)

    from kling_cli.batch_budget import check_max_cost
    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.variants import ratio_list, variant_requests
    from kling_cli.request import build_request

    check_max_cost(max_cost)
    # Every ratio of a fan-out is checked here, before a reference is read or fitted.
    ratios = ratio_list(aspect_ratio)
    if ratios is not None and skip_existing:
        raise InvalidRequestError(
            "--skip-existing takes one aspect ratio; run each ratio on its own to skip it."
        )
    if ratios is not None and upload_to:
        raise InvalidRequestError(
            "--upload-to takes one aspect ratio: the provider PUTs each image to that one "
            "URL, each over the last."
        )
    if ratios is not None and no_wait:
        raise InvalidRequestError(
            "--no-wait takes one aspect ratio; several are run one after another."
        )
    if report is not None and no_report:
        raise InvalidRequestError("--report and --no-report cannot be used together.")
    if fit:
        ref = fit_references(ref, output)
    request = build_request(
        fit_option=not fit,  # with --fit given, what is still wrong is beyond it
        prompt=prompt,
        references=ref,
        aspect_ratio=ratios[0] if ratios else aspect_ratio,
        resolution=resolution,
        num_images=num_images,
        output_format=output_format,
        negative_prompt=negative_prompt,
        mode=mode,
        **delivery.delivery_fields(
            webhook=webhook, quality=quality, upload_to=upload_to, safety=safety, url_ttl=url_ttl
        ),
    )
    options = JobOptions(output_dir, timeout, not no_wait, overwrite, sidecar, name)
    if upload_to or download:
        options = delivery.upload_options(options, upload_to, download)
    requests = variant_requests(request, ratios) if ratios else [request]
    from kling_cli.jobs.preflight import check_names

    for each in requests:
        check_names(options, each)
    if skip_existing:
        from kling_cli.jobs.preflight import existing_outputs

        existing = existing_outputs(options, request)
        if existing is not None:
            return _print_skipped(output, existing)
    config = load_config(output)
    if dry_run:
        return _dry_run(
            output, config, provider, requests, options, aspect_ratio is None, emulate, max_cost
        )
    if ratios is not None and not no_report:
        from kling_cli.report import REPORT_NAME

        report = report or output_dir / REPORT_NAME
    if report is not None:
        from kling_cli.jobs.preflight import check_report_path

        check_report_path(report)
    if ratios is not None:
        return _variants(ctx, output, config, provider, requests, options, report, emulate)

    from kling_cli.jobs.generation import generate_job

    result = generate_job(
        config,
        provider,
        request,
        options,
        emulate=emulate,
        aspect_unset=aspect_ratio is None,
        progress_for=lambda name, task_ids: progress_for(output, name, tasks=len(task_ids)),
        note=output.note,
        max_cost=max_cost,
    )
    if report is not None:
        from kling_cli.commands.variants import write_report
        from kling_cli.jobs.variants import Variant

        provider_id = str(result.job["provider"])
        report, stopped = write_report(output, provider_id, [Variant(request, result)], report)
        if stopped is not None and result.error is None:
            result.error = stopped
        if report is not None and not output.json_mode:
            output.note(f"Report: {report}")
    exit_code = print_job_result(output, result, report=report)
    if upload_to and result.error is None and not no_wait:
        job_id = str(result.job["id"]) if result.job else "ID"
        output.note(common.uploaded_note(result.provider_name, upload_to, download, job_id))
    from kling_cli.commands.look import launch_saved, preview_saved

    if isinstance(result.error, InterruptedByUser):
        return exit_code
    paths = [saved.path for saved in result.files]
    if preview:
        preview_saved(output, paths)
    launch_saved(output, paths, open_images=open_images, reveal=reveal)
    return exit_code


def _variants(
    ctx: typer.Context,
    output: Output,
    config: ConfigFile,
    provider: str | None,
    requests: list[GenerationRequest],
    options: JobOptions,
    report: Path | None,
    emulate: bool,
) -> int:
    """One job per aspect ratio, through the jobs layer, then one gallery of them all."""
    from kling_cli.commands.look import launch_saved, preview_saved
    from kling_cli.commands.variants import print_variants, write_report
    from kling_cli.jobs.variants import generate_variants

    params = ctx.params
    run = generate_variants(
        config,
        provider,
        requests,
        options,
        emulate=emulate,
        max_cost=params["max_cost"],
        progress_for=lambda name, task_ids: progress_for(output, name, tasks=len(task_ids)),
        note=output.note,
    )
    if report is not None:
        report, stopped = write_report(
            output, run.provider.id, run.variants, report, skip_reason=run.skip_reason
        )
        if run.interruption is None:
            run.stopped = stopped
    exit_code = print_variants(output, run, report)
    if run.interruption is not None:
        return exit_code
    paths = [saved.path for v in run.variants if v.result for saved in v.result.files]
    if params["preview"]:
        preview_saved(output, paths)
    launch_saved(output, paths, open_images=params["open_images"], reveal=params["reveal"])
    return exit_code


def fit_references(references: list[str], output: Output) -> list[str]:
    """--fit: replace each local file that breaks a limit by a fitted copy, and say so."""
    from kling_cli.journal import data_dir
    from kling_cli.references import fit_reference, is_local

    fitted = []
    for reference in references:
        if not is_local(reference):
            fitted.append(reference)
            continue
        try:
            path, change = fit_reference(reference, data_dir() / "fitted-references")
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if change:
            output.note(f"--fit: {change}")
        fitted.append(path)
    return fitted


def _print_skipped(output: Output, existing: list[Path]) -> int:
    if output.json_mode:
        files = [{"path": str(path), "skipped": True} for path in existing]
        output.emit_json(envelope(exit_code=ExitCode.OK, files=files))
    else:
        for path in existing:
            output.result(str(path))
        output.note("Already there (--skip-existing): nothing was submitted.")
    return ExitCode.OK


def _dry_run(
    output: Output,
    config: ConfigFile,
    provider_id: str | None,
    requests: list[GenerationRequest],
    options: JobOptions,
    aspect_unset: bool,
    emulate: bool,
    max_cost: float | None,
) -> int:
    """The provider is chosen exactly as a real run would choose it; several aspect ratios
    show every job's requests, and the cost of them all; several providers (`-p a,b,c`,
    `-p auto`), the first a run would try, and the order it would fail over in."""
    from kling_cli.batch_budget import refuse_over_budget
    from kling_cli.jobs.generation import with_default_aspect
    from kling_cli.jobs.preview import preview
    from kling_cli.jobs.variants import fan_out_estimate
    from kling_cli.routing import describe_route, plan_route, requested
    from kling_cli.session import choose_provider, dry_run_endpoint

    ids = requested(provider_id, config)
    route = None
    if ids is not None and (len(ids) > 1 or ids == ["auto"]):
        route = plan_route(ids, config, requests[0], emulate=emulate, aspect_unset=aspect_unset)
        provider = route.first.provider
    else:
        provider = config.registry.lookup(choose_provider(provider_id, config, emulate=emulate))
    requests = [with_default_aspect(each, provider, aspect_unset) for each in requests]
    for each in requests:
        provider.check_request(each)
    cost = fan_out_estimate(provider, requests)
    refuse_over_budget(cost, max_cost)
    endpoint, has_key = dry_run_endpoint(provider, config)
    images = sum(each.num_images for each in requests)
    described_requests = [
        described for each in requests for described in preview(provider, endpoint, each, options)
    ]
    if output.json_mode:
        output.emit_json(
            {
                **envelope(exit_code=ExitCode.OK),
                "dry_run": True,
                "provider": provider.id,
                "key_configured": has_key,
                "requests": described_requests,
                "estimated_cost": round(cost, 6),
                **({"route": describe_route(route)} if route else {}),
            }
        )
        return ExitCode.OK
    import json

    for described in described_requests:
        output.result(f"{described['method']} {described['url']}")
        for name, value in described["headers"].items():
            output.result(f"{name}: {value}")
        output.result("")
        output.result(json.dumps(described["body"], indent=2, ensure_ascii=False))
        output.result("")
    output.note(
        f"Nothing was sent. Estimated cost: ${cost:.4f} ({images} image(s) x "
        f"${provider.price.usd_per_image} at {provider.name}, {provider.price.source})."
    )
    if not has_key and not emulate:
        output.warn(f"No key is set for {provider.name}; a real run would stop here (exit 4).")
    for row in describe_route(route) if route else []:
        if route and route.auto and not row["key_configured"]:
            continue  # -p auto never considers a provider without a key
        where = f"{row['order']}." if row["order"] else "skipped:"
        why = f" {row['unable']}" if row["unable"] else f" (${row['estimated_cost']:.4f})"
        output.note(f"Route {where} {row['provider']}{why}")
    return ExitCode.OK
