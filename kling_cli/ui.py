"""Everything the user sees: results on stdout, progress and diagnostics on stderr.

A spinner with elapsed time on a terminal; one plain line per state change otherwise (CI logs);
`--json` prints exactly one object on stdout. Colour follows rich, which honours NO_COLOR.
"""

from __future__ import annotations

import io
import os
import sys
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO

from kling_cli.durations import human_duration
from kling_cli.errors import ExitCode, KlingError
from kling_cli.events import NullListener

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from rich.console import Console
    from rich.progress import Progress, TaskID

    from kling_cli.download import SavedFile
    from kling_cli.jobs.life import JobResult
    from kling_cli.journal import JobRecord
    from kling_cli.providers.base import TaskHandle, TaskStatus

JSON_SCHEMA_VERSION = 1


class Output:
    """The process's two streams. Plain lines are written directly; rich consoles (colour,
    tables, spinners) are created on first use, since importing rich costs start-up time that
    `kling --version` or `kling config path` should not pay."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        for stream in (sys.stdout, sys.stderr):
            # A stream whose encoding lacks a character (a cp1252 console, a redirected pipe
            # on Windows) must not turn a finished job into a crash: write it escaped.
            if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
                stream.reconfigure(errors="backslashreplace")

    @cached_property
    def stdout(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=True)

    @cached_property
    def stderr(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, soft_wrap=True)

    def result(self, text: str) -> None:
        _write(sys.stdout, text + "\n")

    def note(self, text: str) -> None:
        _write(sys.stderr, text + "\n")

    def warn(self, text: str) -> None:
        try:
            self.stderr.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False)
        except OSError:
            _silence(sys.stderr)

    def emit_json(self, payload: dict[str, Any]) -> None:
        import json

        text = json.dumps(payload, ensure_ascii=False)
        if not _encodable(text, sys.stdout):
            # \uXXXX escapes keep the JSON exact where an escaped character would break it.
            text = json.dumps(payload, ensure_ascii=True)
        _write(sys.stdout, text + "\n")

    def error(self, exc: KlingError) -> None:
        try:
            self.stderr.print(f"[bold red]Error:[/bold red] {escape(exc.message)}", highlight=False)
            if exc.hint:
                self.stderr.print(f"  {escape(exc.hint)}", markup=False, highlight=False)
        except OSError:
            _silence(sys.stderr)


def _write(stream: TextIO | None, text: str) -> None:
    """Write and flush. A reader that went away (`kling ... | head -n1`) or a stream closed
    before kling started (`>&-`) loses the output, never the job: what cannot be written is
    dropped and the stream silenced."""
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        _silence(stream)


def _silence(stream: TextIO | None) -> None:
    """Point a broken stream's file descriptor at /dev/null, so later writes (and Python's own
    flush at exit) succeed instead of failing again."""
    if stream is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
        stream.flush()
    except (OSError, ValueError):
        pass


def _encodable(text: str, stream: Any) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def versioned(**fields: Any) -> dict[str, Any]:
    """A `--json` object of a command that runs no job (listings, settings, batch lines):
    its own fields after the contract's version (kling_cli/schemas.py describes each)."""
    return {"schema_version": JSON_SCHEMA_VERSION, **fields}


