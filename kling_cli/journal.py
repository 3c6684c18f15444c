"""The jobs journal: every paid job, recorded before anything is waited for.

A SQLite database (WAL, so several `kling` processes can write at once) in the user data
directory. A job is one `generate`; it has one task per provider request (several when `-n` is
fanned out), each with the images it produced. Keys are never stored: the request holds none.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.config import CONFIG_DIR_ENV
from kling_cli.errors import ConfigError, JournalError
from kling_cli.journal_records import JobRecord as JobRecord
from kling_cli.journal_records import OutputRecord as OutputRecord
from kling_cli.journal_records import TaskRecord as TaskRecord
from kling_cli.journal_schema import MIGRATIONS as MIGRATIONS
from kling_cli.journal_schema import set_up

if TYPE_CHECKING:
    from kling_cli.jobs.commits import GroupCommit

DATABASE_NAME = "jobs.sqlite3"
BUSY_TIMEOUT_MS = 10_000
# Job ids are short, so a busy day draws the same one twice now and then: draw again.
ID_ATTEMPTS = 20

# Task states beyond the provider's: not yet answered, and answered ambiguously.
SUBMITTING = "submitting"
MAY_EXIST = "may_exist"
# Looked up by our own id and unknown to the provider: the submit never arrived.
NOT_CREATED = "not_created"
# A task the provider accepted and no longer knows (HTTP 404 once its results expired).
NOT_FOUND = "not_found"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("kling-cli", appauthor=False))


def new_job_id() -> str:
    """Short enough to type, sortable by day: `261123-a3f9c2`."""
    return f"{datetime.now(UTC):%y%m%d}-{secrets.token_hex(3)}"


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Set (`group_commits`): writes made while an event loop runs share a transaction.
        self.group: GroupCommit | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not path.exists()
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            if fresh and os.name == "posix":
                os.chmod(path, 0o600)
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            set_up(self._db, path, BUSY_TIMEOUT_MS / 1000)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(
                f"Cannot open the jobs journal {path}: {_reason(exc)}.",
                hint=f"Nothing was submitted. Free it, or point {CONFIG_DIR_ENV} elsewhere.",
            ) from None

    def check_writable(self) -> None:
        """Take the write lock and let it go: proof, before paying, that this job can be
        recorded (a read-only disk, another process holding the journal)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise JournalError(
                f"The jobs journal {self.path} cannot be written: {_reason(exc)}.",
                hint=f"Nothing was submitted. Free it, or point {CONFIG_DIR_ENV} elsewhere.",
            ) from None

    def set_busy_timeout(self, milliseconds: int) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")

    @classmethod
    def open_default(cls) -> Journal:
        return cls(data_dir() / DATABASE_NAME)

    def group_commits(self) -> None:
        """From now on, the writes of one turn of the event loop share one transaction
        (kling_cli.jobs.commits)."""
        from kling_cli.jobs.commits import GroupCommit

        self.group = GroupCommit(self._db)

    def close(self) -> None:
        if self.group is not None:
            with suppress(sqlite3.Error):  # what it refuses is handed back to its jobs
                self.group.commit()
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.group is not None and (self.group.open or self.group.active()):
            with self.group.write() as db:
                yield db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (rolled back on any error) for a change the jobs layer makes
        in one piece (kling_cli.jobs.prune). Raises sqlite3.Error."""
        return self._transaction()

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, in autocommit mode, for maintenance outside a transaction
        (`VACUUM`, `PRAGMA page_count`)."""
        return self._db

    # -- writing -------------------------------------------------------------------------------

    def create_job(
        self,
        provider: str,
        request: dict[str, Any],
        output_dir: str,
        *,
        emulated: bool = False,
        batch_key: str | None = None,
        name_template: str | None = None,
    ) -> str:
        """Record a job before anything is sent; returns its id. An id drawn twice (a few
        thousand jobs a day make that likely) is drawn again inside the same transaction."""
        now = time.time()
        with self._transaction() as db:
            for _ in range(ID_ATTEMPTS):
                job_id = new_job_id()
                try:
                    db.execute(
                        "INSERT INTO jobs (id, provider, request, output_dir, emulated,"
                        " created_at, updated_at, state, batch_key, name_template)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            job_id,
                            provider,
                            json.dumps(request),
                            output_dir,
                            int(emulated),
                            now,
                            now,
                            SUBMITTING,
                            batch_key,
                            name_template,
                        ),
                    )
                except sqlite3.IntegrityError:
                    continue
                return job_id
        raise ConfigError(f"Could not draw a free job id in {self.path}.")

    def find_batch_item(self, batch_key: str) -> JobRecord | None:
        row = self._db.execute(
            "SELECT * FROM jobs WHERE batch_key = ? ORDER BY created_at DESC LIMIT 1", (batch_key,)
        ).fetchone()
        return self._load(row) if row else None

    def add_task(
        self,
        job_id: str,
        client_task_id: str | None,
        expected_images: int,
        *,
        resend: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> int:
        """Record a task about to be submitted, with what a failure of its submit allows
        (`resend`) and what finds it again (`extra`); returns its position in the job."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM tasks WHERE job_id = ?", (job_id,)
            ).fetchone()
            position = int(row[0])
            db.execute(
                "INSERT INTO tasks (job_id, position, client_task_id, expected_images, state,"
                " updated_at, resend, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    position,
                    client_task_id,
                    expected_images,
                    SUBMITTING,
                    time.time(),
                    resend,
                    json.dumps(dict(extra or {})),
                ),
            )
        return position

    def update_task(
        self,
        job_id: str,
        position: int,
        *,
        task_id: str | None = None,
        extra: Mapping[str, str] | None = None,
        state: str | None = None,
        provider_status: str | None = None,
        error: str | None = None,
        cost: float | None = None,
        urls: list[str] | None = None,
        resend: str | None = None,
        every_url: bool = False,
    ) -> None:
        """`every_url`: `urls` are all the task's outputs (the provider's own answer on a
        finished task), so an unsaved URL recorded earlier and not among them (a webhook
        body's that was never the provider's, a signed URL since replaced) is dropped."""
        changes: dict[str, Any] = {"updated_at": time.time()}
        if resend is not None:
            changes["resend"] = resend
        if task_id is not None:
            changes["task_id"] = task_id
        if extra is not None:
            changes["extra"] = json.dumps(dict(extra))
        if state is not None:
            changes["state"] = state
        if provider_status is not None:
            changes["provider_status"] = provider_status
        if error is not None:
            changes["error"] = error or None  # "" clears a stale error
        if cost is not None:
            changes["cost"] = cost
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._transaction() as db:
            db.execute(
                f"UPDATE tasks SET {assignments} WHERE job_id = ? AND position = ?",
                (*changes.values(), job_id, position),
            )
            if every_url and urls:
                marks = ", ".join("?" for _ in urls)
                db.execute(
                    "DELETE FROM outputs WHERE job_id = ? AND position = ? AND path IS NULL"
                    f" AND url NOT IN ({marks})",
                    (job_id, position, *urls),
                )
            for url in urls or ():
                db.execute(
                    "INSERT OR IGNORE INTO outputs (job_id, position, url) VALUES (?, ?, ?)",
                    (job_id, position, url),
                )
            self._touch(db, job_id)

    def record_output(self, job_id: str, position: int, output: OutputRecord) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outputs (job_id, position, url, path, sha256, bytes, width, height)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, position, url) DO UPDATE SET path = excluded.path,"
                " sha256 = excluded.sha256, bytes = excluded.bytes, width = excluded.width,"
                " height = excluded.height",
                (
                    job_id,
                    position,
                    output.url,
                    output.path,
                    output.sha256,
                    output.bytes,
                    output.width,
                    output.height,
                ),
            )
            self._touch(db, job_id)

    def set_job_state(self, job_id: str, state: str, error: str | None = None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                (state, error, time.time(), job_id),
            )

    def _touch(self, db: sqlite3.Connection, job_id: str) -> None:
        db.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (time.time(), job_id))

    # -- reading -------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._load(row) if row else None

    def find(self, identifier: str) -> JobRecord | None:
        """A job by its local id, or by any of its tasks' provider or client ids."""
        found = self.job(identifier)
        if found:
            return found
        row = self._db.execute(
            "SELECT job_id FROM tasks WHERE task_id = ? OR client_task_id = ?"
            " ORDER BY updated_at DESC LIMIT 1",
            (identifier, identifier),
        ).fetchone()
        return self.job(row["job_id"]) if row else None

    def latest(self) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
        return self._load(row) if row else None

    def recent(
        self, *, limit: int = 20, state: str | None = None, provider: str | None = None
    ) -> list[JobRecord]:
        query = "SELECT * FROM jobs WHERE 1 = 1"
        params: list[Any] = []
        if state:
            query += " AND state = ?"
            params.append(state)
        if provider:
            query += " AND provider = ?"
            params.append(provider)
        query += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        return [self._load(row) for row in self._db.execute(query, params).fetchall()]

    def _load(self, row: sqlite3.Row) -> JobRecord:
        job = JobRecord(
            id=row["id"],
            provider=row["provider"],
            request=json.loads(row["request"]),
            output_dir=row["output_dir"],
            emulated=bool(row["emulated"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            state=row["state"],
            error=row["error"],
            name_template=row["name_template"],
        )
        outputs: dict[int, list[OutputRecord]] = {}
        for out in self._db.execute(
            "SELECT * FROM outputs WHERE job_id = ? ORDER BY rowid", (job.id,)
        ):
            outputs.setdefault(out["position"], []).append(
                OutputRecord(
                    out["url"],
                    out["path"],
                    out["sha256"],
                    out["bytes"],
                    out["width"],
                    out["height"],
                )
            )
        for task in self._db.execute(
            "SELECT * FROM tasks WHERE job_id = ? ORDER BY position", (job.id,)
        ):
            job.tasks.append(
                TaskRecord(
                    position=task["position"],
                    task_id=task["task_id"],
                    client_task_id=task["client_task_id"],
                    expected_images=task["expected_images"],
                    extra=json.loads(task["extra"]),
                    state=task["state"],
                    provider_status=task["provider_status"],
                    error=task["error"],
                    cost=task["cost"],
                    outputs=outputs.get(task["position"], []),
                    resend=task["resend"],
                )
            )
        return job
