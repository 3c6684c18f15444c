"""The jobs journal's schema: the migrations that bring a database file to the shape
kling_cli.journal reads and writes, applied when the journal is opened."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from kling_cli.errors import ConfigError

# One entry per schema version; the database's `user_version` says how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        request TEXT NOT NULL,
        output_dir TEXT NOT NULL,
        emulated INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        state TEXT NOT NULL,
        error TEXT
    );
    CREATE TABLE tasks (
        job_id TEXT NOT NULL REFERENCES jobs(id),
        position INTEGER NOT NULL,
        task_id TEXT,
        client_task_id TEXT,
        expected_images INTEGER,
        extra TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        provider_status TEXT,
        error TEXT,
        cost REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    CREATE INDEX tasks_by_task_id ON tasks (task_id);
    CREATE INDEX tasks_by_client_task_id ON tasks (client_task_id);
    CREATE TABLE outputs (
        job_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        url TEXT NOT NULL,
        path TEXT,
        sha256 TEXT,
        bytes INTEGER,
        width INTEGER,
        height INTEGER,
        PRIMARY KEY (job_id, position, url)
    );
    """,
    # 2: batch items find their job again on a re-run.
    """
    ALTER TABLE jobs ADD COLUMN batch_key TEXT;
    CREATE INDEX jobs_by_batch_key ON jobs (batch_key);
    """,
    # 3: `kling status --download` names files the way the job was asked to.
    """
    ALTER TABLE jobs ADD COLUMN name_template TEXT;
    """,
    # 4: what a submit failure of each task allows (kling_cli.resend.SubmitCase): resent,
    # looked up by our id, or neither; NULL for tasks recorded before.
    """
    ALTER TABLE tasks ADD COLUMN resend TEXT;
    """,
    # 5: every query the commands make reads an index, so `kling jobs` and `kling status` cost
    # the same with a million jobs as with ten (bench/journal.py): newest first, by state, by
    # provider, a batch item's latest job; prune's `created_at < ?` uses the first.
    """
    CREATE INDEX jobs_by_created_at ON jobs (created_at);
    CREATE INDEX jobs_by_state ON jobs (state, created_at);
    CREATE INDEX jobs_by_provider ON jobs (provider, created_at);
    DROP INDEX jobs_by_batch_key;
    CREATE INDEX jobs_by_batch_key ON jobs (batch_key, created_at);
    """,
    # 6: a job sent to several providers in turn (failover): each attempt, in order, with the
    # job that recorded it (kling_cli.attempts).
    """
    CREATE TABLE attempts (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        provider TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        attempt_job TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    """,
)


def set_up(db: sqlite3.Connection, path: Path, wait_seconds: float) -> None:
    """WAL mode and migrations. Processes that create the journal at the same moment can
    be refused ("database is locked") without SQLite's busy wait, while one of them still
    switches the new file to WAL: that is waited out here."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            _migrate(db, path)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise ConfigError(f"The jobs journal {path} was written by a newer kling-cli; upgrade.")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
