"""The attempts of a job that kling sent to several providers in turn (failover): for each,
the provider, how it ended and why, and the journal job that recorded it. A job's attempts
are those before it and its own, so the last job of a failover holds the whole story."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.journal import Journal


@dataclass(frozen=True)
class Attempt:
    provider: str
    # A `kling_cli.resend.Refusal` word when the provider created nothing, else the state
    # the job ended in there.
    outcome: str
    error: str | None
    job_id: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def record_attempts(journal: Journal, job_id: str, attempts: list[Attempt]) -> None:
    """Store `job_id`'s attempts (replacing any): best effort, as the job's own state is
    what keeps it resumable; the attempts explain it."""
    try:
        with journal.transaction() as db:
            db.execute("DELETE FROM attempts WHERE job_id = ?", (job_id,))
            db.executemany(
                "INSERT INTO attempts (job_id, seq, provider, outcome, error, attempt_job)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job_id, seq, a.provider, a.outcome, a.error, a.job_id)
                    for seq, a in enumerate(attempts)
                ],
            )
    except sqlite3.Error:
        pass


def attempts_of(journal: Journal, job_id: str) -> list[Attempt]:
    """The attempts recorded for a job, in order; empty for a job sent to one provider."""
    rows = journal.connection.execute(
        "SELECT provider, outcome, error, attempt_job FROM attempts WHERE job_id = ? ORDER BY seq",
        (job_id,),
    ).fetchall()
    return [Attempt(row[0], row[1], row[2], row[3]) for row in rows]
