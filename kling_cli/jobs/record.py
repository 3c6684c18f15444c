"""Recording a job as it runs, so that nothing paid for is ever lost.

Before the submit, a journal write that fails stops the job: nothing was sent. After it, a
write the journal refuses (another process holding it, a full disk) must not lose the task id:
it is kept and tried again with the next write, and whatever is still unwritten when the job
ends goes to a small fallback file (JSON lines) next to the journal, which the next `kling`
command that opens the journal folds back in.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kling_cli.errors import JournalError
from kling_cli.events import NullListener
from kling_cli.journal import (
    BUSY_TIMEOUT_MS,
    MAY_EXIST,
    Journal,
    OutputRecord,
    TaskRecord,
    data_dir,
)
from kling_cli.providers.base import TaskState

if TYPE_CHECKING:
    from kling_cli.download import SavedFile
    from kling_cli.providers.base import TaskHandle, TaskStatus

FALLBACK_NAME = "journal-pending.jsonl"
# Once a write has failed, later ones wait only this long for the journal, so a job keeps
# going while another process holds it; the final attempt waits the journal's full timeout.
QUICK_BUSY_TIMEOUT_MS = 200


def fallback_path() -> Path:
    return data_dir() / FALLBACK_NAME


def open_journal() -> Journal:
    """The default journal, with any writes a previous run had to leave in the fallback file
    folded back in (best effort: the file stays until they are)."""
    journal = Journal.open_default()
    replay_fallback(journal, fallback_path())
    return journal


def replay_fallback(journal: Journal, path: Path) -> int:
    """Apply the writes recorded in `path`, in order, and remove it; returns how many. Held
    under the file's lock, so a process appending at the same moment waits (and then
    starts a new file) instead of writing into one being removed."""
    try:
        handle = path.open("r+", encoding="utf-8")
    except OSError:  # none (the usual case), or unreadable: nothing to fold in
        return 0
    with handle:
        _lock(handle)
        writes = []
        for line in handle.read().splitlines():
            try:
                writes.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash while it was written
        try:
            for write in writes:
                _apply(journal, write)  # each is idempotent: a retry after a failure is safe
        except sqlite3.Error:
            return 0
        path.unlink(missing_ok=True)
    return len(writes)


def append_fallback(path: Path, lines: str) -> None:
    """Append to the fallback file under its lock; a file removed by a replay while this
    waited for the lock is not written into: a new one is started."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with path.open("a", encoding="utf-8") as handle:
            _lock(handle)
            if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                continue
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
            return


def _lock(handle: IO[str]) -> None:
    if os.name == "posix":
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _apply(journal: Journal, write: dict[str, Any]) -> None:
    operation, job_id, arguments = write["op"], write["job_id"], write["args"]
    if operation == "update_task":
        journal.update_task(job_id, **arguments)
    elif operation == "record_output":
        position = arguments["position"]
        journal.record_output(job_id, position, OutputRecord(**arguments["output"]))
    elif operation == "set_job_state":
        journal.set_job_state(job_id, **arguments)


