"""Attack findings against the money rule: each test reproduces one break, in real processes
against the emulator, and fails until the product is fixed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from kling_cli.emulator import Emulator
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
