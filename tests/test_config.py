"""Keys and settings: where they are stored, how they are shown, which one wins."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

KEY = "rw-secret-key-abcdefghijklmnop"


def test_set_key_from_stdin_writes_a_private_file(run_cli, isolated_environment: Path) -> None:
    result = run_cli("config", "set-key", "runware", "--stdin", stdin=KEY + "\n")
    assert result.exit_code == 0, result.stderr
    path = isolated_environment / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert KEY in path.read_text()
    assert KEY not in result.stdout + result.stderr
    assert "****mnop" in result.stderr


def test_list_masks_keys_and_names_their_source(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli("config", "set-key", "runware", "--stdin", stdin=KEY)
    monkeypatch.setenv("UNIFICALLY_API_KEY", "uf-env-key-1234567890")
    result = run_cli("config", "list")
    assert result.exit_code == 0
    assert "providers.runware.api_key = ****mnop  [config file]" in result.stdout
    assert "providers.unifically.api_key = ****7890  [UNIFICALLY_API_KEY]" in result.stdout
    assert KEY not in result.stdout and "uf-env-key-1234567890" not in result.stdout

    as_json = run_cli("config", "list", "--json").json()
    rows = {row["name"]: row for row in as_json["settings"]}
    assert rows["providers.runware.api_key"]["source"] == "config file"


def test_environment_beats_the_config_file_and_kling_variable_beats_the_providers(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("config", "set-key", "runware", "--stdin", stdin=KEY)
    monkeypatch.setenv("RUNWARE_API_KEY", "provider-env-key-000000001")
    assert "[RUNWARE_API_KEY]" in run_cli("config", "list").stdout
    monkeypatch.setenv("KLING_RUNWARE_API_KEY", "kling-env-key-0000000002")
    assert "****0002  [KLING_RUNWARE_API_KEY]" in run_cli("config", "list").stdout


def test_get_set_unset_path(run_cli, isolated_environment: Path) -> None:
    assert run_cli("config", "path").stdout.strip() == str(isolated_environment / "config.toml")
    assert run_cli("config", "set", "default_provider", "unifically").exit_code == 0
    assert run_cli("config", "get", "default_provider").stdout.strip() == "unifically"
    assert (
        run_cli("config", "set", "providers.runware.base_url", "http://127.0.0.1:9/v1").exit_code
        == 0
    )
    assert (
        run_cli("config", "get", "providers.runware.base_url").stdout.strip()
        == "http://127.0.0.1:9/v1"
    )
    run_cli("config", "set-key", "runware", "--stdin", stdin=KEY)
    assert run_cli("config", "get", "providers.runware.api_key").stdout.strip() == "****mnop"
    assert run_cli("config", "unset", "providers.runware.api_key").exit_code == 0
    missing = run_cli("config", "get", "providers.runware.api_key")
    assert missing.exit_code == 4
    assert run_cli("config", "get", "default_provider").stdout.strip() == "unifically"


def test_set_refuses_keys_on_the_command_line(run_cli, isolated_environment: Path) -> None:
    result = run_cli("config", "set", "providers.runware.api_key", KEY)
    assert result.exit_code == 4
    assert "kling config set-key runware" in result.stderr
    assert not (isolated_environment / "config.toml").exists()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("default_provider", "nosuch", "Unknown provider 'nosuch'"),
        ("providers.runware.base_url", "http://example.com/v1", "must use https"),
        ("providers.nosuch.base_url", "https://x", "Unknown provider 'nosuch'"),
        ("colour", "blue", "Unknown setting 'colour'"),
    ],
)
def test_set_refuses_bad_values(run_cli, name: str, value: str, message: str) -> None:
    result = run_cli("config", "set", name, value)
    assert result.exit_code in (2, 4)
    assert message in result.stderr


def test_a_file_readable_by_others_gets_a_warning(run_cli, isolated_environment: Path) -> None:
    run_cli("config", "set-key", "runware", "--stdin", stdin=KEY)
    path = isolated_environment / "config.toml"
    os.chmod(path, 0o644)
    result = run_cli("providers")
    assert "readable by other users" in result.stderr
    assert f"chmod 600 {path}" in result.stderr


def test_a_broken_config_file_is_a_clear_error(run_cli, isolated_environment: Path) -> None:
    isolated_environment.mkdir(parents=True)
    (isolated_environment / "config.toml").write_text("default_provider = [unclosed\n")
    result = run_cli("providers")
    assert result.exit_code == 4
    assert "is not valid TOML" in result.stderr


def test_default_provider_from_config_and_environment(
    run_cli, use_emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("config", "set", "default_provider", "unifically")
    result = run_cli("generate", "a red fox", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["job"]["provider"] == "unifically"
    monkeypatch.setenv("KLING_PROVIDER", "runware")
    assert run_cli("generate", "a red fox", "--json").json()["job"]["provider"] == "runware"


def test_providers_table_shows_key_state_and_price(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNWARE_API_KEY", "provider-env-key-000000001")
    result = run_cli("providers")
    assert result.exit_code == 0
    runware_line = next(line for line in result.stdout.splitlines() if line.startswith("runware"))
    assert "yes (RUNWARE_API_KEY)" in runware_line and "0.0280" in runware_line
    unifically_line = next(
        line for line in result.stdout.splitlines() if line.startswith("unifically")
    )
    assert " no " in unifically_line
    rows = run_cli("providers", "--json").json()["providers"]
    by_id = {row["id"]: row for row in rows}
    assert by_id["runware"]["key_configured"] is True
    assert by_id["unifically"]["key_configured"] is False


def test_providers_show_names_docs_variables_and_price_source(run_cli) -> None:
    result = run_cli("providers", "show", "kling")
    assert result.exit_code == 0
    assert "KLING_KLING_API_KEY, KLING_ACCESS_KEY" in result.stdout
    assert "KLING_KLING_SECRET_KEY, KLING_SECRET_KEY" in result.stdout
    assert "https://api-singapore.klingai.com" in result.stdout
    shown = run_cli("providers", "show", "inferencesh", "--json").json()["provider"]
    assert shown["capabilities"]["max_references"] == 1
    assert "auto" not in shown["capabilities"]["aspect_ratios"]
    assert shown["price_source"] and shown["docs"].startswith("https://")
    assert run_cli("providers", "show", "nosuch").exit_code == 2
