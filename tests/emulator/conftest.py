"""Fixtures for the emulator tests: a running emulator and per-provider callers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from PIL import Image

from kling_cli.emulator import Emulator

from .helpers import LATENCY, RunwareCaller, UnificallyCaller, decode_image


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(latency=LATENCY) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # One client for the session: building one (its TLS context) costs more than a test.
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def runware(emu: Emulator, http: httpx.Client) -> RunwareCaller:
    return RunwareCaller(emu, http)


@pytest.fixture
def unifically(emu: Emulator, http: httpx.Client) -> UnificallyCaller:
    return UnificallyCaller(emu, http)


@pytest.fixture
def fetch_image(http: httpx.Client) -> Callable[[str], tuple[httpx.Response, Image.Image]]:
    def fetch(url: str) -> tuple[httpx.Response, Image.Image]:
        response = http.get(url)
        assert response.status_code == 200, response.text
        return response, decode_image(response.content)

    return fetch
