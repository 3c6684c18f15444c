"""Group commits: the journal writes made in one turn of the event loop share one
transaction, committed by a callback at the end of that turn, so that a batch with many jobs
in flight pays one commit (one fsync) per turn instead of one per event.

Still recorded before anything waits on them: the callback runs before any timer or socket
event of the next turn (a poll's wait, a response), and a write that must be on disk before
the code goes on (a task's row before its submit is sent) forces the commit
(`GroupCommit.commit`). When a commit fails, every write of the group is rolled back and
handed back to the job that made it (`kling_cli.jobs.record.JobWriter.take_back`), which
keeps it pending as it keeps a write the journal refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

# What a write hands back when its group is rolled back: called with the writes, in order.
TakeBack = Callable[[list[dict[str, Any]]], None]


class GroupCommit:
    """One connection's open group (a transaction begun by the turn's first write)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._written: list[tuple[TakeBack, dict[str, Any]]] = []

    @staticmethod
    def active() -> bool:
        """Writes are grouped only while an event loop runs; outside one they commit at
        once, as without a group."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    @property
    def open(self) -> bool:
        return self._db.in_transaction

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write inside the group: all of it or none of it (a savepoint)."""
        db = self._db
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_soon(self._commit_quietly)
        db.execute("SAVEPOINT kling_write")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK TO kling_write")
                db.execute("RELEASE kling_write")
            else:  # SQLite rolled the whole group back (a full disk, an I/O error)
                self._hand_back()
            raise
        db.execute("RELEASE kling_write")

    def written(self, take_back: TakeBack, write: dict[str, Any]) -> None:
        """`write` is in the open group: if the group is rolled back, `take_back` gets it."""
        self._written.append((take_back, write))

    def commit(self) -> None:
        """Commit the group now; sqlite3.Error when it cannot (its writes are handed back)."""
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._hand_back()
            raise
        self._written.clear()

    def _commit_quietly(self) -> None:
        with suppress(sqlite3.Error):  # handed back: each job retries them or keeps them
            self.commit()

    def _hand_back(self) -> None:
        by_writer: dict[TakeBack, list[dict[str, Any]]] = {}
        for take_back, write in self._written:
            by_writer.setdefault(take_back, []).append(write)
        self._written.clear()
        for take_back, writes in by_writer.items():
            take_back(writes)
