"""Faults of one emulated provider among several, as failover and spread batches meet them:
an account that runs out of credit, a refused key, a provider that is down or slow."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command, run


def test_out_of_credits_after_n_submits_stays_out(emu: Emulator, unifically: Any) -> None:
    emu.out_of_credits_after("unifically", 2)
    statuses = [unifically.submit_input(prompt="x").status_code for _ in range(5)]
    assert statuses == [200, 200, 402, 402, 402]
    # Polls are not submits: the tasks it did take are still answered.
    assert [fault.kind for _, fault, _ in emu.pending_faults()] == ["out_of_credits"]


def test_after_lets_requests_pass_before_a_counted_fault(emu: Emulator, unifically: Any) -> None:
    emu.inject("unifically", Fault("server_error", after=1, times=1))
    statuses = [unifically.submit_input(prompt="x").status_code for _ in range(3)]
    assert statuses == [200, 500, 200]


def test_a_rejected_key_is_refused_by_that_provider_only(
    emu: Emulator, runware: Any, unifically: Any
) -> None:
    emu.reject_key("unifically")
    assert unifically.submit_input(prompt="x").status_code == 401
    assert runware.post([runware.task(deliveryMethod="async")]).status_code == 200
    emu.reject_key("unifically", rejected=False)
    assert unifically.submit_input(prompt="x").status_code == 200


def test_a_provider_that_is_down_refuses_connections(emu: Emulator) -> None:
    served = emu.base_url("fal")
    emu.set_down("fal")
    down = emu.base_url("fal")
    assert down != served and down.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        httpx.post(down + "/fal-ai/kling-image/o1", json={}, timeout=5)
    assert emu.base_url("runware").startswith(emu.api_origin)


def test_a_slow_provider_answers_every_submit_late(emu: Emulator, unifically: Any) -> None:
    emu.slow_down("unifically", 0.3)
    for _ in range(2):
        started = time.monotonic()
        assert unifically.submit_input(prompt="x").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_kling_emulate_sets_faults_per_provider() -> None:
    server = subprocess.Popen(
        [
            *kling_command(),
            "emulate",
            "--port",
            "0",
            "--down",
            "fal",
            "--out-of-credits",
            "unifically=1",
            "--reject-key",
            "wavespeed",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while not {"runware", "fal", "unifically"} <= urls.keys() and time.monotonic() < deadline:
            words = server.stdout.readline().split()
            if len(words) == 2 and words[1].startswith("http://127.0.0.1"):
                urls[words[0]] = words[1]
        origin = urls["runware"].rsplit("/runware", 1)[0]
        assert not urls["fal"].startswith(origin)  # down: another port, refusing
        submit = urls["unifically"] + "/v1/tasks"
        headers = {"Authorization": "Bearer emulator-key"}
        body = {"model": "kuaishou/kling-o1-image", "input": {"prompt": "x"}}
        statuses = [httpx.post(submit, json=body, headers=headers).status_code for _ in range(2)]
        assert statuses == [200, 402]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def test_kling_emulate_refuses_a_bad_fault_before_starting() -> None:
    result = run("emulate", "--port", "0", "--out-of-credits", "runware=lots")
    assert result.returncode == 2
    assert "--out-of-credits 'runware=lots' needs the form ID=N" in result.stderr
    result = run("emulate", "--port", "0", "--down", "nope")
    assert result.returncode == 2
    assert "is not an emulated provider" in result.stderr
