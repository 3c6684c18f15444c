"""The money rule, proved on the installed `kling` in real processes: what can be known before
paying is checked before paying, and after a submit every way of stopping (a full disk, a
locked journal, SIGTERM, SIGHUP, an unencodable stdout) ends with the job recorded with its
task id, one JSON object naming it, a `kling status` command that works, and a classified exit
code."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command, run


def submits(emulator: Emulator, provider: str = "runware") -> int:
    if provider == "runware":
        return sum(
            1
            for r in emulator.requests
            if r.server == "api"
            and isinstance(r.json(), list)
            and r.json()[0].get("taskType") == "imageInference"
        )
    return sum(
        1
        for r in emulator.requests
        if r.server == "api" and r.method == "POST" and r.path.endswith("/tasks")
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*kling_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """Read stderr until a line containing `text` (plain progress lines: not a terminal)."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        if text in line:
            return seen
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}; stderr so far:\n{seen}")


def journal_rows(config_dir: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(config_dir / "jobs.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT jobs.id, jobs.state, tasks.task_id, tasks.state AS task_state"
            " FROM jobs LEFT JOIN tasks ON tasks.job_id = jobs.id ORDER BY jobs.created_at"
        ).fetchall()
    finally:
        db.close()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB file system: a full disk after the first image."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


# -- before paying ---------------------------------------------------------------------------


def test_output_dir_that_is_a_file_is_refused_before_paying(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    for target in (afile, afile / "sub"):
        result = run("generate", "a red fox", "-p", "runware", "-o", str(target), "--json")
        assert result.returncode == 2, result.stderr
        body = json.loads(result.stdout)
        assert "a file, not a directory" in body["error"]["message"]
    assert submits(use_emulator) == 0


def test_read_only_output_dir_is_refused_before_paying(
    use_emulator: Emulator, read_only_dir: Path
) -> None:
    result = run("generate", "a red fox", "-p", "runware", "-o", str(read_only_dir / "out"))
    assert result.returncode == 2
    assert "cannot be written" in result.stderr and "Traceback" not in result.stderr
    assert submits(use_emulator) == 0


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{nosuch}", "unknown placeholder"),
        ("{slug", "--name"),
        ("{slug}-" + "é" * 130, "bytes"),
    ],
)
def test_a_name_template_that_cannot_name_every_image_is_refused_before_paying(
    use_emulator: Emulator, template: str, words: str
) -> None:
    result = run("generate", "a red fox", "-p", "runware", "-n", "2", "--name", template)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert submits(use_emulator) == 0


def test_a_journal_that_cannot_be_written_is_refused_before_paying(
    use_emulator: Emulator, read_only_dir: Path
) -> None:
    result = run(
        "generate", "a red fox", "-p", "runware", env={"KLING_CONFIG_DIR": str(read_only_dir)}
    )
    assert result.returncode == 4, result.stderr
    assert "jobs journal" in result.stderr and "Nothing was submitted" in result.stderr
    assert submits(use_emulator) == 0


def test_no_wait_with_emulate_is_refused_rather_than_hinting_a_command_that_fails() -> None:
    result = run("generate", "a red fox", "--emulate", "--no-wait")
    assert result.returncode == 2
    assert "kling status" not in result.stdout + result.stderr


# -- after paying ----------------------------------------------------------------------------


def test_a_full_disk_after_the_submit_is_exit_7_with_the_job_resumable(
    use_emulator: Emulator, tmpfs: Path, tmp_path: Path, isolated_environment: Path
) -> None:
    result = run("generate", "a red fox", "-p", "runware", "-n", "9", "-o", str(tmpfs), "--json")
    assert result.returncode == 7, result.stderr
    body = json.loads(result.stdout)
    job_id = body["job"]["id"]
    assert body["job"]["task_id"] and body["error"]["code"] in ("save_failed", "download_failed")
    assert f"kling status {job_id}" in body["error"]["hint"]
    assert not [p for p in tmpfs.iterdir() if p.name.endswith(".part")]
    rows = journal_rows(isolated_environment)
    assert rows[0]["state"] == "download_failed" and rows[0]["task_id"]
    resumed = run("status", job_id, "--download", "-o", str(tmp_path / "big"), "--json")
    assert resumed.returncode == 0, resumed.stderr
    saved = list((tmp_path / "big").glob("*.png"))
    on_tmpfs = list(tmpfs.glob("*.png"))
    assert len(saved) + len(on_tmpfs) == 9
    assert submits(use_emulator) == 1


