"""Looking at what a job made: `kling jobs show` reads as a record, `kling open [ID]` and
`status --download --open/--reveal` hand each image to the system's launcher (patched at the
launcher: a test must not open windows; it is the only thing replaced)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import Emulator
from tests.conftest import Launched
from tests.test_entry_point import run


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_EMULATOR_LATENCY", "0")


def test_jobs_show_prints_an_aligned_record_with_lists_as_lists(tmp_path: Path) -> None:
    refs = []
    for name in ("hero.png", "jacket.png"):
        Image.new("RGB", (512, 512), (90, 40, 200)).save(name)
        refs += ["-r", name]
    made = run("generate", "@image_1 wearing @image_2", *refs, "--emulate", "-n", "2", "--json")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    shown = run("jobs", "show", body["job"]["id"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "references:" in lines
    at = lines.index("references:")
    assert lines[at + 1 : at + 3] == ["  - hero.png", "  - jacket.png"]
    # No Python repr anywhere: no tuple or list brackets, no quotes around values.
    assert not re.search(r"[\[(]'|'[\])]", shown.stdout)
    # Every "label: value" line starts its value in the same column.
    columns = {len(m.group(1)) for m in map(re.compile(r"^(\w[\w ]*:\s+)\S").match, lines) if m}
    assert len(columns) == 1, shown.stdout
    assert "prompt:" in shown.stdout and "aspect ratio:" in shown.stdout
    # The images as the user would write their paths (relative to where kling ran).
    for file in body["files"]:
        assert any(line.strip().startswith(file["path"] + "  ") for line in lines)
        assert not file["path"].startswith("/")


def test_kling_open_opens_the_latest_jobs_images_once_each(run_cli, launched: Launched) -> None:
    nothing = run_cli("open")
    assert nothing.exit_code == 2 and "No jobs yet" in nothing.stderr
    first = run_cli("generate", "a red fox", "--emulate", "--json")
    second = run_cli("generate", "an owl", "--emulate", "-n", "3")
    assert first.exit_code == second.exit_code == 0
    latest = second.stdout.split()
    assert launched() == []
    opened = run_cli("open")
    assert opened.exit_code == 0, opened.stderr
    assert opened.stderr == ""
    assert sorted(launched()) == sorted(latest)  # once each
    earlier = first.json()
    assert isinstance(earlier, dict)
    assert run_cli("open", earlier["job"]["id"], "--reveal").exit_code == 0
    assert launched() == [str(Path(earlier["files"][0]["path"]).parent)]


def test_kling_open_of_a_job_without_images_says_how_to_fetch_them(
    run_cli, launched: Launched, use_emulator: Emulator
) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "runware", "--no-wait")
    job_id = submitted.stdout.strip()
    result = run_cli("open", job_id)
    assert result.exit_code == 2
    assert f"kling status {job_id} --download" in result.stderr
    assert launched() == []


def test_status_download_open_and_reveal_launch_each_image(
    run_cli, launched: Launched, use_emulator: Emulator
) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "runware", "-n", "2", "--no-wait")
    job_id = submitted.stdout.strip()
    done = run_cli("status", job_id, "--wait", "--download", "--open", "--reveal", "--json")
    assert done.exit_code == 0, done.stderr
    body = done.json()
    assert isinstance(body, dict)
    paths = [file["path"] for file in body["files"]]
    assert len(paths) == 2 and all(Path(path).is_file() for path in paths)
    folder = str(Path(paths[0]).parent)
    assert sorted(launched()) == sorted([*paths, folder])


def test_kling_open_without_a_display_warns_once_and_still_prints_the_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    made = run("generate", "a red fox", "--emulate", "-n", "2")
    assert made.returncode == 0, made.stderr
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened = run("open")
    assert opened.returncode == 0  # as with --preview: a viewer that cannot start is a warning
    assert sorted(opened.stdout.split()) == sorted(made.stdout.split())
    assert opened.stderr.count("warning:") == 1, opened.stderr
    assert "Could not open the images: there is no display" in opened.stderr


def test_a_launcher_that_fails_is_one_warning_in_its_own_words_not_its_noise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    made = run("generate", "a red fox", "--emulate")
    assert made.returncode == 0, made.stderr
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "xdg-open"
    # What Debian's xdg-open prints on a machine with no viewer set up for PNG.
    launcher.write_text(
        "#!/bin/sh\n"
        'echo "/usr/bin/xdg-open: 882: www-browser: not found" >&2\n'
        "echo \"xdg-open: no method available for opening '$1'\" >&2\n"
        "exit 3\n"
    )
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    revealed = run("open", "--reveal")
    assert revealed.returncode == 0
    assert revealed.stdout.strip() == made.stdout.strip()
    assert revealed.stderr.count("\n") == 1, revealed.stderr  # one line, not the launcher's
    assert "Could not open the folder: xdg-open: no method available for opening" in (
        revealed.stderr
    )
