"""What every provider's contract shares, checked once for each: every aspect ratio it takes and
both resolutions reach its wire body in its own spelling, and the image that comes back has the
documented size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from kling_cli.limits import ASPECT_RATIOS, OUTPUT_DIMENSIONS

REF = "https://example.com/a.png"


@dataclass(frozen=True)
class Wire:
    """Where a provider's submit carries the options, and what a request to it needs."""

    # An aspect ratio with a documented size, for the resolution test.
    aspect: str
    # Sent every time: the provider requires a reference (fal, AIML API).
    needs_reference: bool = False
    auto: bool = True
    upper_case_resolution: bool = False
    options: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: body


WIRES = {
    "aimlapi": Wire("3:4", needs_reference=True, auto=False, upper_case_resolution=True),
    "apiinone": Wire("3:2", auto=False),  # auto needs a reference: test_apiinone.py
    "comfy": Wire("2:3"),
    "fal": Wire("9:16", needs_reference=True, upper_case_resolution=True),
    "inferencesh": Wire("3:4", auto=False, options=lambda body: body["input"]),
    "kling": Wire("21:9"),
    "wavespeed": Wire("4:3"),
}


@pytest.fixture
def emulated(use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)  # Kling signs with a pair
    return use_emulator


def sent_options(emu: Emulator, provider: str) -> dict[str, Any]:
    first = next(r for r in emu.requests if r.server == "api" and r.method == "POST")
    return WIRES[provider].options(first.json())


@pytest.mark.parametrize(
    ("provider", "aspect"),
    [
        (provider, aspect)
        for provider, wire in WIRES.items()
        for aspect in ASPECT_RATIOS
        if wire.auto or aspect != "auto"
    ],
)
def test_every_aspect_ratio(run_cli, emulated: Emulator, provider: str, aspect: str) -> None:
    wire = WIRES[provider]
    refs = ["-r", REF] if wire.needs_reference or aspect == "auto" else []
    result = run_cli("generate", "a red fox", *refs, "-a", aspect, "-p", provider, "--json")
    assert result.exit_code == 0, result.stderr
    assert sent_options(emulated, provider)["aspect_ratio"] == aspect
    [entry] = result.json()["files"]
    if aspect != "auto":
        assert (entry["width"], entry["height"]) == OUTPUT_DIMENSIONS[("1k", aspect)]


@pytest.mark.parametrize("resolution", ["1k", "2k"])
@pytest.mark.parametrize("provider", list(WIRES))
def test_both_resolutions(run_cli, emulated: Emulator, provider: str, resolution: str) -> None:
    wire = WIRES[provider]
    refs = ["-r", REF] if wire.needs_reference else []
    args = ["-a", wire.aspect, "-R", resolution, "-p", provider]
    result = run_cli("generate", "a red fox", *refs, *args)
    assert result.exit_code == 0, result.stderr
    expected = resolution.upper() if wire.upper_case_resolution else resolution
    assert sent_options(emulated, provider)["resolution"] == expected
    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.size == OUTPUT_DIMENSIONS[(resolution, wire.aspect)]
