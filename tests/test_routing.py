"""`-p auto`: among the providers with a key, the cheapest whose documented capabilities
serve this exact request, then the others in price order; `kling providers route` and
`--dry-run` explain the choice. Real runs against the emulator over HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from tests.test_entry_point import run

KEYED = ("inferencesh", "fal", "aimlapi")


@pytest.fixture
def three_keys(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Keys (and emulated hosts) for inference.sh, fal and AIML API only."""
    for provider in KEYED:
        monkeypatch.setenv(f"KLING_{provider.upper()}_BASE_URL", emulator.base_url(provider))
        monkeypatch.setenv(f"KLING_{provider.upper()}_API_KEY", EMULATOR_API_KEY)
        for name, url in emulator.service_urls(provider).items():
            monkeypatch.setenv(f"KLING_{provider.upper()}_{name.upper()}_URL", url)
    return emulator


def references(count: int) -> list[str]:
    args = []
    for number in range(count):
        path = Path(f"ref{number}.png")
        Image.new("RGB", (400, 400), (20 * number, 80, 160)).save(path)
        args += ["-r", str(path)]
    return args


def auto(*args: str) -> tuple[str, str]:
    result = run("generate", "a red fox @image_1", "-p", "auto", *args, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["job"]["provider"], result.stderr


def test_text_only_goes_to_the_cheapest_that_takes_no_reference(three_keys: Emulator) -> None:
    result = run("generate", "a red fox", "-p", "auto", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job"]["provider"] == "inferencesh"
    assert "-p auto: inference.sh ($0.0280), the cheapest provider with a key" in result.stderr
    assert "Cannot: fal: fal.ai's Kling O1 endpoint edits reference images" in result.stderr


def test_ten_references_go_to_the_cheapest_that_takes_ten(three_keys: Emulator) -> None:
    provider, stderr = auto(*references(10))
    assert provider == "fal"  # inference.sh takes one; AIML API costs more ($0.0294)
    assert "then aimlapi" in stderr
    assert "inferencesh: inference.sh accepts at most 1 reference image; 10 given." in stderr


def test_auto_ratio_goes_to_a_provider_that_has_auto(three_keys: Emulator) -> None:
    provider, stderr = auto("-a", "auto", *references(1))
    assert provider == "fal"  # neither inference.sh nor AIML API has `auto`
    assert "aimlapi: AIML API cannot follow the references' aspect ratio" in stderr


def test_auto_fails_over_in_price_order(three_keys: Emulator) -> None:
    three_keys.out_of_credits_after("fal", 0)
    result = run("generate", "a red fox @image_1", "-p", "auto", *references(2), "--json")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)["job"]
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [
        ("fal", "out_of_credits"),
        ("aimlapi", "succeeded"),
    ]


def test_route_cheapest_in_the_config_is_auto(
    three_keys: Emulator, isolated_environment: Path
) -> None:
    isolated_environment.mkdir(parents=True, exist_ok=True)
    (isolated_environment / "config.toml").write_text('route = "cheapest"\n')
    result = run("generate", "a red fox", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job"]["provider"] == "inferencesh"


def test_no_provider_with_a_key_can_serve_is_exit_2_with_each_reason(
    three_keys: Emulator,
) -> None:
    result = run("generate", "a red fox", "-p", "auto", "-a", "auto")
    assert result.returncode == 2
    assert "No provider asked for can serve this request." in result.stderr
    assert "inference.sh does not support aspect ratio auto" in result.stderr
    assert three_keys.requests == []


def test_providers_route_lists_who_can_serve_and_why_not(three_keys: Emulator) -> None:
    result = run("providers", "route", "a red fox", "-a", "16:9", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["chosen"] == "inferencesh"
    rows = {row["provider"]: row for row in body["route"]}
    assert rows["inferencesh"]["order"] == 1 and rows["inferencesh"]["unable"] is None
    assert rows["fal"]["order"] is None and "needs at least one --ref" in rows["fal"]["unable"]
    assert rows["runware"]["unable"] == "no API key is set."
    text = run("providers", "route", "a red fox", "-a", "16:9").stdout
    assert text.splitlines()[0].split() == ["1.", "inferencesh", "$0.0280", "chosen"]
    assert three_keys.requests == []


def test_dry_run_shows_the_choice_and_the_failover_order(three_keys: Emulator) -> None:
    args = ["generate", "a red fox @image_1", "-p", "auto", *references(2), "--dry-run"]
    result = run(*args, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["provider"] == "fal"
    assert [row["provider"] for row in body["route"] if row["order"]] == ["fal", "aimlapi"]
    text = run(*args)
    assert "Route 1. fal ($0.0280)" in text.stderr
    assert "Route 2. aimlapi ($0.0294)" in text.stderr
    assert "Route skipped: inferencesh inference.sh accepts at most 1 reference" in text.stderr
    assert three_keys.requests == []
    assert "KLING_RUNWARE_API_KEY" not in os.environ


def test_config_takes_a_provider_list_and_the_cheapest_route() -> None:
    assert run("config", "set", "default_provider", "Runware,fal").returncode == 0
    assert run("config", "set", "route", "cheapest").returncode == 0
    listed = run("config", "list").stdout
    assert "default_provider = runware,fal" in listed and "route = cheapest" in listed
    bad = run("config", "set", "default_provider", "runware,nope")
    assert bad.returncode == 4 and "Unknown provider 'nope' for default_provider" in bad.stderr
    bad = run("config", "set", "route", "dearest")
    assert bad.returncode == 4 and "route must be cheapest" in bad.stderr
