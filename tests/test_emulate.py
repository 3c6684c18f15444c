"""`--emulate` and `kling emulate`: offline generations with real images of the documented size."""

from __future__ import annotations

import pytest
from PIL import Image

from kling_cli.limits import OUTPUT_DIMENSIONS


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
