"""`--help` reads as words: values named for what they hold, no Python types, every default
shown as typed, nothing swallowed as markup."""

from __future__ import annotations

import re

import pytest

from tests.test_cli_commands import every_command_path

PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\])>")


@pytest.mark.parametrize("path", [[], *every_command_path()], ids=lambda p: " ".join(p) or "kling")
def test_help_names_values_in_words(run_cli, path: list[str]) -> None:
    result = run_cli(*path, "--help")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert not PYTHON_TYPES.search(text), PYTHON_TYPES.search(text)
    assert not re.search(r"\{[a-z_]+\}\s*$", text.splitlines()[1] if text.strip() else "")
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "[[" not in usage, usage
    assert not re.search(r"\s\.\s*│", text), "a default swallowed as markup"
    assert not re.search(r"default: \d+\.0\]", text)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            ["generate"],
            [
                "Usage: kling generate [OPTIONS] PROMPT",
                "URL|FILE",
                "[default: 600]",
                "[default: png]",
                "[default: auto with references, else 1:1]",
                "print the job id",
            ],
        ),
        (["batch"], ["Usage: kling batch [OPTIONS] FILE", "[default: 8, fewer at", "K/N", "USD"]),
        (["status"], ["Usage: kling status [OPTIONS] [ID]", "SECONDS"]),
    ],
    ids=["generate", "batch", "status"],
)
def test_help_shows_words_and_defaults(run_cli, path: list[str], expected: list[str]) -> None:
    text = " ".join(run_cli(*path, "--help").stdout.replace("│", " ").split())
    for words in expected:
        assert " ".join(words.split()) in text, words
