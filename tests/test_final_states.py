"""Endings besides success and failure that a provider documents (cancelled, timeout,
deleted...): the wait ends at once with exit 3, the message names the ending, and the job is
recorded as failed. The emulator ends a task so through a task_failure fault's `final_state`."""

from __future__ import annotations

import time

import pytest

from kling_cli.emulator import Emulator, Fault

TIMEOUT = 60.0

# (provider, the provider's word). Sources, in the emulator's `final_states`: WaveSpeed's SDK
# wait loop, inference.sh's SDK TERMINAL_STATUSES, API in One's relayed WaveSpeed words, and
# for fal any status beyond its three documented ones.
ENDINGS = [
    ("wavespeed", "cancelled"),
    ("wavespeed", "timeout"),
    ("wavespeed", "deleted"),
    ("inferencesh", "cancelled"),
    ("apiinone", "cancelled"),
    ("apiinone", "canceled"),
    ("apiinone", "timeout"),
    ("fal", "CANCELED"),
    ("fal", "FAILED"),
]


@pytest.mark.parametrize(("provider", "state"), ENDINGS)
def test_a_documented_ending_stops_the_wait_with_exit_3(
    run_cli, use_emulator: Emulator, provider: str, state: str
) -> None:
    use_emulator.inject(provider, Fault(kind="task_failure", final_state=state))
    refs = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    started = time.monotonic()
    result = run_cli(
        "generate", "a red fox", "-p", provider, *refs, "--timeout", str(TIMEOUT), "--json"
    )
    assert result.exit_code == 3, result.stdout
    assert time.monotonic() - started < TIMEOUT / 4  # at once, not at the deadline
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert state in body["error"]["message"], body["error"]["message"]
    assert body["job"]["state"] == "failed"
    [job] = run_cli("jobs", "--json").json()["jobs"]
    assert (job["id"], job["state"]) == (body["job"]["id"], "failed")


def test_a_provider_refuses_an_ending_it_does_not_document(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="runware tasks cannot end as 'cancelled'"):
        emulator.inject("runware", Fault(kind="task_failure", final_state="cancelled"))
    with pytest.raises(ValueError, match="task_failure fault only"):
        Fault(kind="server_error", final_state="cancelled")
