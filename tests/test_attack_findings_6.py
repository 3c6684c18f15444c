"""Attack findings on routed generation (failover), each proved on the installed `kling`
against the emulator over HTTP: after a submit that may have created a paid task, the job
never moves to another provider."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run
from tests.test_failover import created
from tests.test_money_rule import start, wait_for_line


def test_a_refusal_of_a_resend_after_a_lost_answer_never_fails_over(
    use_emulator: Emulator,
) -> None:
    # Comfy Router's submit is sent again with the same Idempotency-Key after a lost answer
    # (its documented way to collect it); the first send created, and charged, the task. A
    # 429 on the resend proves nothing about that first send: going on to Runware would pay
    # twice for one image.
    use_emulator.inject("comfy", Fault(kind="lost_response", on="submit"))
    use_emulator.inject("comfy", Fault(kind="rate_limit", on="submit", retry_after=None))
    result = run("generate", "a red fox", "-a", "1:1", "-p", "comfy,runware", "--json")
    body = json.loads(result.stdout)
    assert "trying Runware" not in result.stderr
    assert created(use_emulator) == {"comfy": 1}  # nothing paid at Runware
    assert result.returncode != 0
    job = body["job"]
    assert job["provider"] == "comfy"
    assert job["state"] == "may_exist", body
    shown = json.loads(run("jobs", "show", job["id"], "--json").stdout)["job"]
    assert [t["state"] for t in shown["tasks"]] == ["may_exist"]
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [("comfy", "may_exist")]
    # `kling status` on it really works: the task is found again by its key, never paid again.
    status = run("status", job["id"], "--wait", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["job"]["id"] == job["id"]
    assert created(use_emulator) == {"comfy": 1}


def test_the_python_api_takes_the_providers_as_a_list(use_emulator: Emulator) -> None:
    # A list is how a Python caller names several providers (as a config file's
    # `default_provider` list does); it was an AttributeError traceback from deep inside.
    import asyncio

    import kling_cli

    use_emulator.out_of_credits_after("runware", 0)
    job = kling_cli.generate("a red fox", provider=["runware", "unifically"], aspect_ratio="1:1")
    assert job.provider == "unifically" and job.images
    assert [(a.provider, a.outcome) for a in job.attempts] == [
        ("runware", "out_of_credits"),
        ("unifically", "succeeded"),
    ]
    awaited = asyncio.run(
        kling_cli.agenerate("a red fox", provider=("runware", "unifically"), aspect_ratio="1:1")
    )
    assert [a.provider for a in awaited.attempts] == ["runware", "unifically"]
    assert created(use_emulator) == {"unifically": 2}


def test_a_routed_job_finished_by_status_tells_its_attempts_truly(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    # Ctrl-C while the second provider works: the job is resumable there. Once `kling status
    # --wait --download` finishes it, its own attempt said "interrupted" for ever (in `status
    # --json` and `jobs show`) and its sidecar had no attempts at all.
    use_emulator.out_of_credits_after("runware", 0)
    use_emulator.latency = 3
    process = start("generate", "a red fox", "-a", "1:1", "-p", "runware,unifically", "--json")
    wait_for_line(process, "submitted to Unifically")
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    job = json.loads(out)["job"]
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [
        ("runware", "out_of_credits"),
        ("unifically", "interrupted"),
    ]
    finished = run("status", job["id"], "--wait", "--download", "--json")
    assert finished.returncode == 0, finished.stderr
    body = json.loads(finished.stdout)
    expected = [("runware", "out_of_credits"), ("unifically", "succeeded")]
    assert [(a["provider"], a["outcome"]) for a in body["job"]["attempts"]] == expected
    shown = json.loads(run("jobs", "show", job["id"], "--json").stdout)["job"]
    assert [(a["provider"], a["outcome"]) for a in shown["attempts"]] == expected
    image = Path(body["files"][0]["path"])
    sidecar = json.loads(image.with_name(image.name + ".json").read_text())
    assert [(a["provider"], a["outcome"]) for a in sidecar["attempts"]] == expected
    assert created(use_emulator) == {"unifically": 1}


def test_a_named_provider_that_cannot_serve_the_request_is_said_to_be_skipped(
    use_emulator: Emulator,
) -> None:
    # fal's Kling O1 endpoint needs a reference image; named as the last fallback of a
    # text-only job it was dropped without a word, so a job that ended in a refusal at the
    # providers before it looked as if fal had never been asked for.
    use_emulator.out_of_credits_after("runware", 0)
    use_emulator.reject_key("unifically")
    result = run("generate", "a red fox", "-a", "1:1", "-p", "runware,unifically,fal", "--json")
    assert result.returncode == 4
    assert "Not trying fal. fal: fal.ai's Kling O1 endpoint edits reference images" in (
        result.stderr
    )
    body = json.loads(result.stdout)
    assert [a["provider"] for a in body["job"]["attempts"]] == ["runware", "unifically"]
    assert created(use_emulator) == {}


def test_status_of_a_refused_attempt_reads_as_one_sentence(use_emulator: Emulator) -> None:
    # The provider's own message ends with a full stop; `kling status` added another ("..").
    use_emulator.reject_key("unifically")
    failed = run("generate", "a red fox", "-a", "1:1", "-p", "unifically,runware", "--json")
    assert failed.returncode == 0, failed.stderr
    refused = json.loads(failed.stdout)["job"]["attempts"][0]
    assert refused["outcome"] == "key_rejected"
    status = run("status", refused["job_id"], "--json")
    assert status.returncode == 3
    message = json.loads(status.stdout)["error"]["message"]
    assert message == (
        f"Job {refused['job_id']} was refused before it was created: Unifically: Invalid API "
        "key provided (authentication_failed) (HTTP 401)."
    )


def test_the_timeout_bounds_the_whole_routed_job(use_emulator: Emulator) -> None:
    # `--timeout` is "a deadline for the whole job"; each provider of `-p a,b` began it
    # afresh, so the time spent at a provider that refused came on top of it.
    import time

    use_emulator.inject("runware", Fault(kind="rate_limit", retry_after=1, times=None))
    use_emulator.latency = 60
    process = start(
        "generate",
        "a red fox",
        "-a",
        "1:1",
        "-p",
        "runware,unifically",
        "--timeout",
        "8",
        "--json",
    )
    wait_for_line(process, "submitting to Runware")
    began = time.monotonic()
    wait_for_line(process, "trying Unifically", timeout=30)
    at_runware = time.monotonic() - began
    out, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - began
    assert process.returncode == 5, err
    assert at_runware > 2  # Runware's 429s took a good part of the 8 s
    # Afresh, it would end at_runware + 8 s after the first submit.
    assert elapsed < 8 + at_runware - 1, f"{elapsed:.1f}s ({at_runware:.1f}s at Runware)"
    body = json.loads(out)
    assert body["error"]["message"].startswith("Gave up after 8.0 s (--timeout)")
    assert [a["provider"] for a in body["job"]["attempts"]] == ["runware", "unifically"]


def test_providers_over_max_cost_are_said_not_to_be_tried(use_emulator: Emulator) -> None:
    # Over --max-cost, the user's first choice was passed over without a word, and `-p auto`
    # promised a failover order ("then runware, ...") it would never follow.
    named = run(
        "generate", "a red fox", "-a", "1:1", "-p", "runware,apiinone", "--max-cost", "0.02"
    )
    assert named.returncode == 0, named.stderr
    assert "Not trying runware: estimated over --max-cost ($0.0200)." in named.stderr
    auto = run("generate", "a red fox", "-a", "1:1", "-p", "auto", "--max-cost", "0.02")
    assert auto.returncode == 0, auto.stderr
    assert "the cheapest provider with a key that can serve this request. Cannot:" in auto.stderr
    assert "; then " not in auto.stderr
    assert created(use_emulator) == {"apiinone": 2}
