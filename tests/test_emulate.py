"""`--emulate` and `kling emulate`: offline generations with real images of the documented size."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kling_cli.limits import OUTPUT_DIMENSIONS
from tests.conftest import Launched


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_EMULATOR_LATENCY", "0")


@pytest.mark.parametrize(("resolution", "aspect"), sorted(OUTPUT_DIMENSIONS))
def test_emulate_writes_pngs_of_the_documented_size(run_cli, resolution: str, aspect: str) -> None:
    result = run_cli(
        "generate", "a red fox on a snowy ridge", "--emulate", "-a", aspect, "-R", resolution
    )
    assert result.exit_code == 0, result.stderr
    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == OUTPUT_DIMENSIONS[(resolution, aspect)]


def test_emulate_needs_no_key_and_defaults_to_runware(run_cli) -> None:
    result = run_cli("generate", "a red fox", "--emulate", "-n", "2", "--json")
    assert result.exit_code == 0, result.stderr
    body = result.json()
    assert body["job"]["provider"] == "runware"
    assert len(body["files"]) == 2
    assert "built-in Runware emulator" in result.stderr


def test_emulate_runs_the_chosen_providers_code_path(run_cli) -> None:
    result = run_cli(
        "generate", "a red fox", "--emulate", "-p", "unifically", "-a", "9:16", "--json"
    )
    assert result.exit_code == 0, result.stderr
    [entry] = result.json()["files"]
    assert (entry["width"], entry["height"]) == (768, 1360)


PROVIDERS = [
    *("aimlapi", "apiinone", "comfy", "fal", "inferencesh"),
    *("kling", "runware", "unifically", "wavespeed"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_emulated_images_differ_by_prompt_and_keep_their_size(
    run_cli, provider: str, tmp_path: Path
) -> None:
    """Each image shows what it answers, so two requests differing only in the prompt give
    different bytes, of the same documented size."""
    reference = tmp_path / "hero.png"  # fal's and AIML API's endpoints edit references
    Image.new("RGB", (512, 512), (200, 120, 40)).save(reference)
    saved = []
    for prompt in ("a red fox on a snowy ridge", "a grey wolf on a snowy ridge"):
        refs = ["--ref", str(reference)] if provider in ("fal", "aimlapi") else []
        result = run_cli(
            "generate", prompt, "--emulate", "-p", provider, "-a", "1:1", *refs, "--json"
        )
        assert result.exit_code == 0, result.stderr
        [entry] = result.json()["files"]
        saved.append(entry)
    first, second = (Path(entry["path"]).read_bytes() for entry in saved)
    assert first != second
    for entry in saved:
        with Image.open(entry["path"]) as image:
            assert (
                image.size == OUTPUT_DIMENSIONS[("1k", "1:1")] == (entry["width"], entry["height"])
            )


def test_open_and_reveal_call_the_launcher(run_cli, launched: Launched) -> None:
    """--open opens each saved image once, --reveal shows the folder once."""
    result = run_cli("generate", "a red fox", "--emulate", "-n", "3", "--open", "--reveal")
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.split()
    assert sorted(launched()) == sorted([*paths, str(Path(paths[0]).parent)])
    assert run_cli("generate", "a red fox", "--emulate", "-n", "2").exit_code == 0
    assert launched() == []
