"""The completion scripts shipped in completions/ are the ones typer generates for `kling`
today, and the app answers completion requests through the installed entry point."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("shell", sorted(FILE_NAMES))
def test_kling_completion_prints_the_shipped_script(shell: str) -> None:
    result = subprocess.run(
        [*kling_command(), "completion", shell], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (COMPLETIONS / FILE_NAMES[shell]).read_text()


def bash_complete(line: str) -> list[str]:
    """What TAB offers after `line` in a real bash that sourced `kling completion bash`."""
    kling = kling_command()[0]
    script = f"""
        eval "$({kling} completion bash)"
        COMP_WORDS=({line})
        [[ "{line}" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        _kling_completion kling
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = {**os.environ, "PATH": f"{Path(kling).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    return [word for word in result.stdout.splitlines() if word]


def test_bash_completes_provider_ids_ratios_and_resolutions() -> None:
    from kling_cli.limits import ASPECT_RATIOS
    from kling_cli.providers.catalog import CATALOG

    assert bash_complete("kling generate -p ") == list(CATALOG)
    assert bash_complete("kling generate -p wa") == ["wavespeed"]
    assert bash_complete("kling batch m.jsonl --provider ") == list(CATALOG)
    assert bash_complete("kling generate x -a ") == list(ASPECT_RATIOS)
    assert len(ASPECT_RATIOS) == 9
    assert bash_complete("kling generate x -R ") == ["1k", "2k"]


def test_bash_completes_job_ids_for_status_and_jobs_show(tmp_path: Path) -> None:
    done = subprocess.run(
        [*kling_command(), "generate", "a red fox", "--emulate", "--json", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KLING_EMULATOR_LATENCY": "0"},
    )
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["job"]["id"]
    assert bash_complete("kling status ") == [job_id]
    assert bash_complete(f"kling jobs show {job_id[:4]}") == [job_id]
