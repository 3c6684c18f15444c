"""`kling status` of a job that ended without images answers from the journal with the job's
outcome: a task the provider failed, or a submit it refused, exits 3 with the reason, and
never suggests a `--wait --download` that has nothing to wait for (the real `kling`, in a
subprocess, against the emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from kling_cli.emulator.faults import Fault
from tests.test_entry_point import run


@pytest.fixture(autouse=True)
def in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("fault", "generate_exit", "said"),
    [
        (Fault(kind="out_of_credits"), 6, "was refused before it was created"),
        (Fault(kind="task_failure", message="Content policy"), 3, "failed: Content policy"),
    ],
)
def test_status_of_a_job_that_made_nothing_exits_3_and_offers_nothing_to_finish(
    use_emulator: Emulator, fault: Fault, generate_exit: int, said: str
) -> None:
    use_emulator.inject("runware", fault)
    made = run("generate", "a red fox", "-p", "runware", "--json")
    assert made.returncode == generate_exit, made.stderr
    job_id = json.loads(made.stdout)["job"]["id"]
    asked = len(use_emulator.requests)

    shown = run("status", job_id)
    assert shown.returncode == 3, shown.stderr
    assert said in shown.stderr
    assert "--wait --download" not in shown.stderr + shown.stdout
    assert "generate it again" in shown.stderr

    answered = run("status", job_id, "--json")
    body = json.loads(answered.stdout)
    assert answered.returncode == body["exit_code"] == 3
    assert body["status"] == "error" and body["error"]["code"] == "task_failed"
    assert body["job"]["id"] == job_id
    assert len(use_emulator.requests) == asked  # the journal answered: nothing was sent