class JobWriter:
    """One job's journal writes. `add_task` comes before a submit request is sent, so it must
    succeed (or the submit is not sent); every later write is kept when the journal refuses
    it, retried with the next one, and left in the fallback file by `close`."""

    def __init__(self, journal: Journal, job_id: str) -> None:
        self.journal = journal
        self.job_id = job_id
        self.pending: list[dict[str, Any]] = []
        self.fallback: Path | None = None
        self.closed = False

    def add_task(
        self,
        client_task_id: str | None,
        expected_images: int,
        *,
        resend: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> int:
        self.flush()
        try:
            position = self.journal.add_task(
                self.job_id, client_task_id, expected_images, resend=resend, extra=extra
            )
            if self.journal.group is not None:
                self.journal.group.commit()  # on disk before the submit is sent
            return position
        except sqlite3.Error as exc:
            raise JournalError(
                f"The jobs journal cannot record the next task of job {self.job_id} ({exc}); "
                "it was not submitted."
            ) from None

    def update_task(self, position: int, **changes: Any) -> None:
        self._write("update_task", {"position": position, **changes})

    def record_output(self, position: int, output: OutputRecord) -> None:
        self._write("record_output", {"position": position, "output": asdict(output)})

    def set_job_state(self, state: str, error: str | None = None) -> None:
        self._write("set_job_state", {"state": state, "error": error})

    def _write(self, operation: str, arguments: dict[str, Any]) -> None:
        self.pending.append({"op": operation, "job_id": self.job_id, "args": arguments})
        self.flush(quick=len(self.pending) > 1)

    def flush(self, *, quick: bool = False) -> bool:
        """Write what is pending, oldest first; False when the journal still refuses."""
        if not self.pending:
            return True
        if quick:
            self.journal.set_busy_timeout(QUICK_BUSY_TIMEOUT_MS)
        group = self.journal.group
        try:
            while self.pending:
                _apply(self.journal, self.pending[0])
                write = self.pending.pop(0)
                if group is not None and group.open:
                    group.written(self.take_back, write)
        except sqlite3.Error:
            return False
        finally:
            if quick:
                self.journal.set_busy_timeout(BUSY_TIMEOUT_MS)
        return True

    def close(self) -> Path | None:
        """A last try at the journal, committed (a group commit too: the job's end is on disk
        before its result is told); what it still refuses goes to the fallback file, whose
        path is returned (None when everything was written; `pending` keeps what could be
        saved nowhere)."""
        self.closed = True
        if self.flush() and self._commit_group():
            return None
        if self.pending:
            return self._to_fallback()
        return self.fallback  # the failed group's writes, handed back, went there

    def _commit_group(self) -> bool:
        """False when the open group commit fails (its writes come back to `take_back`)."""
        group = self.journal.group
        if group is None or not group.open:
            return True
        try:
            group.commit()
        except sqlite3.Error:
            return False
        return True

    def take_back(self, writes: list[dict[str, Any]]) -> None:
        """Writes of a group commit that failed: pending again, oldest first, or, once the
        job has ended, in the fallback file."""
        self.pending[:0] = writes
        if self.closed:
            self._to_fallback()

    def _to_fallback(self) -> Path | None:
        path = fallback_path()
        lines = "".join(json.dumps(write) + "\n" for write in self.pending)
        try:
            append_fallback(path, lines)
        except OSError:
            return None
        self.pending.clear()
        self.fallback = path
        return path


class JobRecorder(NullListener):
    """Writes what the engine reports into the journal (an engine listener). Tasks of a job are
    submitted one after another, so each report belongs to the task submitted last or to the
    task it names."""

    def __init__(self, writer: JobWriter, known: Sequence[TaskRecord] = ()) -> None:
        self.writer = writer
        # Known tasks by provider id, and by our own id for those whose answer was lost.
        self._positions = {
            key: task.position
            for task in known
            for key in (task.client_task_id, task.task_id)
            if key
        }
        self._submitting: int | None = None
        # Positions whose submit was sent and not yet answered.
        self.unanswered: set[int] = set()
        self.task_ids: list[str] = [task.task_id for task in known if task.task_id]

    def position_of(self, task: TaskHandle) -> int:
        return self._positions[task.task_id]

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self._submitting = self.writer.add_task(
            client_task_id, expected_images or 1, resend=resend, extra=extra
        )
        if client_task_id:
            self._positions[client_task_id] = self._submitting
        self.unanswered.add(self._submitting)

    def submit_uncertain(self, reason: str) -> None:
        if self._submitting is not None:
            self.writer.update_task(self._submitting, state=MAY_EXIST, error=reason)

    def submitted(self, task: TaskHandle) -> None:
        assert self._submitting is not None
        self._positions[task.task_id] = self._submitting
        self.unanswered.discard(self._submitting)
        self.task_ids.append(task.task_id)
        self.writer.update_task(
            self._submitting, task_id=task.task_id, extra=dict(task.extra), state="pending"
        )

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        self.writer.update_task(
            self.position_of(task),
            state=status.state.value,
            provider_status=status.provider_status,
            error=status.error,
            cost=status.cost,
            urls=[output.url for output in status.outputs],
            every_url=status.state is TaskState.SUCCEEDED,
        )

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        record = OutputRecord(
            file.url, os.path.abspath(file.path), file.sha256, file.bytes, file.width, file.height
        )
        self.writer.record_output(self.position_of(task), record)
