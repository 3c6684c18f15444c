"""Output to a stream that cannot encode every character (a cp1252 console, a pipe on
Windows): the command's outcome never changes, characters are escaped instead."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_entry_point import kling_command

CP1252 = {"PYTHONIOENCODING": "cp1252"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*kling_command(), *args],
        capture_output=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **CP1252},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["generate", "a fox 🦊", "--emulate", "--name", "fox-🦊"], 0),
        (["generate", "a fox 🦊", "--emulate", "--name", "fox-🦊", "--json"], 0),
        (["generate", "a fox", "--emulate", "-r", "./🦊.png", "--json"], 2),
    ],
    ids=["paths", "json", "json error"],
)
def test_unencodable_output_never_changes_the_outcome(
    tmp_path: Path, args: list[str], code: int
) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr.decode("cp1252", "replace")
    stdout = result.stdout.decode("cp1252")
    stderr = result.stderr.decode("cp1252")
    assert "This is a bug" not in stderr
    if "--json" in args:
        body = json.loads(stdout)  # still valid JSON, with the exact text
        if code == 0:
            assert Path(body["files"][0]["path"]).name == "fox-🦊.png"
        else:
            assert "🦊.png" in body["error"]["message"]
    else:
        assert stdout.strip().endswith("fox-\\U0001f98a.png")
        assert (tmp_path / "kling-output" / "fox-🦊.png").exists()


def test_listings_survive_an_unencodable_prompt(tmp_path: Path) -> None:
    assert run("generate", "a fox 🦊", "--emulate", cwd=tmp_path).returncode == 0
    for args in (["jobs"], ["jobs", "--json"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr.decode("cp1252", "replace"))
