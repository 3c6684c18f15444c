"""`kling generate`: validate, submit, wait with progress, download, print the files."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli.commands.common import (
    DEFAULT_OUTPUT_DIR,
    JSON_OPTION,
    PROVIDER_OPTION,
    ProviderSession,
    dry_run_endpoint,
    load_config,
    open_session,
)
from kling_cli.errors import (
    ExitCode,
    InterruptedByUser,
    InvalidRequestError,
    KlingError,
    TaskFailedError,
)
from kling_cli.ui import (
    Output,
    PlainProgress,
    describe_file,
    describe_job,
    envelope,
    progress_for,
)

if TYPE_CHECKING:
    from kling_cli.download import SavedFile
    from kling_cli.events import Listeners
    from kling_cli.journal import Journal
    from kling_cli.providers.base import TaskHandle, TaskStatus
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
    ),
    resolution: str = typer.Option("1k", "--resolution", "-R", help="1k or 2k."),
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
        DEFAULT_TIMEOUT_SECONDS, "--timeout", help="Seconds to wait for the images."
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
    as_json: bool = JSON_OPTION,
    emulate: bool = typer.Option(
        False, "--emulate", help="Run against the built-in offline emulator (no key, no cost)."
    ),
) -> int:
    """Generate images from a prompt and optional reference images."""
    output: Output = ctx.obj
    if prompt == "-":
        prompt = sys.stdin.read().strip()
    if timeout <= 0:
        raise InvalidRequestError(
            f"--timeout must be a positive number of seconds, not {timeout:g}."
        )

    from kling_cli.request import build_request

    if fit:
        ref = fit_references(ref, output)
    request = build_request(
        prompt=prompt,
        references=ref,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        num_images=num_images,
        output_format=output_format,
        negative_prompt=negative_prompt,
        mode=mode,
    )
    from kling_cli.naming import check_template

    check_template(name)
    if skip_existing:
        from kling_cli.naming import Naming, check_skippable, existing_outputs

        check_skippable(name)
        naming = Naming(name, "", "", request.prompt, request.aspect_ratio, request.resolution)
        existing = existing_outputs(output_dir, naming, request.num_images)
        if existing is not None:
            return _print_skipped(output, existing)
    if dry_run:
        return _dry_run(provider, request, output, aspect_ratio is None)

    from kling_cli.journal import Journal

    journal = Journal.open_default()
    try:
        with open_session(provider, emulate=emulate, output=output) as session:
            if aspect_ratio is None and "auto" not in session.provider.capabilities.aspect_ratios:
                # Our default with references is `auto`; where a provider has none, the one
                # ratio every provider accepts.
                request = request.model_copy(update={"aspect_ratio": "1:1"})
            session.provider.check_request(request)
            options = RunOptions(output_dir, timeout, no_wait, overwrite, sidecar, name)
            return _generate(session, request, output, journal, options)
    finally:
        journal.close()


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
    provider_id: str | None, request: GenerationRequest, output: Output, aspect_unset: bool
) -> int:
    from kling_cli.config import resolve_provider_id
    from kling_cli.engine import describe_request
    from kling_cli.providers import get_provider

    config = load_config(output)
    chosen = resolve_provider_id(provider_id, config)
    if chosen is None:
        raise InvalidRequestError("--dry-run needs a provider: pass --provider.")
    provider = get_provider(chosen)
    if aspect_unset and "auto" not in provider.capabilities.aspect_ratios:
        request = request.model_copy(update={"aspect_ratio": "1:1"})
    provider.check_request(request)
    endpoint, has_key = dry_run_endpoint(provider, config)
    from kling_cli.references import with_described_references

    shown = with_described_references(request, provider.capabilities.local_files)
    requests = [
        describe_request(provider.build_submit(part, endpoint).request)
        for part in shown.split(provider.capabilities.max_images)
    ]
    cost = provider.price.usd_per_image * request.num_images
    if output.json_mode:
        output.emit_json(
            {
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
    if not has_key:
        output.warn(f"No key is set for {provider.name}; a real run would stop here (exit 4).")
    return ExitCode.OK


@dataclass(frozen=True)
class RunOptions:
    output_dir: Path
    timeout: float
    no_wait: bool
    overwrite: bool
    sidecar: bool
    name_template: str


def _generate(
    session: ProviderSession,
    request: GenerationRequest,
    output: Output,
    journal: Journal,
    options: RunOptions,
) -> int:
    """Record the job before the first request, run it, and record how it ended."""
    from kling_cli.events import Listeners
    from kling_cli.journal import JobRecorder, job_state_after

    job_id = journal.create_job(
        session.provider.id,
        request.model_dump(mode="json"),
        str(options.output_dir.resolve()),
        emulated=session.emulated,
        name_template=options.name_template,
    )
    progress = progress_for(output, session.provider.name)
    # The journal first: a crash right after a progress line must find the job recorded.
    listener = Listeners(JobRecorder(journal, job_id), progress)
    if options.sidecar:
        from kling_cli.sidecar import SidecarWriter

        recorded = request.model_dump(mode="json")
        listener = Listeners(listener, SidecarWriter(job_id, session.provider.id, recorded))
    try:
        import asyncio  # not at module level: it is slow to import

        files = asyncio.run(_run(session, request, output, listener, job_id, options))
    except (KlingError, KeyboardInterrupt) as exc:
        progress.close()
        error = _with_resume_hint(exc, job_id, progress, session)
        journal.set_job_state(job_id, job_state_after(error), getattr(error, "message", None))
        raise error from None
    finally:
        progress.close()
    journal.set_job_state(job_id, "submitted" if files is None else "succeeded")
    if files is not None:
        _print_result(output, session, journal, job_id, files)
    return ExitCode.OK


async def _run(
    session: ProviderSession,
    request: GenerationRequest,
    output: Output,
    listener: Listeners,
    job_id: str,
    options: RunOptions,
) -> list[SavedFile] | None:
    from kling_cli.engine import Engine
    from kling_cli.naming import Naming

    naming = Naming(
        options.name_template,
        job_id,
        session.provider.id,
        request.prompt,
        request.aspect_ratio,
        request.resolution,
    )
    timeout = options.timeout
    async with Engine(session.provider, session.endpoint, listener=listener) as engine:
        started = time.monotonic()
        push_timeout = None if options.no_wait else timeout
        submitted = await engine.submit_job(request, push_timeout=push_timeout)
        if options.no_wait:
            _print_submitted(output, job_id, submitted)
            return None
        outcome = await engine.finish(
            submitted,
            options.output_dir,
            naming.stem_for(),
            timeout=max(timeout - (time.monotonic() - started), 0.001),
            overwrite=options.overwrite,
        )
    for _, status in outcome.finished:
        if status.error:
            output.warn(f"{session.provider.name} reported a partial failure: {status.error}")
    if outcome.failures:
        # The images that were made are on disk; the first failure decides the exit code.
        for saved in outcome.files:
            output.note(f"saved {saved.path}")
        raise outcome.failures[0]
    return outcome.files


def _print_result(
    output: Output, session: ProviderSession, journal: Journal, job_id: str, files: list[SavedFile]
) -> None:
    job = journal.job(job_id)
    assert job is not None
    if output.json_mode:
        described = [describe_file(saved) for saved in files]
        output.emit_json(envelope(exit_code=ExitCode.OK, job=describe_job(job), files=described))
        return
    for saved in files:
        output.result(str(saved.path))
    costs = [task.cost for task in job.tasks if task.cost is not None]
    if costs:
        output.note(f"Cost reported by {session.provider.name}: ${sum(costs):.4f}")


def _print_submitted(
    output: Output, job_id: str, submitted: list[tuple[TaskHandle, TaskStatus]]
) -> None:
    if output.json_mode:
        first_task, first_status = submitted[0]
        job = {
            "id": job_id,
            "provider": first_task.provider,
            "task_id": first_task.task_id,
            "state": first_status.state.value,
            "task_ids": [task.task_id for task, _ in submitted],
        }
        output.emit_json(envelope(exit_code=ExitCode.OK, job=job))
        return
    output.result(job_id)
    output.note(f"Submitted; fetch the images later with: kling status {job_id} --wait --download")


def _with_resume_hint(
    error: BaseException, job_id: str, progress: PlainProgress, session: ProviderSession
) -> BaseException:
    """Point every stop that leaves a paid job behind at the command that resumes it."""
    resume = f"kling status {job_id} --wait --download"
    if isinstance(error, KeyboardInterrupt):
        if progress.task is None:
            return InterruptedByUser(
                f"Interrupted while submitting job {job_id}; if the provider received it, it "
                "keeps running (and is paid for).",
                hint=f"Check with: {resume}",
                job={"id": job_id, "provider": session.provider.id, "task_id": None, "state": None},
            )
        return InterruptedByUser(
            f"Interrupted; job {job_id} keeps running at {session.provider.name} (it is paid for).",
            hint=f"Fetch the images later with: {resume}",
            job={
                "id": job_id,
                "provider": session.provider.id,
                "task_id": progress.task.task_id,
                "state": None,
            },
        )
    assert isinstance(error, KlingError)
    if progress.task is not None and not isinstance(error, TaskFailedError):
        # Anything that stops us after the provider accepted the job leaves it resumable.
        error.hint = f"Resume with: {resume}"
    if error.job is not None:
        error.job = {"id": job_id, **error.job}
    elif progress.task is not None:
        error.job = {
            "id": job_id,
            "provider": session.provider.id,
            "task_id": progress.task.task_id,
            "state": None,
        }
    return error