def test_a_journal_locked_while_the_submit_is_in_flight_loses_no_task_id(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    run("jobs")  # creates the journal
    use_emulator.inject("runware", Fault(kind="slow", on="submit", delay=1.5))
    process = start("generate", "a red fox", "-p", "runware", "--json")
    deadline = time.monotonic() + 10
    while submits(use_emulator) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    locker = sqlite3.connect(isolated_environment / "jobs.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        out, err = process.communicate(timeout=60)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert process.returncode == 0, err
    body = json.loads(out)
    task_id = body["job"]["task_id"]
    assert task_id and body["status"] == "success"
    assert "could not be written" in err and f"kling status {body['job']['id']}" in err
    status = run("status", body["job"]["id"], "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["job"]["task_id"] == task_id
    assert journal_rows(isolated_environment)[-1]["task_id"] == task_id


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_while_waiting_records_the_job_and_prints_how_to_resume(
    use_emulator: Emulator, isolated_environment: Path, signum: int, code: int
) -> None:
    # Long enough for the run to be stopped (or time out) while the task is still being made;
    # a task keeps the latency it was created with, so any resume below waits out the rest.
    use_emulator.latency = 10
    process = start("generate", "a red fox", "-p", "runware", "--json", "-o", "out")
    wait_for_line(process, "submitted to Runware")
    process.send_signal(signum)
    out, err = process.communicate(timeout=20)
    assert process.returncode == code, err
    body = json.loads(out)
    assert body["error"]["code"] == "interrupted" and body["job"]["task_id"]
    job_id = body["job"]["id"]
    assert f"kling status {job_id} --wait --download" in body["error"]["hint"]
    rows = journal_rows(isolated_environment)
    assert rows[0]["state"] == "interrupted" and rows[0]["task_id"] == body["job"]["task_id"]
    use_emulator.latency = 0.2
    resumed = run("status", job_id, "--wait", "--download", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(Path("out").glob("*.png"))) == 1
    assert submits(use_emulator) == 1


def test_sigterm_mid_download_leaves_no_part_file_and_status_finishes_it(
    use_emulator: Emulator,
) -> None:
    use_emulator.inject("images", Fault(kind="slow", on="download", delay=30))
    process = start("generate", "a red fox", "-p", "unifically", "-o", "out")
    wait_for_line(process, "succeeded")
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    assert not list(Path("out").glob(".*.part"))
    resumed = run("status", "--wait", "--download")
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(Path("out").glob("*.png"))) == 1


def test_unencodable_stdout_does_not_fail_a_paid_job() -> None:
    result = run(
        "generate",
        "a red fox",
        "--emulate",
        "--name",
        "fox-🦊",
        env={"PYTHONIOENCODING": "cp1252", "KLING_EMULATOR_LATENCY": "0.2"},
    )
    assert result.returncode == 0, result.stderr
    assert len(list(Path("kling-output").glob("fox-*.png"))) == 1


# -- kling status tells the truth ------------------------------------------------------------


def test_status_after_an_emulated_run_answers_from_the_journal() -> None:
    made = run(
        "generate", "a red fox", "--emulate", "--json", env={"KLING_EMULATOR_LATENCY": "0.2"}
    )
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)["job"]
    assert job["emulated"] is True and job["cost"] is None
    shown = run("status", "--json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["job"]["id"] == job["id"] and body["job"]["state"] == "succeeded"
    assert body["job"]["emulated"] is True
    sidecar = json.loads(next(Path("kling-output").glob("*.png.json")).read_text())
    assert sidecar["emulated"] is True and sidecar["cost_usd"] is None


def test_status_of_an_unknown_task_adds_no_job(use_emulator: Emulator) -> None:
    result = run("status", "no-such-task-0000", "-p", "unifically", "--json")
    assert result.returncode in (2, 3), result.stderr
    assert "no-such-task-0000" in json.loads(result.stdout)["error"]["message"]
    listed = run("jobs", "--json")
    assert json.loads(listed.stdout)["jobs"] == []


def test_status_download_that_fails_exits_7(use_emulator: Emulator) -> None:
    made = run("generate", "a red fox", "-p", "unifically", "--no-wait", "--json")
    job_id = json.loads(made.stdout)["job"]["id"]
    time.sleep(1.0)  # the task is done: no --wait needed
    use_emulator.inject("images", Fault(kind="server_error", on="download", status=500, times=50))
    result = run("status", job_id, "--download", "--json")
    assert result.returncode == 7, result.stderr
    body = json.loads(result.stdout)
    assert body["error"]["code"] == "download_failed" and body["files"] == []


def test_an_interrupted_fan_out_says_how_many_images_were_never_requested(
    use_emulator: Emulator,
) -> None:
    # Long enough for the run to be stopped (or time out) while the task is still being made;
    # a task keeps the latency it was created with, so any resume below waits out the rest.
    use_emulator.latency = 10
    process = start("generate", "a red fox", "-p", "unifically", "-n", "3", "-o", "out")
    wait_for_line(process, "submitted to Unifically")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == 143
    use_emulator.latency = 0.2
    finished = run("status", "--wait", "--download")
    # The image that was requested is saved; the job is still incomplete (exit 8).
    assert finished.returncode == 8, finished.stderr
    assert "never requested" in finished.stderr
    assert len(list(Path("out").glob("*.png"))) == 1
    again = run("status")
    assert "Finish it with" not in again.stderr


def test_error_envelopes_carry_the_hint() -> None:
    result = run("generate", "a red fox", "-p", "runware", "--json")
    assert result.returncode == 4
    body = json.loads(result.stdout)
    assert body["schema_version"] == 1
    assert "kling config set-key runware" in body["error"]["hint"]


# -- batch -----------------------------------------------------------------------------------


def test_an_interrupted_batch_prints_a_summary_and_writes_a_partial_manifest(
    use_emulator: Emulator,
) -> None:
    # Long enough for the run to be stopped (or time out) while the task is still being made;
    # a task keeps the latency it was created with, so any resume below waits out the rest.
    use_emulator.latency = 10
    Path("items.jsonl").write_text(
        "".join(json.dumps({"id": f"i{n}", "prompt": f"fox {n}"}) + "\n" for n in range(4))
    )
    process = start("batch", "items.jsonl", "-p", "unifically", "-o", "out", "-j", "2")
    deadline = time.monotonic() + 20
    while submits(use_emulator, "unifically") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    manifest = json.loads(Path("out/manifest.json").read_text())
    assert len(manifest["items"]) == 4
    assert {item["status"] for item in manifest["items"]} <= {"interrupted", "skipped"}
    assert "Run the same command again" in err
    use_emulator.latency = 0.2
    again = run("batch", "items.jsonl", "-p", "unifically", "-o", "out", "-j", "2")
    assert again.returncode == 0, again.stderr
    assert submits(use_emulator, "unifically") == 4


# -- ids and names ---------------------------------------------------------------------------


def test_job_ids_drawn_twice_are_drawn_again(
    monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> None:
    """A day's ids come from a small space; a busy day draws one twice. From a space of 100
    ids, 90 jobs all get one, each different (before: IntegrityError at the first repeat)."""
    import random

    from kling_cli import journal as journal_module

    draw = random.Random(7)
    monkeypatch.setattr(journal_module, "new_job_id", lambda: f"261130-{draw.randrange(100):06x}")
    journal = journal_module.Journal(isolated_environment / "jobs.sqlite3")
    ids = [journal.create_job("runware", {}, "/tmp") for _ in range(90)]
    journal.close()
    assert len(set(ids)) == 90


def test_a_part_file_left_by_a_killed_kling_is_removed_by_the_next_download(
    use_emulator: Emulator,
) -> None:
    made = run("generate", "a red fox", "-p", "unifically", "--no-wait", "--json", "-o", "out")
    job_id = json.loads(made.stdout)["job"]["id"]
    task = json.loads(made.stdout)["job"]["task_id"]
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs, as after SIGKILL
    Path("out").mkdir(exist_ok=True)
    orphan = Path("out") / f".a-red-fox-{task[:8]}.{dead.pid}.part"
    orphan.write_bytes(b"\x89PNG half an image")
    time.sleep(1.0)
    finished = run("status", job_id, "--wait", "--download")
    assert finished.returncode == 0, finished.stderr
    assert not orphan.exists()
    assert len(list(Path("out").glob("*.png"))) == 1


def test_a_bug_after_the_submit_still_records_the_job_and_the_resume_command(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kling_cli.sidecar import SidecarWriter

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the sidecar writer")

    monkeypatch.setattr(SidecarWriter, "saved", broken)
    result = run_cli("generate", "a red fox", "-p", "runware", "--json")
    assert result.exit_code == 1
    body = result.json()
    assert body["job"]["task_id"] and body["job"]["state"] == "error"
    assert f"kling status {body['job']['id']} --wait --download" in body["error"]["hint"]
