"""`kling ingest`: finish a job from the webhook body its provider POSTed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from kling_cli.commands.common import JSON_OPTION, load_config
from kling_cli.commands.status import print_job
from kling_cli.errors import InvalidRequestError
from kling_cli.ui import Output, progress_for


def ingest(
    ctx: typer.Context,
    payload: str = typer.Argument(
        ...,
        metavar="PAYLOAD",
        help="The webhook body as received (JSON file); `-` reads it from stdin.",
    ),
    timeout: float = typer.Option(
        600.0, "--timeout", help="Seconds this command may take (finite, > 0)."
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Where to save [default: where the job was started]."
    ),
    as_json: bool = JSON_OPTION,
) -> int:
    """Finish a job from a saved webhook body, as `kling status --download` would.

    A delivery that repeats one already ingested changes nothing."""
    from kling_cli.deadline import check_timeout
    from kling_cli.jobs.ingest import ingest_webhook

    output: Output = ctx.obj
    check_timeout(timeout)
    body = _read_body(payload)
    job, result, error = ingest_webhook(
        load_config(output),
        body,
        timeout=timeout,
        output_dir=output_dir,
        progress_for=lambda name, task_ids: progress_for(output, name, task_ids=task_ids),
        note=output.note,
    )
    if result is None:
        output.note(f"Already recorded: this delivery brings nothing new to job {job.id}.")
    else:
        for warning in result.warnings:
            output.warn(warning)
    return print_job(output, job, error)


# A webhook body names a task and a few image URLs: kilobytes. Reading stops past this, so
# an endless or huge stream (a wrong file, `yes |`) cannot take the machine's memory.
MAX_BODY_BYTES = 10 * 1024 * 1024


def _read_body(payload: str) -> object:
    where = "stdin" if payload == "-" else payload
    try:
        if payload == "-":
            data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with Path(payload).open("rb") as stream:
                data = stream.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {payload}: {exc.strerror}.") from None
    if len(data) > MAX_BODY_BYTES:
        raise InvalidRequestError(
            f"{where} is too large for a webhook body (over {MAX_BODY_BYTES // 2**20} MB); "
            "pass the JSON body the provider POSTed, as received."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{where} is not UTF-8 text; pass the JSON body.") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRequestError(
            f"{where} is not JSON ({exc}); pass the body as received."
        ) from None
