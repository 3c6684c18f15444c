"""Group commits (#18): a batch commits its journal writes once per turn of the event loop.
A commit the disk refuses must lose nothing: every write of the group goes back to its job,
and a job that has ended puts them in the fallback file the next kling reads."""

from __future__ import annotations

import asyncio
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kling_cli.jobs.record import FALLBACK_NAME, JobWriter, replay_fallback
from kling_cli.journal import Journal


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_group_commit_the_disk_refuses_puts_every_write_in_the_fallback(
    small_disk: Path, isolated_environment: Path
) -> None:
    journal = Journal(small_disk / "jobs.sqlite3")
    job_id = journal.create_job("runware", {"prompt": "a fox"}, str(small_disk))
    writer = JobWriter(journal, job_id)
    position = writer.add_task("client-1", 1)  # no loop running: committed at once
    journal.group_commits()
    filler = fill(small_disk)

    async def end_the_job() -> None:
        writer.update_task(position, task_id="task-1", state="succeeded")
        writer.set_job_state("succeeded")
        # The job's end is committed before its result is told: the disk refuses the group,
        # so its writes go to the fallback file, and close says where.
        assert writer.close() == isolated_environment / FALLBACK_NAME
        assert journal.group is not None and not journal.group.open

    asyncio.run(end_the_job())
    journal.close()
    fallback = isolated_environment / FALLBACK_NAME
    writes = [json.loads(line) for line in fallback.read_text().splitlines()]
    assert [(w["op"], w["job_id"]) for w in writes] == [
        ("update_task", job_id),
        ("set_job_state", job_id),
    ]
    assert writer.fallback == fallback and not writer.pending
    filler.unlink()
    # The next kling folds them in: the task id and the final state are in the journal.
    again = Journal(small_disk / "jobs.sqlite3")
    assert replay_fallback(again, fallback) == 2
    job = again.job(job_id)
    assert job is not None and job.state == "succeeded"
    assert [task.task_id for task in job.tasks] == ["task-1"]
    again.close()


def test_writes_of_one_turn_share_one_commit(isolated_environment: Path, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs.sqlite3")
    journal.group_commits()
    commits = []
    journal.connection.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )

    async def many_jobs() -> None:
        for number in range(20):
            journal.create_job("runware", {"prompt": f"fox {number}"}, str(tmp_path))
        await asyncio.sleep(0)  # the turn ends: its group is committed
        assert journal.group is not None and not journal.group.open

    asyncio.run(many_jobs())
    assert len(commits) == 1
    other = Journal(tmp_path / "jobs.sqlite3")  # another process's view: all 20 are there
    assert len(other.recent(limit=50)) == 20
    other.close()
    journal.close()
