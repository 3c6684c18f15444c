"""What users read first: errors that say a thing once, in words, naming what is allowed."""

from __future__ import annotations

import socket
import subprocess

import pytest

from kling_cli.emulator import Emulator, Fault
from kling_cli.providers.catalog import CATALOG
from tests.test_entry_point import kling_command


@pytest.mark.parametrize("provider", ["runware", "unifically", "fal"])
def test_an_http_status_is_said_once(run_cli, use_emulator: Emulator, provider: str) -> None:
    use_emulator.inject(provider, Fault(kind="html_error_page", status=502, times=5))
    refs = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    result = run_cli("generate", "a red fox", "-p", provider, *refs, "-a", "1:1", "--json")
    assert result.exit_code != 0
    message = result.json()["error"]["message"]  # type: ignore[index]
    assert message.count("502") == 1, message


def test_prices_name_no_internal_documents(run_cli) -> None:
    for provider in sorted(CATALOG):
        result = run_cli("providers", "show", provider)
        assert result.exit_code == 0
        for internal in ("seed 0", "providers-", "§"):
            assert internal not in result.stdout, (provider, internal)


@pytest.mark.parametrize(
    ("provider", "line"),
    [
        ("fal", "references        1 to 10 (required)"),
        ("aimlapi", "references        1 to 10 (required)"),
        ("runware", "prompt            3 to 2500 characters"),
        ("runware", "(auto needs a --ref)"),
    ],
)
def test_providers_show_states_every_added_limit(run_cli, provider: str, line: str) -> None:
    result = run_cli("providers", "show", provider)
    assert line in result.stdout


def test_an_unknown_job_state_is_refused_with_the_states(run_cli) -> None:
    result = run_cli("jobs", "--state", "bogus")
    assert result.exit_code == 2
    assert "--state 'bogus' is not a job state; use one of " in result.stderr
    assert "succeeded" in result.stderr and "failed" in result.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "busy"])
def test_emulate_on_a_port_it_cannot_use_is_a_sentence(port: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = str(taken.getsockname()[1]) if port == "busy" else port
        result = subprocess.run(
            [*kling_command(), "emulate", "--port", number],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "This is a bug" not in result.stderr
    assert f"--port {number}" in result.stderr or f"port {number}" in result.stderr


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.981607, "1.0 s"),
        (0.25, "0.2 s"),
        (9.94, "9.9 s"),
        (42.4, "42 s"),
        (600, "10 min"),
        (630, "10 min 30 s"),
        (3600, "1 h"),
        (5430, "1 h 30 min"),
    ],
)
def test_durations_are_rounded_for_people(seconds: float, shown: str) -> None:
    from kling_cli.durations import human_duration

    assert human_duration(seconds) == shown


def test_a_timeout_names_a_rounded_duration(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(latency=30) as slow:
        monkeypatch.setenv("KLING_UNIFICALLY_BASE_URL", slow.base_url("unifically"))
        monkeypatch.setenv("KLING_UNIFICALLY_API_KEY", "emulator-key")
        result = run_cli("generate", "a red fox", "-p", "unifically", "--timeout", "0.981607")
    assert result.exit_code == 5, result.stderr
    assert "Gave up after 1.0 s (--timeout)" in result.stderr
    assert "0.981607" not in result.stderr
