"""The installed `kling` command, run as a user would: a separate process, no terminal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import kling_cli


def kling_command() -> list[str]:
    """The console script next to this interpreter (installed by `pip install .`)."""
    script = Path(sys.executable).parent / "kling"
    if script.exists():
        return [str(script)]
    found = shutil.which("kling")
    assert found, "the `kling` entry point is not installed"
    return [found]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kling_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_help_and_version() -> None:
    help_result = run("--help")
    assert help_result.returncode == 0
    assert "generate" in help_result.stdout and "Exit codes" in help_result.stdout
    version = run("--version")
    assert version.stdout.strip() == f"kling-image-cli {kling_cli.__version__}"
    as_module = subprocess.run(
        [sys.executable, "-m", "kling_cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout == version.stdout


def test_help_lists_every_exit_code_the_readme_documents() -> None:
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {c for row in re.findall(r"^\| ([\d, ]+) \|", table, re.M) for c in row.split(", ")}
    assert {"0", "1", "8", "130", "143"} <= codes
    epilog = " ".join(run("--help", env={"COLUMNS": "400"}).stdout.split()).split("Exit codes:")[1]
    assert sorted(c for c in codes if not re.search(rf"\b{c}\b", epilog)) == []


def test_a_full_offline_generation(tmp_path: Path) -> None:
    result = run(
        "generate",
        "a red fox on a snowy ridge at dawn",
        "--emulate",
        "-a",
        "16:9",
        "-n",
        "2",
        "-o",
        str(tmp_path / "out"),
        "--preview",  # as the README's first command: off the terminal it draws nothing
        env={"KLING_EMULATOR_LATENCY": "0.3"},
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    paths = result.stdout.split()
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (1360, 768)
    # Not a terminal: plain progress lines on stderr, no spinner control codes.
    assert "submitted to Runware: task" in result.stderr
    assert "succeeded (success)" in result.stderr
    assert "\x1b[" not in result.stderr


def test_progress_lines_say_which_task_of_several_they_are_about(tmp_path: Path) -> None:
    # Unifically makes one image per task: -n 3 is three tasks whose events interleave.
    result = run(
        "generate", "a red fox", "--emulate", "-p", "unifically", "-n", "3",
        "-o", str(tmp_path), env={"KLING_EMULATOR_LATENCY": "0.3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    for number in (1, 2, 3):
        which = f"task {number}/3 "
        [submitted] = [line for line in lines if f"{which}submitted to Unifically: id " in line]
        task_id = submitted.rsplit(" ", 1)[1]
        assert any(f"{which}succeeded (completed)" in line for line in lines), lines
        [saved] = [line for line in lines if f"{which}saved " in line]
        assert task_id[:8] in Path(saved.rsplit(" ", 1)[1]).name
    # One task: nothing to tell apart.
    single = run(
        "generate", "a red fox", "--emulate", "-p", "unifically",
        "-o", str(tmp_path), env={"KLING_EMULATOR_LATENCY": "0.3"},
    )  # fmt: skip
    assert single.returncode == 0 and "task 1/1" not in single.stderr
    assert "submitted to Unifically: task " in single.stderr


def test_ctrl_c_while_waiting_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*kling_command(), "generate", "a red fox", "--emulate", "-o", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "KLING_EMULATOR_LATENCY": "30"},
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    line = ""
    while "submit" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    assert "submit" in line
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "Interrupted" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("provider", ["runware", "unifically", "fal"])
def test_standalone_emulator_serves_a_real_pipeline(tmp_path: Path, provider: str) -> None:
    server = subprocess.Popen(
        [*kling_command(), "emulate", "--port", "0", "--latency", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 20
        while not any("images" in line for line in banner) and time.monotonic() < deadline:
            banner.append(server.stdout.readline())
        [base_url] = [line.split()[1] for line in banner if line.split()[:1] == [provider]]
        env = {
            f"KLING_{provider.upper()}_BASE_URL": base_url,
            f"KLING_{provider.upper()}_API_KEY": "emulator-key",
            "KLING_CONFIG_DIR": str(tmp_path / "config"),
        }
        # Another host of the provider's (fal's REST upload host): the banner names its variable.
        for line in banner:
            words = line.split()
            if words and words[-1].startswith(f"(KLING_{provider.upper()}_"):
                env[words[-1].strip("()")] = words[-2]
        ref = tmp_path / "ref.png"
        Image.new("RGB", (600, 800), (200, 80, 40)).save(ref)
        result = run(
            "generate", "a red fox", "-r", str(ref), "-a", "1:1", "-p", provider,
            "-o", str(tmp_path / "out"), env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()).exists()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run kling with stderr on a pseudo-terminal: (exit code, what the terminal showed,
    stdout)."""
    import pty
    import select

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*kling_command(), *args],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm", **env},
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                seen += os.read(controller, 4096)
            except OSError:
                break
    stdout = process.communicate(timeout=10)[0].decode()
    os.close(controller)
    return process.returncode, seen.decode(errors="replace"), stdout


def test_on_a_terminal_a_spinner_shows_the_provider_status(tmp_path: Path) -> None:
    code, screen, stdout = on_a_terminal(
        ["generate", "a red fox", "--emulate", "-p", "unifically", "-o", str(tmp_path)],
        {"KLING_EMULATOR_LATENCY": "1.5"},
    )
    assert code == 0
    assert "Unifically: processing" in screen
    assert "0:00:0" in screen  # elapsed time next to the spinner
    assert "[  0." not in screen  # no plain progress lines on a terminal
    assert Path(stdout.strip()).exists()


def test_on_a_terminal_a_batch_shows_running_failed_images_and_spend(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(f'{{"id": "i{n}", "prompt": "fox {n}"}}\n' for n in range(4)))
    code, screen, _ = on_a_terminal(
        ["batch", str(manifest), "--emulate", "-p", "runware", "-j", "2", "-o", str(tmp_path)],
        {"KLING_EMULATOR_LATENCY": "1.0", "KLING_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert code == 0, screen
    assert "2 running · 0 failed · 0 images" in screen
    assert "· 4 images · $0.11 spent" in screen  # Runware reports $0.028 per image
    assert "[1/4]" not in screen  # no plain progress lines on a terminal
