"""`kling generate`: validate, submit, wait with progress, download, print the files."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kling_cli.commands.common import (
    DEFAULT_OUTPUT_DIR,
    JSON_OPTION,
    PROVIDER_OPTION,
    ProviderSession,
    file_stem_for,
    open_session,
)
from kling_cli.errors import ExitCode, InterruptedByUser, InvalidRequestError
from kling_cli.ui import Output, PlainProgress, describe_file, envelope, progress_for

if TYPE_CHECKING:
    from kling_cli.download import SavedFile
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
        [], "--ref", "-r", help="A reference image URL (repeatable, up to 10, in @image_N order)."
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
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing files instead of adding -1, -2..."
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_SECONDS, "--timeout", help="Seconds to wait for the images."
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Submit, print the task id, and exit without waiting."
    ),
    negative_prompt: str | None = typer.Option(
        None, "--negative-prompt", help="What to keep out of the image, where supported."
    ),
    mode: str = typer.Option(
        "default", "--mode", help="default, or multi-shot where supported (see `kling providers`)."
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
    with open_session(provider, emulate=emulate, output=output) as session:
        session.provider.check_request(request)
        progress = progress_for(output, session.provider.name)
        try:
            return asyncio.run(
                _run(session, request, output, progress, output_dir, timeout, no_wait, overwrite)
            )
        except KeyboardInterrupt:
            if progress.task is None:
                raise
            raise _interrupted(progress.task, progress.status) from None
        finally:
            progress.close()


def _print_submitted(output: Output, submitted: list[tuple[TaskHandle, TaskStatus]]) -> None:
    from kling_cli.engine import job_summary, resume_command

    if output.json_mode:
        first_task, first_status = submitted[0]
        job = job_summary(first_task, first_status)
        job["task_ids"] = [task.task_id for task, _ in submitted]
        output.emit_json(envelope(exit_code=ExitCode.OK, job=job))
        return
    for task, _ in submitted:
        output.result(task.task_id)
        output.note(f"Check on it with: {resume_command(task)}")


def _interrupted(task: TaskHandle, status: TaskStatus | None) -> InterruptedByUser:
    from kling_cli.engine import job_summary, resume_command

    return InterruptedByUser(
        f"Interrupted; task {task.task_id} keeps running at {task.provider} (it is paid for).",
        hint=f"Fetch the images later with: {resume_command(task)}",
        job=job_summary(task, status),
    )


async def _run(
    session: ProviderSession,
    request: GenerationRequest,
    output: Output,
    progress: PlainProgress,
    output_dir: Path,
    timeout: float,
    no_wait: bool,
    overwrite: bool,
) -> int:
    from kling_cli.engine import Engine, job_summary

    async with Engine(session.provider, session.endpoint, listener=progress) as engine:
        submitted = await engine.submit_job(request)
        if no_wait:
            progress.close()
            _print_submitted(output, submitted)
            return ExitCode.OK
        outcomes = await asyncio.gather(
            *(engine.wait(task, status, timeout=timeout) for task, status in submitted),
            return_exceptions=True,
        )
        files: list[SavedFile] = []
        finished: list[TaskStatus] = []
        failures: list[BaseException] = []
        for (task, _), outcome in zip(submitted, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures.append(outcome)
                continue
            finished.append(outcome)
            if outcome.error:
                output.warn(f"{session.provider.name} reported a partial failure: {outcome.error}")
            stem = file_stem_for(request.prompt, task.task_id)
            files += await engine.download(task, outcome, output_dir, stem, overwrite=overwrite)
    progress.close()
    if failures:
        # Images that were made are on disk; the first failure decides the exit code.
        for saved in files:
            output.note(f"saved {saved.path}")
        raise failures[0]
    job = job_summary(submitted[0][0], finished[0])
    job["task_ids"] = [task.task_id for task, _ in submitted]
    if output.json_mode:
        output.emit_json(
            envelope(exit_code=ExitCode.OK, job=job, files=[describe_file(f) for f in files])
        )
        return ExitCode.OK
    for saved in files:
        output.result(str(saved.path))
    costs = [status.cost for status in finished if status.cost is not None]
    if costs:
        output.note(f"Cost reported by {session.provider.name}: ${sum(costs):.4f}")
    return ExitCode.OK