def envelope(
    *,
    exit_code: int,
    job: dict[str, Any] | None = None,
    files: list[dict[str, Any]] | None = None,
    error: KlingError | None = None,
) -> dict[str, Any]:
    """The one JSON shape commands that run jobs print on every path, errors included. The
    error carries what the human output tells: `hint` is the command to resume, or the
    variable or command that sets a missing key."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "status": "success" if exit_code == ExitCode.OK else "error",
        "exit_code": int(exit_code),
        "job": job,
        "files": files or [],
        "error": None
        if error is None
        else {"code": error.code, "message": error.message, "hint": error.hint},
    }


def describe_job(job: JobRecord) -> dict[str, Any]:
    from kling_cli.jobs.views import describe_job as describe

    return describe(job)


def print_job_result(output: Output, result: JobResult, *, report: Path | None = None) -> int:
    """A job's result: the saved paths on stdout (or the job id, when only submitted), notes
    and the error on stderr; with --json, the envelope (and the gallery written, `report`).
    Returns the exit code."""
    for warning in result.warnings:
        output.warn(warning)
    if output.json_mode:
        files = [describe_file(saved) for saved in result.files]
        for saved, described in zip(result.files, files, strict=True):
            described["size_mismatch"] = saved.path in result.size_mismatches
        payload = envelope(
            exit_code=result.exit_code, job=result.job, files=files, error=result.error
        )
        if report is not None:
            payload["report"] = str(report)
        output.emit_json(payload)
        return result.exit_code
    if result.error is not None:
        for saved in result.files:
            output.note(f"saved {saved.path}")
        output.error(result.error)
        return result.exit_code
    if result.submitted_only:
        output.result(result.job_id)
        output.note(
            f"Submitted; fetch the images later with: kling status {result.job_id} "
            "--wait --download"
        )
        return result.exit_code
    for saved in result.files:
        output.result(str(saved.path))
    cost = result.job.get("cost")
    if cost:
        output.note(f"Cost reported by {result.provider_name}: ${cost:.4f}")
    return result.exit_code


def describe_file(saved: SavedFile) -> dict[str, Any]:
    from kling_cli.jobs.views import saved_file_entry

    return saved_file_entry(saved)


class PlainProgress(NullListener):
    """One line on stderr per change, for logs and pipes.

    A job of several tasks (a provider that makes fewer images per task than asked for)
    interleaves their events, so each line then says which task it is about: `task 2/3`,
    numbered as `task_ids` lists them (a resumed job), else in the order they are submitted."""

    def __init__(
        self,
        output: Output,
        provider_name: str,
        *,
        tasks: int = 1,
        task_ids: Sequence[str | None] = (),
    ) -> None:
        self.output = output
        self.provider_name = provider_name
        self.started = time.monotonic()
        self.task: TaskHandle | None = None
        self.status: TaskStatus | None = None
        self.task_count = max(tasks, len(task_ids))
        self._numbers = {task_id: n for n, task_id in enumerate(task_ids, 1) if task_id}

    def _which(self, task: TaskHandle) -> str:
        """`task 2/3 ` when the job has several tasks; nothing for one."""
        if self.task_count <= 1:
            return ""
        number = self._numbers.setdefault(task.task_id, len(self._numbers) + 1)
        return f"task {number}/{self.task_count} "

    def _line(self, text: str) -> None:
        self.output.note(f"[{time.monotonic() - self.started:5.1f}s] {text}")

    def uploading(self, name: str, size: int) -> None:
        self._line(f"uploading {name} ({size:,} bytes) to {self.provider_name}")

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if client_task_id:
            self._line(f"submitting to {self.provider_name}: task {client_task_id}")

    def submit_uncertain(self, reason: str) -> None:
        self._line(f"{reason}; checking whether the job exists")

    def submitted(self, task: TaskHandle) -> None:
        self.task = task
        which = self._which(task)
        if which:
            self._line(f"{which}submitted to {self.provider_name}: id {task.task_id}")
        else:
            self._line(f"submitted to {self.provider_name}: task {task.task_id}")

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        self.status = status
        self._line(f"{self._which(task)}{status.state.value} ({status.provider_status})")

    def retrying(self, reason: str, delay: float) -> None:
        self._line(f"{reason}; retrying in {human_duration(delay)}")

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        self._line(f"{self._which(task)}saved {file.path}")

    def close(self) -> None:
        pass


class SpinnerProgress(PlainProgress):
    """A transient spinner with elapsed time; milestones stay on screen as plain lines."""

    def __init__(
        self,
        output: Output,
        provider_name: str,
        *,
        tasks: int = 1,
        task_ids: Sequence[str | None] = (),
    ) -> None:
        super().__init__(output, provider_name, tasks=tasks, task_ids=task_ids)
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=output.stderr,
            transient=True,
        )
        self.task_id: TaskID = self.progress.add_task(f"Submitting to {provider_name}", total=None)
        self.progress.start()

    def _line(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        self.status = status
        self.progress.update(
            self.task_id,
            description=f"{self.provider_name}: {self._which(task)}{status.provider_status}",
        )

    def retrying(self, reason: str, delay: float) -> None:
        self.progress.update(
            self.task_id, description=f"{reason}; retrying in {human_duration(delay)}"
        )

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        # The paths follow on stdout; the spinner only says it is saving.
        self.progress.update(self.task_id, description=f"saved {file.path.name}")

    def close(self) -> None:
        self.progress.stop()


def progress_for(
    output: Output, provider_name: str, *, tasks: int = 1, task_ids: Sequence[str | None] = ()
) -> PlainProgress:
    """`tasks`: how many tasks the job will submit; `task_ids`: a resumed job's, in order."""
    kind = SpinnerProgress if output.stderr.is_terminal else PlainProgress
    return kind(output, provider_name, tasks=tasks, task_ids=task_ids)
