"""--webhook, end to end on the installed `kling`: each provider that documents a completion
webhook gets the URL in its documented field, the emulator POSTs the documented body to a
receiver on loopback, and `kling ingest` of that body finishes the job with no second submit;
a provider that documents none refuses --webhook before sending anything."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from kling_cli.emulator.recording import RecordedRequest
from tests.receiver import Receiver
from tests.test_entry_point import kling_command, run


def _webhook_in(provider: str, request: RecordedRequest) -> str | None:
    """The webhook URL a submit carries, read where the provider's docs put it; None for a
    request that is not a submit."""
    if request.server != "api" or request.method != "POST":
        return None
    query = parse_qs(request.query)
    if provider == "fal" and request.path.endswith("/kling-image/o1"):
        return query.get("fal_webhook", [""])[0]
    if provider == "wavespeed" and request.path.endswith("/kling-image-o1"):
        return query.get("webhook", [""])[0]
    body: Any = request.json() if request.body else None
    if provider == "runware" and isinstance(body, list):
        task = body[0]
        return task.get("webhookURL", "") if task.get("taskType") == "imageInference" else None
    fields = {
        "unifically": ("/v1/tasks", "callback_url"),
        "apiinone": ("/images/generations", "callback_url"),
        "inferencesh": ("/apps/run", "webhook"),
        "kling": ("/v1/images/omni-image", "callback_url"),
    }
    if provider in fields and request.path.endswith(fields[provider][0]):
        return str(body.get(fields[provider][1], ""))
    return None


def submits(emulator: Emulator, provider: str) -> list[str]:
    found = [_webhook_in(provider, r) for r in emulator.requests if r.provider == provider]
    return [url for url in found if url is not None]


@pytest.fixture(autouse=True)
def kling_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)  # Kling signs with a pair


WEBHOOK_PROVIDERS = (
    "unifically",
    "apiinone",
    "runware",
    "inferencesh",
    "kling",
    "fal",
    "wavespeed",
)


@pytest.mark.parametrize("provider", WEBHOOK_PROVIDERS)
def test_the_submit_carries_the_webhook_in_the_documented_field(
    use_emulator: Emulator, provider: str
) -> None:
    url = "http://127.0.0.1:9/hooks/kling?token=abc"
    ref = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    result = run("generate", "a red fox", "-p", provider, *ref, "--no-wait", "--webhook", url)
    assert result.returncode == 0, result.stderr
    assert submits(use_emulator, provider) == [url]


@pytest.mark.parametrize("provider", ["comfy", "aimlapi"])
def test_a_provider_without_webhooks_refuses_one_before_sending_anything(
    use_emulator: Emulator, provider: str
) -> None:
    result = run(
        "generate", "a red fox", "-p", provider, "-r", "https://example.com/a.png",
        "--webhook", "https://example.com/hook",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "documents no --webhook" in result.stderr and "Traceback" not in result.stderr
    assert use_emulator.requests == []


def test_a_webhook_that_is_not_https_is_refused_before_sending_anything(
    use_emulator: Emulator,
) -> None:
    result = run("generate", "a red fox", "-p", "runware", "--webhook", "http://example.com/h")
    assert result.returncode == 2
    assert "only https is allowed" in result.stderr
    assert use_emulator.requests == []


def test_a_webhook_over_2048_characters_is_refused_without_its_token(
    use_emulator: Emulator,
) -> None:
    url = "https://hooks.example.com/kling?token=s3cret&pad=" + "x" * 3000
    result = run("generate", "a red fox", "-p", "runware", "--no-wait", "--webhook", url)
    assert result.returncode == 2, result.stderr
    assert f"{len(url):,} characters" in result.stderr and "2,048" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    assert use_emulator.requests == []


def test_a_webhook_of_exactly_2048_characters_is_sent(use_emulator: Emulator) -> None:
    start = "http://127.0.0.1:9/hooks/kling?token=abc&pad="
    url = start + "x" * (2048 - len(start))
    result = run("generate", "a red fox", "-p", "runware", "--no-wait", "--webhook", url)
    assert result.returncode == 0, result.stderr
    assert submits(use_emulator, "runware") == [url]


def test_the_journal_records_the_webhook_without_its_token(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    url = "https://hooks.example.com/kling?token=secret-token"
    result = run("generate", "a fox", "-p", "unifically", "--no-wait", "--webhook", url, "--json")
    assert result.returncode == 0, result.stderr
    job_id = json.loads(result.stdout)["job"]["id"]
    shown = run("jobs", "show", job_id, "--json")
    request = json.loads(shown.stdout)["job"]["request"]
    assert request["webhook"] == "https://hooks.example.com/kling?…"
    assert "secret-token" not in (isolated_environment / "jobs.sqlite3").read_bytes().decode(
        "utf-8", "replace"
    )


def test_batch_items_carry_their_own_webhook(use_emulator: Emulator, tmp_path: Path) -> None:
    manifest = tmp_path / "items.jsonl"
    items = [
        {"id": "a", "prompt": "a fox", "webhook": "https://one.example.com/h"},
        {"id": "b", "prompt": "a cat"},
    ]
    manifest.write_text("\n".join(json.dumps(item) for item in items) + "\n")
    result = run(
        "batch", str(manifest), "-p", "unifically", "--webhook", "https://all.example.com/h"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(submits(use_emulator, "unifically")) == [
        "https://all.example.com/h",
        "https://one.example.com/h",
    ]


def test_providers_show_lists_the_webhook() -> None:
    shown = json.loads(run("providers", "show", "runware", "--json").stdout)["provider"]
    assert shown["capabilities"]["webhook"] == "webhookURL"
    assert "outputType" in shown["not_offered"] and "routing" in shown["not_offered"]
    comfy = run("providers", "show", "comfy")
    assert "webhook           no (none documented)" in comfy.stdout
    inferencesh = run("providers", "show", "inferencesh").stdout
    assert "yes, --webhook (sent as `webhook`)" in inferencesh
    assert "not offered       n: set by kling-cli: always 1" in inferencesh


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("provider", WEBHOOK_PROVIDERS)
def test_ingest_finishes_the_job_from_the_delivered_body_and_a_repeat_changes_nothing(
    use_emulator: Emulator, provider: str, tmp_path: Path
) -> None:
    use_emulator.webhook_repeat = 2  # "may be delivered more than once"
    out = tmp_path / "out"
    ref = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    with Receiver() as receiver:
        submitted = run(
            "generate", "a red fox", "-p", provider, *ref, "-o", str(out), "--no-wait",
            "--webhook", f"{receiver.url}/hook", "--json",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job_id = json.loads(submitted.stdout)["job"]["id"]
        first, second = receiver.wait_for(2)
    assert first.path == "/hook" and first.body == second.body
    assert _files(out) == []  # --no-wait: nothing fetched yet
    payload = tmp_path / "body.json"
    payload.write_bytes(first.body)

    ingested = run("ingest", str(payload), "--json")
    assert ingested.returncode == 0, ingested.stderr
    answer = json.loads(ingested.stdout)
    assert answer["job"]["id"] == job_id and answer["job"]["state"] == "succeeded"
    saved = _files(out)
    images = [name for name in saved if not name.endswith(".json")]
    assert len(images) == 1 and answer["files"][0]["path"].endswith(images[0])
    assert len(submits(use_emulator, provider)) == 1

    payload.write_bytes(second.body)
    repeated = run("ingest", str(payload))
    assert repeated.returncode == 0, repeated.stderr
    assert "Already recorded" in repeated.stderr
    assert _files(out) == saved
    assert len(submits(use_emulator, provider)) == 1


def test_runware_posts_one_body_per_image_and_the_job_ends_with_the_last(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with Receiver() as receiver:
        submitted = run(
            "generate", "a red fox", "-p", "runware", "-n", "2", "-o", str(out), "--no-wait",
            "--webhook", f"{receiver.url}/hook",
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        bodies = receiver.wait_for(2)
    assert {body.json()["imageUUID"] for body in bodies} and len(bodies) == 2
    states = []
    for body in bodies:
        ingested = subprocess.run(
            [*kling_command(), "ingest", "-", "--json"],
            input=body.body.decode(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ingested.returncode == 0, ingested.stderr
        states.append(json.loads(ingested.stdout)["job"]["state"])
    assert states[-1] == "succeeded"
    assert len([n for n in _files(out) if not n.endswith(".json")]) == 2


def test_a_body_that_matches_no_job_is_exit_3(use_emulator: Emulator, tmp_path: Path) -> None:
    payload = tmp_path / "body.json"
    payload.write_text(json.dumps({"task_id": "nope", "status": "completed", "data": {}}))
    result = run("ingest", str(payload))
    assert result.returncode == 3, result.stderr
    assert "No job in the journal has task 'nope'" in result.stderr
    payload.write_text("{}")
    assert run("ingest", str(payload)).returncode == 2


@pytest.mark.parametrize("provider", WEBHOOK_PROVIDERS)
def test_a_failure_delivered_by_webhook_is_exit_3_with_the_provider_reason(
    use_emulator: Emulator, provider: str, tmp_path: Path
) -> None:
    from kling_cli.emulator import Fault

    use_emulator.inject(provider, Fault("task_failure"))
    ref = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    with Receiver() as receiver:
        submitted = run(
            "generate", "a red fox", "-p", provider, *ref, "--no-wait", "--webhook", receiver.url
        )
        assert submitted.returncode == 0, submitted.stderr
        [body] = receiver.wait_for(1)
    payload = tmp_path / "body.json"
    payload.write_bytes(body.body)
    result = run("ingest", str(payload), "--json")
    assert result.returncode == 3, result.stderr
    answer = json.loads(result.stdout)
    assert answer["job"]["tasks"][0]["state"] == "failed"
    assert "Content policy violation" in answer["error"]["message"]
    again = run("ingest", str(payload))
    assert again.returncode == 3 and "Already recorded" in again.stderr


@pytest.mark.parametrize("provider", ["runware", "unifically"])
def test_waiting_works_as_without_a_webhook_and_its_late_delivery_changes_nothing(
    use_emulator: Emulator, provider: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with Receiver() as receiver:
        waited = run(
            "generate", "a red fox", "-p", provider, "-o", str(out), "--webhook", receiver.url
        )
        assert waited.returncode == 0, waited.stderr
        saved = _files(out)
        assert len([name for name in saved if not name.endswith(".json")]) == 1
        [body] = receiver.wait_for(1)
    payload = tmp_path / "body.json"
    payload.write_bytes(body.body)
    late = run("ingest", str(payload))
    assert late.returncode == 0, late.stderr
    assert "Already recorded" in late.stderr and _files(out) == saved


def test_the_python_api_takes_a_webhook(use_emulator: Emulator) -> None:
    import kling_cli

    job = kling_cli.generate(
        "a red fox", provider="unifically", webhook="https://h.example.com/x", wait=False
    )
    assert job.state == "submitted"
    assert submits(use_emulator, "unifically") == ["https://h.example.com/x"]


def test_the_emulator_control_api_repeats_deliveries_for_another_process(
    use_emulator: Emulator,
) -> None:
    import urllib.request

    control = f"{use_emulator.api_origin}/_emulator/webhooks"
    request = urllib.request.Request(control, data=b'{"repeat": 2}', method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    with Receiver() as receiver:
        assert (
            run("generate", "a fox", "-p", "wavespeed", "--webhook", receiver.url).returncode == 0
        )
        receiver.wait_for(2)
    deliveries: list[dict[str, Any]] = []
    for _ in range(50):  # the emulator notes a delivery once the receiver has answered it
        with urllib.request.urlopen(control, timeout=10) as answer:
            deliveries = json.loads(answer.read())
        if len(deliveries) == 2:
            break
        time.sleep(0.1)
    assert [d["status"] for d in deliveries] == [200, 200]
