"""--webhook, end to end on the installed `kling`: each provider that documents a completion
webhook gets the URL in its documented field, the emulator POSTs the documented body to a
receiver on loopback, and `kling ingest` of that body finishes the job with no second submit;
a provider that documents none refuses --webhook before sending anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from kling_cli.emulator.recording import RecordedRequest
from tests.test_entry_point import run


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
    comfy = run("providers", "show", "comfy")
    assert "webhook           no (none documented)" in comfy.stdout
