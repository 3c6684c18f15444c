"""Failover, proved on the installed `kling` against the emulator over HTTP: `-p a,b,c` moves
to the next provider only when the refusal proves nothing was created and nothing charged,
never after an answer that may hide a paid task; each attempt is in the journal, the `--json`
envelope, `kling jobs show` and the sidecar."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run


def created(emulator: Emulator) -> dict[str, int]:
    """Tasks each provider created (each one paid for on a real account)."""
    counts: dict[str, int] = {}
    for _, kind, provider, _ in emulator.events:
        if kind == "created":
            counts[provider] = counts.get(provider, 0) + 1
    return counts


def generate(*args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = run("generate", "a red fox", "-a", "1:1", *args, "--json")
    return result.returncode, json.loads(result.stdout), result.stderr


def attempt_rows(config_dir: Path) -> list[tuple[str, int, str, str]]:
    with sqlite3.connect(config_dir / "jobs.sqlite3") as db:
        return db.execute(
            "SELECT job_id, seq, provider, outcome FROM attempts ORDER BY job_id, seq"
        ).fetchall()


def test_out_of_credits_on_the_first_provider_is_made_by_the_second(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    use_emulator.out_of_credits_after("runware", 0)
    code, body, stderr = generate("-p", "runware,unifically")
    assert code == 0, stderr
    assert "Runware created nothing and charged nothing" in stderr
    assert "trying Unifically" in stderr
    job = body["job"]
    assert job["provider"] == "unifically" and job["state"] == "succeeded"
    assert created(use_emulator) == {"unifically": 1}  # one paid task in total
    first, second = job["attempts"]
    assert first["provider"] == "runware" and first["outcome"] == "out_of_credits"
    assert "Insufficient credits" in first["error"]
    assert second == {
        "provider": "unifically",
        "outcome": "succeeded",
        "error": None,
        "job_id": job["id"],
    }
    # The journal: the refused attempt is its own job, never created; the final one holds both.
    rows = attempt_rows(isolated_environment)
    final = [row for row in rows if row[0] == job["id"]]
    assert [(row[2], row[3]) for row in final] == [
        ("runware", "out_of_credits"),
        ("unifically", "succeeded"),
    ]
    refused = run("jobs", "show", first["job_id"], "--json")
    assert [t["state"] for t in json.loads(refused.stdout)["job"]["tasks"]] == ["not_created"]
    # `kling jobs show` and the sidecar say the same.
    shown = run("jobs", "show", job["id"])
    assert "  1. runware out_of_credits: Runware: Insufficient credits" in shown.stdout
    assert "  2. unifically succeeded" in shown.stdout
    shown_json = json.loads(run("jobs", "show", job["id"], "--json").stdout)
    assert shown_json["job"]["attempts"] == job["attempts"]
    status_json = json.loads(run("status", job["id"], "--json").stdout)
    assert status_json["job"]["attempts"] == job["attempts"]
    image = Path(body["files"][0]["path"])
    sidecar = json.loads(image.with_name(image.name + ".json").read_text())
    assert sidecar["provider"] == "unifically"
    assert [(a["provider"], a["outcome"]) for a in sidecar["attempts"]] == [
        ("runware", "out_of_credits"),
        ("unifically", "succeeded"),
    ]


def test_a_rejected_key_on_the_first_provider_goes_to_the_second(
    use_emulator: Emulator,
) -> None:
    use_emulator.reject_key("unifically")
    code, body, stderr = generate("-p", "unifically,runware")
    assert code == 0, stderr
    assert [(a["provider"], a["outcome"]) for a in body["job"]["attempts"]] == [
        ("unifically", "key_rejected"),
        ("runware", "succeeded"),
    ]
    assert created(use_emulator) == {"runware": 1}


def test_a_provider_that_is_down_is_passed_over(
    use_emulator: Emulator, monkeypatch: object
) -> None:
    import os

    use_emulator.set_down("unifically")
    os.environ["KLING_UNIFICALLY_BASE_URL"] = use_emulator.base_url("unifically")
    code, body, stderr = generate("-p", "unifically,runware")
    assert code == 0, stderr
    assert [(a["provider"], a["outcome"]) for a in body["job"]["attempts"]] == [
        ("unifically", "never_sent"),
        ("runware", "succeeded"),
    ]


def test_a_lost_answer_never_fails_over(use_emulator: Emulator) -> None:
    # The task is created (and paid for) at Unifically, then its answer is lost: kling cannot
    # know, so the job stays there, recorded, with today's exit code and words.
    use_emulator.inject("unifically", Fault(kind="lost_response", on="submit"))
    alone_code, alone, _ = generate("-p", "unifically")
    use_emulator.inject("unifically", Fault(kind="lost_response", on="submit"))
    code, body, _ = generate("-p", "unifically,runware")
    assert code == alone_code == 1
    assert body["error"]["message"] == alone["error"]["message"].replace(
        alone["job"]["id"], body["job"]["id"]
    )
    assert body["error"]["hint"] == alone["error"]["hint"]
    assert body["job"]["state"] == "may_exist"
    assert body["job"]["attempts"] == [
        {
            "provider": "unifically",
            "outcome": "may_exist",
            "error": body["error"]["message"],
            "job_id": body["job"]["id"],
        }
    ]
    assert created(use_emulator) == {"unifically": 2}  # nothing at Runware


def test_a_server_error_after_sending_never_fails_over(use_emulator: Emulator) -> None:
    use_emulator.inject("runware", Fault(kind="server_error", on="submit", times=None))
    code, body, stderr = generate("-p", "runware,unifically")
    assert code != 0
    assert "trying" not in stderr
    assert [a["provider"] for a in body["job"]["attempts"]] == ["runware"]
    assert created(use_emulator) == {}


def test_a_resumable_job_on_the_first_provider_keeps_its_resume_hint(
    use_emulator: Emulator,
) -> None:
    # Runware holds the submit open until the image exists, and --timeout cuts it short: the
    # task may exist at Runware, so the job is Runware's to finish, never sent elsewhere.
    use_emulator.latency = 30
    # A deadline the submit is sent well within, also when parallel workers slow the start.
    code, body, _ = generate("-p", "runware,unifically", "--timeout", "4")
    assert code == 5
    resume = f"kling status {body['job']['id']} --wait --download"
    assert body["error"]["hint"].endswith(f"Resume with: {resume}")
    assert "Runware" in body["error"]["hint"]
    assert created(use_emulator) == {"runware": 1}


def test_default_provider_as_a_list_fails_over(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    isolated_environment.mkdir(parents=True, exist_ok=True)
    (isolated_environment / "config.toml").write_text(
        'default_provider = ["runware", "unifically"]\n'
    )
    use_emulator.out_of_credits_after("runware", 0)
    code, body, stderr = generate()
    assert code == 0, stderr
    assert [a["provider"] for a in body["job"]["attempts"]] == ["runware", "unifically"]


def test_every_provider_refusing_ends_with_the_last_refusal(use_emulator: Emulator) -> None:
    use_emulator.out_of_credits_after("runware", 0)
    use_emulator.reject_key("unifically")
    code, body, _ = generate("-p", "runware,unifically")
    assert code == 4
    assert [(a["provider"], a["outcome"]) for a in body["job"]["attempts"]] == [
        ("runware", "out_of_credits"),
        ("unifically", "key_rejected"),
    ]
    assert created(use_emulator) == {}


def test_the_python_api_fails_over_too(use_emulator: Emulator) -> None:
    import asyncio

    import kling_cli

    use_emulator.out_of_credits_after("runware", 0)
    job = kling_cli.generate("a red fox", provider="runware,unifically", aspect_ratio="1:1")
    assert job.provider == "unifically" and job.images
    assert [(a.provider, a.outcome) for a in job.attempts] == [
        ("runware", "out_of_credits"),
        ("unifically", "succeeded"),
    ]
    awaited = asyncio.run(
        kling_cli.agenerate("a red fox", provider="runware,unifically", aspect_ratio="1:1")
    )
    assert awaited.provider == "unifically"
    assert [a.provider for a in awaited.attempts] == ["runware", "unifically"]
    assert created(use_emulator) == {"unifically": 2}


def test_a_429_on_the_submit_goes_to_the_next(use_emulator: Emulator) -> None:
    # A 429 without Retry-After is not retried by a single generation: it created nothing.
    use_emulator.inject("runware", Fault(kind="rate_limit", retry_after=None, times=None))
    code, body, stderr = generate("-p", "runware,unifically")
    assert code == 0, stderr
    assert [(a["provider"], a["outcome"]) for a in body["job"]["attempts"]] == [
        ("runware", "rate_limited"),
        ("unifically", "succeeded"),
    ]
    assert created(use_emulator) == {"unifically": 1}


def test_a_swallowed_interrupt_stops_the_failover_before_the_next_provider_is_paid(
    use_emulator: Emulator, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C raised while a `__del__` ran is printed as "Exception ignored" and lost by
    Python; kling keeps it (`interrupts.pending()`), and a routed job must not go on to pay
    the next provider after it."""
    import sys

    from kling_cli import interrupts

    monkeypatch.setattr(interrupts, "_swallowed", [])
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    interrupts.install()

    class Finalizer:
        def __del__(self) -> None:
            raise KeyboardInterrupt

    Finalizer()  # collected at once: its KeyboardInterrupt is swallowed, as Python does
    assert interrupts.pending() is not None
    use_emulator.out_of_credits_after("runware", 0)
    result = run_cli("generate", "a red fox", "-a", "1:1", "-p", "runware,unifically", "--json")
    assert "Unifically is not tried" in result.stderr
    assert created(use_emulator) == {}  # nothing paid anywhere
    assert result.exit_code == 6
    body = result.json()
    assert isinstance(body, dict) and body["job"]["provider"] == "runware"
