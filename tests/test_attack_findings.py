"""Breaks of the money rule found by attacking the tool from outside, each reproduced in real
processes against the emulator: a re-run after SIGKILL, a fan-out cut short, an interrupted
batch's summary, a journal whose disk fills, closed or broken output streams."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command, run
from tests.test_money_rule import journal_rows, start, submits, wait_for_line


def _wait_for_submits(emulator: Emulator, provider: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while submits(emulator, provider) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert submits(emulator, provider) >= count, "the submit never reached the emulator"


def _created(emulator: Emulator, provider: str) -> int:
    return sum(1 for event in emulator.events if event[1] == "created" and event[2] == provider)


def test_a_broken_pipe_on_progress_output_does_not_abandon_a_paid_job(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`kling generate ... 2>&1 | head -n1`: the reader goes away after the first progress line.
    Today the job dies mid-poll with exit 1 (a bug), the journal says `error` with "Cannot save
    the images: Broken pipe." while the task is still pending at the provider, and nothing is
    downloaded."""
    use_emulator.latency = 1.5
    process = subprocess.Popen(
        [*kling_command(), "generate", "a red fox", "-p", "unifically", "-o", "out"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    process.stderr.readline()
    process.stderr.close()
    process.wait(timeout=30)
    assert process.returncode != 1, "a closed progress pipe is the environment, not a bug"
    rows = journal_rows(isolated_environment)
    assert rows and rows[0]["task_id"]
    assert rows[0]["state"] != "error" or rows[0]["task_state"] != "pending"


def test_closed_stdout_after_a_paid_success_is_not_a_traceback(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`kling generate ... --json >&-`: sys.stdout is None; the paid, saved job ends in an
    AttributeError traceback and exit 1."""
    command = " ".join([*kling_command(), "generate", "'a red fox'", "-p", "unifically", "--json"])
    result = subprocess.run(
        ["sh", "-c", f"exec {command} >&-"], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode != 1
    assert journal_rows(isolated_environment)[0]["state"] == "succeeded"


def test_runware_job_interrupted_during_submit_records_its_task_id(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """Runware's task id is the taskUUID kling chose and sent. SIGTERM during the (synchronous)
    submit: the envelope says `task_id: null, task_ids: []`; after `kling status --wait
    --download` finds and saves the image the job still has no task id, and its task keeps the
    error "the submit was not answered" although it succeeded."""
    use_emulator.latency = 3
    process = start("generate", "a red fox", "-p", "runware", "-o", "out", "--json")
    seen = wait_for_line(process, "submitting to Runware: task")
    task_uuid = seen.rsplit("task ", 1)[1].strip()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 143
    body = json.loads(out)
    use_emulator.latency = 0.2
    time.sleep(3.0)
    job_id = body["job"]["id"]
    resumed = run("status", job_id, "--wait", "--download", "--json")
    assert resumed.returncode == 0, resumed.stderr
    shown = json.loads(run("jobs", "show", job_id, "--json").stdout)["job"]
    assert submits(use_emulator) == 1
    assert shown["task_id"] == task_uuid, shown
    assert shown["tasks"][0]["error"] is None, shown["tasks"][0]


def test_batch_rerun_after_sigkill_mid_submit_does_not_submit_the_item_again(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """SIGKILL while a submit is in flight leaves the job in state `submitting`. The provider
    has created (and charged) the task; Unifically has no client id to look it up by. The
    re-run must not submit the item a second time (README: "resumes items that were submitted
    but not finished (never submitting them twice)"). Today it draws a new job and pays again."""
    Path("items.jsonl").write_text(json.dumps({"id": "one", "prompt": "a red fox"}) + "\n")
    use_emulator.inject("unifically", Fault(kind="slow", on="submit", delay=1.5))
    process = start("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
    _wait_for_submits(use_emulator, "unifically", 1)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=20)
    time.sleep(2.0)  # the emulator finishes the slow submit: the task exists, and is paid for
    assert _created(use_emulator, "unifically") == 1
    rows = journal_rows(isolated_environment)
    assert [row["state"] for row in rows] == ["submitting"]
    again = run("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
    assert submits(use_emulator, "unifically") == 1, (
        f"the item was submitted again (exit {again.returncode}): paid twice"
    )


def test_batch_resume_of_a_part_submitted_fan_out_is_not_reported_as_succeeded(
    use_emulator: Emulator,
) -> None:
    """`num_images: 3` on Unifically is three tasks. SIGTERM while the 2nd submit is in flight:
    task 1 submitted, task 2 may_exist, image 3 never requested. Re-running the batch reports
    the item `succeeded`, with one file of three, and exits 0; the journal says may_exist."""
    Path("items.jsonl").write_text(
        json.dumps({"id": "one", "prompt": "a red fox", "num_images": 3}) + "\n"
    )
    use_emulator.inject("unifically", Fault(kind="slow", on="submit", delay=1.5, times=3))
    process = start("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
    _wait_for_submits(use_emulator, "unifically", 2)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 143
    time.sleep(2.0)
    again = run("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    item = next(line["item"] for line in lines if "item" in line)
    images = list(Path("out").glob("*.png"))
    if len(images) < 3:
        assert item["status"] != "succeeded", f"{len(images)} of 3 images, reported succeeded"
        assert again.returncode == 8, f"{len(images)} of 3 images, exit {again.returncode}"


def test_an_interrupted_batch_summary_states_the_real_exit_code_and_names_every_job(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """SIGTERM during `kling batch --json`: the process exits 143 but the summary says
    `"exit_code": 8`; and the interrupted (submitted, paid) items' jobs appear nowhere on
    stdout: no item line, not in `not_submitted`."""
    use_emulator.latency = 30
    Path("items.jsonl").write_text(
        "".join(json.dumps({"id": f"i{n}", "prompt": f"fox {n}"}) + "\n" for n in range(4))
    )
    process = start("batch", "items.jsonl", "-p", "unifically", "-o", "out", "-j", "2", "--json")
    _wait_for_submits(use_emulator, "unifically", 2)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["exit_code"] == process.returncode
    job_ids = {row["id"] for row in journal_rows(isolated_environment)}
    assert job_ids and all(job_id in out for job_id in job_ids), (
        f"submitted jobs {sorted(job_ids)} are not named on stdout"
    )


def test_a_journal_disk_that_fills_after_the_submit_is_reported_and_loses_nothing(
    use_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's file system fills after the submit (the journal was writable at the
    preflight). Today: exit 0, nothing on stderr, `journal-pending.jsonl` created empty, the
    job left `submitting`, the batch item reported `succeeded` with `files: []` (summary
    `images: 0`) though the image is saved; the re-run then downloads the same image again as
    `one-1.png`: the image is on disk twice."""
    config = tmp_path / "journal-fs"
    config.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(config)], check=True)
    try:
        monkeypatch.setenv("KLING_CONFIG_DIR", str(config))
        run("jobs")  # creates the journal
        use_emulator.latency = 1.5
        Path("items.jsonl").write_text(json.dumps({"id": "one", "prompt": "a red fox"}) + "\n")
        process = start("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
        _wait_for_submits(use_emulator, "unifically", 1)
        time.sleep(0.4)  # the task id is in the journal
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={config / 'fill'}", "bs=4k"], capture_output=True
        )
        out, err = process.communicate(timeout=60)
        item = json.loads(out.splitlines()[0])["item"]
        pending = config / "journal-pending.jsonl"
        told = "kling status" in err or (pending.exists() and pending.read_text().strip())
        (config / "fill").unlink()
        assert told, f"the journal failed silently (exit {process.returncode}); stderr: {err!r}"
        assert item["status"] != "succeeded" or item["files"], item
        run("batch", "items.jsonl", "-p", "unifically", "-o", "out", "--json")
        assert submits(use_emulator, "unifically") == 1
        assert sorted(p.name for p in Path("out").glob("*.png")) == ["one.png"]
    finally:
        subprocess.run(["umount", "-l", str(config)], check=False)
