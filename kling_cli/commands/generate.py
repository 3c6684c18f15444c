"""`kling generate`: validate, submit, wait with progress, download, print the files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli.commands import common
from kling_cli.commands.common import (
    DEFAULT_OUTPUT_DIR,
    JSON_OPTION,
    PROVIDER_OPTION,
    load_config,
)
from kling_cli.errors import ExitCode, InvalidRequestError
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
    provider: str | None = PROVIDER_OPTION,
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
        "[default: auto with references, else 1:1]",
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
    open_images: bool = typer.Option(
        False, "--open", help="Open each saved image in the system's image viewer."
    ),
    reveal: bool = typer.Option(
        False, "--reveal", help="Show the saved images' folder in the file manager."
    ),
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

    from kling_cli.jobs.life import JobOptions
    from kling_cli.request import build_request

    if fit:
        ref = fit_references(ref, output)
    request = build_request(
        fit_option=not fit,  # with --fit given, what is still wrong is beyond it
        prompt=prompt,
        references=ref,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        num_images=num_images,
        output_format=output_format,
        negative_prompt=negative_prompt,
        mode=mode,
        **common.delivery_fields(
            webhook=webhook, quality=quality, upload_to=upload_to, safety=safety, url_ttl=url_ttl
        ),
    )
    options = JobOptions(output_dir, timeout, not no_wait, overwrite, sidecar, name)
    if upload_to or download:
        options = common.upload_options(options, upload_to, download)
    from kling_cli.jobs.preflight import check_names

    check_names(options, request)
    if skip_existing:
        from kling_cli.jobs.preflight import existing_outputs

        existing = existing_outputs(options, request)
        if existing is not None:
            return _print_skipped(output, existing)
    config = load_config(output)
    if dry_run:
        return _dry_run(output, config, provider, request, options, aspect_ratio is None, emulate)

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
    )
    exit_code = print_job_result(output, result)
    if upload_to and result.error is None and not no_wait:
        output.note(common.uploaded_note(result.provider_name, upload_to, download))
    launch_saved([saved.path for saved in result.files], open_images=open_images, reveal=reveal)
    return exit_code


def launch_saved(paths: list[Path], *, open_images: bool, reveal: bool) -> None:
    """--open and --reveal, through the system's launcher (xdg-open, open, start)."""
    if open_images:
        for path in paths:
            typer.launch(str(path))
    if reveal and paths:
        # One folder holds them all: show it once, with the first image selected.
        typer.launch(str(paths[0]), locate=True)


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
    request: GenerationRequest,
    options: JobOptions,
    aspect_unset: bool,
    emulate: bool,
) -> int:
    """The provider is chosen exactly as a real run would choose it."""
    from kling_cli.jobs.generation import with_default_aspect
    from kling_cli.jobs.preview import estimated_cost, preview
    from kling_cli.session import choose_provider, dry_run_endpoint

    provider = config.registry.lookup(choose_provider(provider_id, config, emulate=emulate))
    request = with_default_aspect(request, provider, aspect_unset)
    provider.check_request(request)
    endpoint, has_key = dry_run_endpoint(provider, config)
    requests = preview(provider, endpoint, request, options)
    cost = estimated_cost(provider, request)
    if output.json_mode:
        output.emit_json(
            {
                **envelope(exit_code=ExitCode.OK),
                "dry_run": True,
                "provider": provider.id,
                "key_configured": has_key,
                "requests": requests,
                "estimated_cost": round(cost, 6),
            }
        )
        return ExitCode.OK
    import json

    for described in requests:
        output.result(f"{described['method']} {described['url']}")
        for name, value in described["headers"].items():
            output.result(f"{name}: {value}")
        output.result("")
        output.result(json.dumps(described["body"], indent=2, ensure_ascii=False))
        output.result("")
    output.note(
        f"Nothing was sent. Estimated cost: ${cost:.4f} ({request.num_images} image(s) x "
        f"${provider.price.usd_per_image} at {provider.name}, {provider.price.source})."
    )
    if not has_key and not emulate:
        output.warn(f"No key is set for {provider.name}; a real run would stop here (exit 4).")
    return ExitCode.OK
