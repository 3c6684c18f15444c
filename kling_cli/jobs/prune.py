"""`kling jobs prune`: forget finished jobs recorded before a date, and give the space back.

Only a job that can no longer cost or deliver anything is removed: its own state is final
(`FINISHED`) and so is every one of its tasks' (`FINAL_TASK_STATES`). A job still submitting,
unanswered (`may_exist`), running, timed out, interrupted, with images not yet saved
(`generated`, `download_failed`) or stopped by an error (`error`, which `kling status --wait
--download` can still take further) stays, whatever its age.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from kling_cli.errors import JournalError
from kling_cli.journal import NOT_CREATED, NOT_FOUND, Journal

# Job states after which nothing can be paid for or fetched any more.
FINISHED = ("succeeded", "partial", "failed", NOT_CREATED, NOT_FOUND)
# Task states after which the provider does nothing more (a job marked `failed` because one of
# its tasks failed may have left a sibling `running`: that job is kept).
FINAL_TASK_STATES = ("succeeded", "failed", NOT_CREATED, NOT_FOUND)
# VACUUM rewrites the whole file (seconds at a million jobs, and twice its size on disk for a
# moment): only when at least this share of the file would come back.
VACUUM_SHARE = 0.25


@dataclass(frozen=True)
class PruneResult:
    removed: int
    kept_unfinished: int  # jobs created before the date that are not finished
    bytes_before: int
    bytes_after: int
    vacuumed: bool


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in values)


# The jobs that may go: created before the date, finished, with no task still in flight.
_PRUNABLE = (
    f"SELECT id FROM jobs WHERE created_at < ? AND state IN ({_marks(FINISHED)})"
    " AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = jobs.id"
    f" AND tasks.state NOT IN ({_marks(FINAL_TASK_STATES)}))"
)


def _size(db: sqlite3.Connection) -> tuple[int, int]:
    """(file bytes, free bytes) of the main database."""
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return pages * page_size, free * page_size


def prune(journal: Journal, before: float, *, vacuum: bool | None = None) -> PruneResult:
    """Remove the finished jobs created before `before` (a Unix time, seconds), with their
    tasks and outputs, in one transaction; then `VACUUM` if asked (`vacuum=True`), or, by
    default, when a quarter of the file or more is free (best effort: skipped while another
    process reads the journal; `vacuumed` says). Image files are never touched. Raises
    `JournalError` if the removal cannot be written (rolled back: nothing is removed)."""
    params = (before, *FINISHED, *FINAL_TASK_STATES)
    db = journal.connection
    try:
        bytes_before, _ = _size(db)
        with journal.transaction() as tx:
            older = int(
                tx.execute("SELECT COUNT(*) FROM jobs WHERE created_at < ?", (before,)).fetchone()[
                    0
                ]
            )
            tx.execute(f"CREATE TEMP TABLE prune_ids AS {_PRUNABLE}", params)
            try:
                tx.execute("DELETE FROM outputs WHERE job_id IN (SELECT id FROM prune_ids)")
                tx.execute("DELETE FROM tasks WHERE job_id IN (SELECT id FROM prune_ids)")
                tx.execute("DELETE FROM attempts WHERE job_id IN (SELECT id FROM prune_ids)")
                removed = tx.execute(
                    "DELETE FROM jobs WHERE id IN (SELECT id FROM prune_ids)"
                ).rowcount
            finally:
                tx.execute("DROP TABLE prune_ids")
        bytes_now, free = _size(db)
    except sqlite3.Error as exc:
        raise JournalError(
            f"Could not prune the jobs journal {journal.path}: {exc}.",
            hint="Nothing was removed; try again once no other kling process is writing.",
        ) from None
    vacuumed = False
    if vacuum or (vacuum is None and removed and free >= VACUUM_SHARE * bytes_now):
        try:
            db.execute("VACUUM")
            # The rewritten pages sit in the WAL until a checkpoint: give the disk space back.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            vacuumed = True
            bytes_now, _ = _size(db)
        except sqlite3.Error:
            # Another process reading the journal holds VACUUM off; the jobs are gone all the
            # same, and the free pages are reused by later jobs.
            pass
    return PruneResult(removed, older - removed, bytes_before, bytes_now, vacuumed)
