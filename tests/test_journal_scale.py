"""A journal that stays fast as it grows: every query the commands make reads an index, and
`kling jobs prune` forgets finished jobs while never dropping one that could still cost or
deliver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from kling_cli.jobs.prune import prune
from kling_cli.journal import DATABASE_NAME, Journal, OutputRecord


class _OneTransaction(Journal):
    """The journal's own writes, inside one transaction the test opens (a fixture, not how
    kling writes): thousands of jobs without a commit each."""

    @contextmanager
    def _transaction(self):  # type: ignore[no-untyped-def,override]
        yield self._db


def _journal(config_dir: Path) -> Journal:
    return Journal(config_dir / DATABASE_NAME)


def _add_job(
    journal: Journal, created_at: float, state: str, task_state: str = "succeeded", prompt: str = ""
) -> str:
    job_id = journal.create_job("runware", {"prompt": prompt, "num_images": 1}, "out")
    position = journal.add_task(job_id, f"client-{job_id}", 1)
    journal.update_task(job_id, position, task_id=f"task-{job_id}", state=task_state)
    journal.record_output(job_id, position, OutputRecord("https://cdn/x.png", f"out/{job_id}.png"))
    journal.set_job_state(job_id, state)
    journal.connection.execute("UPDATE jobs SET created_at = ? WHERE id = ?", (created_at, job_id))
    return job_id


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


KEPT_STATES = (
    "submitting",
    "may_exist",
    "running",
    "submitted",
    "timed_out",
    "interrupted",
    "download_failed",
    "generated",
    "error",
)
REMOVED_STATES = ("succeeded", "partial", "failed", "not_created", "not_found")


def test_prune_removes_finished_jobs_before_the_date_and_keeps_every_unfinished_one(
    run_cli, isolated_environment: Path
) -> None:
    journal = _journal(isolated_environment)
    old, new = _timestamp("2026-10-01T12:00"), _timestamp("2026-11-15T12:00")
    kept = {state: _add_job(journal, old, state, task_state="running") for state in KEPT_STATES}
    removed = {state: _add_job(journal, old, state) for state in REMOVED_STATES}
    # Marked failed, but a sibling task still running at the provider: it could still cost.
    kept["failed-with-running-task"] = _add_job(journal, old, "failed", task_state="running")
    kept["recent"] = _add_job(journal, new, "succeeded")
    journal.close()

    result = run_cli("jobs", "prune", "--before", "2026-11-01", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()["prune"]  # type: ignore[index]
    assert report["removed"] == len(REMOVED_STATES)
    assert report["kept_unfinished"] == len(KEPT_STATES) + 1

    journal = _journal(isolated_environment)
    try:
        for name, job_id in kept.items():
            assert journal.job(job_id) is not None, name
        for name, job_id in removed.items():
            assert journal.find(job_id) is None, name
            db = journal.connection
            for table in ("tasks", "outputs"):
                count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE job_id = ?", (job_id,))
                assert count.fetchone()[0] == 0, (name, table)
    finally:
        journal.close()
    shown = run_cli("jobs", "prune", "--before", "2026-11-01")
    assert shown.exit_code == 0 and "Removed 0 finished job(s)" in shown.stdout


def test_prune_refuses_a_date_it_cannot_read(run_cli) -> None:
    result = run_cli("jobs", "prune", "--before", "last tuesday")
    assert result.exit_code != 0 and "not a date" in result.stderr


def test_prune_vacuums_when_it_frees_much(isolated_environment: Path) -> None:
    journal = _OneTransaction(isolated_environment / DATABASE_NAME)
    journal.connection.execute("BEGIN")
    for number in range(2000):
        _add_job(journal, 1_000_000.0 + number, "succeeded", prompt="a red fox " * 20)
    journal.connection.execute("COMMIT")
    journal.close()
    journal = _journal(isolated_environment)
    try:
        result = prune(journal, 2_000_000.0)
    finally:
        journal.close()
    assert result.removed == 2000 and result.vacuumed
    assert result.bytes_after < result.bytes_before / 4


@pytest.fixture
def thousands_of_jobs(isolated_environment: Path) -> Iterator[list[str]]:
    journal = _OneTransaction(isolated_environment / DATABASE_NAME)
    journal.connection.execute("BEGIN")
    ids = [
        _add_job(journal, 1_700_000_000.0 + number * 60, "succeeded", prompt=f"fox {number}")
        for number in range(3000)
    ]
    journal.connection.execute("COMMIT")
    journal.close()
    yield ids


def test_jobs_lists_the_newest_first_among_thousands(run_cli, thousands_of_jobs: list[str]) -> None:
    listed = run_cli("jobs", "--json").json()["jobs"]  # type: ignore[index]
    assert [job["id"] for job in listed] == thousands_of_jobs[::-1][:20]
    assert [job["prompt"] for job in listed][:2] == ["fox 2999", "fox 2998"]
    table = run_cli("jobs", "--limit", "3").stdout
    assert table.index(thousands_of_jobs[-1]) < table.index(thousands_of_jobs[-2])


def test_every_query_the_commands_make_reads_an_index(isolated_environment: Path) -> None:
    """No full scan and no sort of the jobs table: what keeps `kling jobs` and `kling status`
    constant in the journal's size (bench/journal.py measures it)."""
    journal = _journal(isolated_environment)
    queries = [
        ("SELECT * FROM jobs ORDER BY created_at DESC LIMIT 1", ()),
        ("SELECT * FROM jobs WHERE 1 = 1 ORDER BY created_at DESC LIMIT ?", (20,)),
        ("SELECT * FROM jobs WHERE 1 = 1 AND state = ? ORDER BY created_at DESC LIMIT ?", ("x", 1)),
        (
            "SELECT * FROM jobs WHERE 1 = 1 AND provider = ? ORDER BY created_at DESC LIMIT ?",
            ("x", 1),
        ),
        ("SELECT * FROM jobs WHERE batch_key = ? ORDER BY created_at DESC LIMIT 1", ("x",)),
    ]
    try:
        for query, params in queries:
            plan = " / ".join(
                row[-1] for row in journal.connection.execute(f"EXPLAIN QUERY PLAN {query}", params)
            )
            assert "INDEX" in plan and "TEMP B-TREE" not in plan, (query, plan)
    finally:
        journal.close()
