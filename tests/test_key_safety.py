"""Keys that cannot be sent are refused before any request (exit 4, naming where the key came
from, never showing it); text a server sends back never shows the key in use."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator

BAD_KEYS = [
    pytest.param(EMULATOR_API_KEY + "\nsecond-line", "a line break at character", id="newline"),
    pytest.param(EMULATOR_API_KEY[:4] + "\r" + EMULATOR_API_KEY[4:], "a line break", id="cr"),
    pytest.param(EMULATOR_API_KEY + "é", "a non-ASCII character (U+00E9)", id="non-ascii"),
    pytest.param("abc\u200bdef" + EMULATOR_API_KEY, "a non-ASCII character (U+200B)", id="zwsp"),
    pytest.param("abc\tdef" + EMULATOR_API_KEY, "a control character (U+0009)", id="tab"),
    pytest.param("abc\x7fdef", "a control character (U+007F)", id="del"),
]


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS)
def test_an_unsendable_key_from_the_environment_is_exit_4_with_no_request(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, key: str, problem: str
) -> None:
    monkeypatch.setenv("KLING_RUNWARE_API_KEY", key)
    result = run_cli("generate", "a red fox", "-p", "runware", "--json")
    assert result.exit_code == 4, result.stderr
    message = result.json()["error"]["message"]  # type: ignore[index]
    assert problem in message and "KLING_RUNWARE_API_KEY" in message
    assert "may have been created" not in result.stdout + result.stderr
    assert key.strip() not in result.stdout + result.stderr
    assert use_emulator.requests == []


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS[:3])
def test_an_unsendable_key_in_the_config_file_is_named_as_such(
    run_cli,
    use_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    isolated_environment: Path,
    key: str,
    problem: str,
) -> None:
    import json

    monkeypatch.delenv("KLING_UNIFICALLY_API_KEY")
    isolated_environment.mkdir(parents=True, exist_ok=True)
    (isolated_environment / "config.toml").write_text(
        f"[providers.unifically]\napi_key = {json.dumps(key)}\n"
    )
    result = run_cli("generate", "a red fox", "-p", "unifically")
    assert result.exit_code == 4, result.stderr
    assert problem in result.stderr and "from the config file" in result.stderr
    assert use_emulator.requests == []


def test_a_kling_secret_key_is_checked_too(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", "secret\nkey")
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 4, result.stderr
    assert "Kling secret key from KLING_KLING_SECRET_KEY contains a line break" in result.stderr
    assert use_emulator.requests == []


def test_set_key_refuses_an_unsendable_key(run_cli, isolated_environment: Path) -> None:
    result = run_cli("config", "set-key", "runware", "--stdin", stdin="key-with-é-inside\n")
    assert result.exit_code == 4
    assert "non-ASCII character (U+00E9) at character 10" in result.stderr
    assert not (isolated_environment / "config.toml").exists()


def test_listings_still_show_a_provider_whose_key_is_unsendable(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_RUNWARE_API_KEY", "bad\nkey-0123456789abcdef")
    assert run_cli("config", "list").exit_code == 0
    assert run_cli("providers").exit_code == 0


SECRET = "sk-live-0123456789abcdefSECRET"


@pytest.fixture
def echoing_server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A loopback server speaking Unifically's wire format whose answers quote the key it
    was sent, as careless servers do; `answers[(method, path)]` = (status, JSON body)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers: dict[tuple[str, str], tuple[int, object]] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = answers[(self.command, self.path)]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("KLING_UNIFICALLY_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("KLING_UNIFICALLY_API_KEY", SECRET)
    yield answers
    httpd.shutdown()
    httpd.server_close()


def test_a_key_quoted_in_a_refusal_is_redacted(run_cli, echoing_server) -> None:  # type: ignore[no-untyped-def]
    echoing_server[("POST", "/v1/tasks")] = (
        400,
        {"code": 400, "data": {"message": f"invalid request for key {SECRET}", "code": "bad"}},
    )
    result = run_cli("generate", "a fox", "-p", "unifically", "--json")
    assert result.exit_code == 1, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "key <redacted>" in result.json()["error"]["message"]  # type: ignore[index]


def test_a_key_quoted_in_a_task_failure_is_redacted_everywhere(run_cli, echoing_server) -> None:  # type: ignore[no-untyped-def]
    echoing_server[("POST", "/v1/tasks")] = (
        200,
        {"code": 200, "data": {"task_id": "t-1", "status": "pending"}},
    )
    echoing_server[("GET", "/v1/tasks/t-1")] = (
        200,
        {"code": 200, "data": {"status": "failed", "error": {"message": f"quota for {SECRET}"}}},
    )
    result = run_cli("generate", "a fox", "-p", "unifically")
    assert result.exit_code == 3, result.stderr
    assert "quota for <redacted>" in result.stderr and SECRET not in result.stderr
    journal = run_cli("jobs", "--json")
    assert journal.exit_code == 0
    assert SECRET not in journal.stdout and "t-1" in journal.stdout
