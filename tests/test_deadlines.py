"""`--timeout` is a deadline for the whole command, on every transport, proved on the installed
`kling` in real processes against the emulator: the time to exit, what is recorded, and what
the user is told; and every resend is one the provider documents as safe."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run

REF = "https://example.com/reference.png"
# Slack over --timeout for the process to start, record the job and exit.
EXIT_SLACK = 2.0


def provider_requests(emulator: Emulator) -> list:
    return [r for r in emulator.requests if r.server == "api"]


def task_rows(config_dir: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(config_dir / "jobs.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT jobs.state AS job_state, tasks.* FROM jobs JOIN tasks ON tasks.job_id = jobs.id"
        ).fetchall()
    finally:
        db.close()


# -- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "command",
    [
        ["generate", "a red fox", "-p", "runware"],
        ["status", "261123-a3f9c2", "--wait"],
        ["batch", "items.jsonl", "-p", "runware"],
    ],
    ids=["generate", "status", "batch"],
)
def test_a_timeout_that_is_no_deadline_is_refused_before_any_request(
    use_emulator: Emulator, command: list[str], value: str
) -> None:
    Path("items.jsonl").write_text('{"id": "a", "prompt": "a red fox"}\n')
    result = run(*command, f"--timeout={value}", "--json")
    assert result.returncode == 2, result.stderr
    assert "--timeout must be a positive, finite number" in json.loads(result.stdout)["error"][
        "message"
    ]
    assert provider_requests(use_emulator) == []
