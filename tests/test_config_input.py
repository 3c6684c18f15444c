"""Bad configuration input: one exit code (4), a sentence naming the value and where it came
from; unknown settings reported; an existing config directory's mode left alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["config", "set", "foo", "bar"], "Unknown setting 'foo'"),
        (["config", "get", "nosuch"], "Unknown setting 'nosuch'"),
        (["config", "get", "providers.nosuch.base_url"], "Unknown provider 'nosuch'"),
        (["config", "set", "providers.nosuch.base_url", "https://x"], "Unknown provider 'nosuch'"),
        (["config", "set", "default_provider", "nosuch"], "Unknown provider 'nosuch' for default"),
        (["config", "unset", "bogus.key"], "Unknown setting 'bogus.key'"),
        (["config", "set-key", "nosuch", "--stdin"], "Unknown provider 'nosuch'"),
        (["config", "set-key", "runware", "--stdin"], "The API key is empty"),
        (["config", "set", "providers.runware.auth", "bogus"], "must be one of jwt, bearer"),
        (["config", "set", "providers.runware.base_url", "http://x.example"], "must use https"),
    ],
)
def test_bad_config_input_is_exit_4(run_cli, args: list[str], words: str) -> None:
    result = run_cli(*args, stdin="\n")
    assert result.exit_code == 4, result.stderr
    assert words in result.stderr


def test_an_unknown_provider_from_the_environment_names_the_variable(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_PROVIDER", "nosuch")
    result = run_cli("generate", "a fox", "--emulate")
    assert result.exit_code == 4, result.stderr
    assert "Unknown provider 'nosuch' (from KLING_PROVIDER)" in result.stderr


def test_an_unknown_default_provider_names_the_file(run_cli, isolated_environment: Path) -> None:
    isolated_environment.mkdir(parents=True)
    (isolated_environment / "config.toml").write_text('default_provider = "nosuch"\n')
    result = run_cli("generate", "a fox", "--emulate")
    assert result.exit_code == 4, result.stderr
    assert "(from default_provider in" in result.stderr and "config.toml" in result.stderr


def test_unknown_settings_in_the_file_are_reported(run_cli, isolated_environment: Path) -> None:
    isolated_environment.mkdir(parents=True)
    path = isolated_environment / "config.toml"
    path.write_text(
        'defualt_provider = "runware"\n[providers.runware]\nbase_ur1 = "https://x"\n'
        '[providers.nosuch]\nbase_url = "https://y"\n'
    )
    path.chmod(0o600)
    result = run_cli("config", "list")
    assert result.exit_code == 0
    for name in ("'defualt_provider'", "'providers.runware.base_ur1'", "'providers.nosuch'"):
        assert f"{path}: unknown setting {name}" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_config_set_leaves_an_existing_directory_mode_alone(
    run_cli, isolated_environment: Path
) -> None:
    isolated_environment.mkdir(parents=True)
    isolated_environment.chmod(0o1777)
    result = run_cli("config", "set", "default_provider", "runware")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(isolated_environment.stat().st_mode) == 0o1777
    assert stat.S_IMODE((isolated_environment / "config.toml").stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_config_set_creates_a_missing_directory_private(
    run_cli, isolated_environment: Path
) -> None:
    assert not isolated_environment.exists()
    assert run_cli("config", "set", "default_provider", "runware").exit_code == 0
    assert stat.S_IMODE(isolated_environment.stat().st_mode) == 0o700


# A config a person wrote: comments (own line and trailing), blank lines, a table kling does
# not know, key order. Only the line a command changes may differ afterwards.
HAND_WRITTEN = """\
# my kling settings
default_provider = "runware"   # the cheap one

# keys below
[providers.runware]
# the EU endpoint
base_url = "https://eu.runware.example/v1"
api_key = "rw-0123456789abcdef"

[team.notes]
# not kling's, kept as it is
owner = "ops"
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    import difflib

    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


@pytest.mark.parametrize(
    ("args", "stdin", "removed", "added"),
    [
        (
            ["config", "set", "providers.runware.base_url", "https://us.runware.example/v1"],
            None,
            ['base_url = "https://eu.runware.example/v1"'],
            ['base_url = "https://us.runware.example/v1"'],
        ),
        (
            ["config", "unset", "default_provider"],
            None,
            ['default_provider = "runware"   # the cheap one'],
            [],
        ),
        (
            ["config", "set-key", "runware", "--stdin"],
            "rw-fedcba9876543210\n",
            ['api_key = "rw-0123456789abcdef"'],
            ['api_key = "rw-fedcba9876543210"'],
        ),
    ],
)
def test_config_commands_keep_the_files_comments_and_layout(
    run_cli,
    isolated_environment: Path,
    args: list[str],
    stdin: str | None,
    removed: list[str],
    added: list[str],
) -> None:
    isolated_environment.mkdir(parents=True)
    path = isolated_environment / "config.toml"
    path.write_text(HAND_WRITTEN)
    path.chmod(0o600)
    result = run_cli(*args, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert _changed_lines(HAND_WRITTEN, path.read_text()) == (removed, added)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_provider_table_goes_after_the_others_and_the_rest_stays(
    run_cli, isolated_environment: Path
) -> None:
    isolated_environment.mkdir(parents=True)
    path = isolated_environment / "config.toml"
    path.write_text(HAND_WRITTEN)
    path.chmod(0o600)
    result = run_cli("config", "set-key", "wavespeed", "--stdin", stdin="ws-0123456789abcdef\n")
    assert result.exit_code == 0, result.stderr
    assert _changed_lines(HAND_WRITTEN, path.read_text()) == (
        [],
        ["[providers.wavespeed]", 'api_key = "ws-0123456789abcdef"', ""],
    )
    # Removing it again gives the file back as it was, byte for byte.
    assert run_cli("config", "unset", "providers.wavespeed.api_key").exit_code == 0
    assert path.read_text() == HAND_WRITTEN
