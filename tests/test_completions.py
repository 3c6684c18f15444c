"""The completion scripts shipped in completions/ are the ones typer generates for `kling`
today, and the app answers completion requests through the installed entry point."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# typer has no public function that renders the script for a named shell (`--show-completion`
# detects the running shell); pyproject pins typer's minor versions, so this stays stable.
from typer._completion_shared import get_completion_script

from kling_cli.cli import COMMANDS
from tests.test_entry_point import kling_command

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"
FILE_NAMES = {"bash": "kling.bash", "zsh": "_kling", "fish": "kling.fish"}


def render(shell: str) -> str:
    return (
        get_completion_script(prog_name="kling", complete_var="_KLING_COMPLETE", shell=shell) + "\n"
    )


@pytest.mark.parametrize("shell", sorted(FILE_NAMES))
def test_completion_scripts_are_up_to_date(shell: str) -> None:
    shipped = (COMPLETIONS / FILE_NAMES[shell]).read_text()
    assert shipped == render(shell), (
        f"completions/{FILE_NAMES[shell]} is stale: regenerate it with "
        "`python -m tests.test_completions`"
    )


def test_bash_completion_completes_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {
            **os.environ,
            "_KLING_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        result = subprocess.run(
            kling_command(), env=env, capture_output=True, text=True, timeout=30
        )
        return result.stdout.split()

    assert complete("kling gen", 1) == ["generate"]
    assert complete("kling ", 1) == list(COMMANDS)
    assert complete("kling config l", 2) == ["list"]
    assert {"--ref", "--resolution"} <= set(complete("kling generate --re", 2))


if __name__ == "__main__":
    for shell, name in FILE_NAMES.items():
        (COMPLETIONS / name).write_text(render(shell))
