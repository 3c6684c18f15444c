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
    from kling_cli.engine import Engine, job_summary, resume_command

    async with Engine(session.provider, session.endpoint, listener=progress) as engine:
        task, status = await engine.submit(request)
        if no_wait:
            progress.close()
            if output.json_mode:
                output.emit_json(envelope(exit_code=ExitCode.OK, job=job_summary(task, status)))
            else:
                output.result(task.task_id)
                output.note(f"Check on it with: {resume_command(task)}")
            return ExitCode.OK
        status = await engine.wait(task, status, timeout=timeout)
        files = await engine.download(
            task,
            status,
            output_dir,
            file_stem_for(request.prompt, task.task_id),
            overwrite=overwrite,
        )
    progress.close()
    if status.error:
        output.warn(f"{session.provider.name} reported a partial failure: {status.error}")
    if output.json_mode:
        output.emit_json(
            envelope(
                exit_code=ExitCode.OK,
                job=job_summary(task, status),
                files=[describe_file(f) for f in files],
            )
        )
    else:
        for saved in files:
            output.result(str(saved.path))
        if status.cost is not None:
            output.note(f"Cost reported by {session.provider.name}: ${status.cost:.4f}")
    return ExitCode.OK
