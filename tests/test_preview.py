"""`--preview` through a real pseudo-terminal that answers as a terminal does: textual-image asks
which graphics protocol it speaks (a DA1 query for Sixel, a Kitty graphics query), and the
images come back in the protocol it advertised; with --json, or into a pipe, nothing is asked
and no graphics sequence is written."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.test_entry_point import kling_command

DA1_QUERY = b"\x1b[c"
SIXEL_IMAGE = re.compile(rb"\x1bP[0-9;]*q")  # a DCS that starts sixel data
KITTY_MESSAGE = re.compile(rb"\x1b_G([^;\x1b]*)(?:;[^\x1b]*)?\x1b\\")  # keys, then any payload
KITTY_PLACEHOLDER = "\U0010eeee".encode()  # Kitty's Unicode placeholder for an image cell
SIXEL_TERMINAL = b"\x1b[?62;4;22c"  # VT220-level, 4: sixel graphics
PLAIN_TERMINAL = b"\x1b[?62;22c"


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_EMULATOR_LATENCY", "0")


def in_terminal(*args: str, answers_da1: bytes, speaks_kitty: bool) -> tuple[int, bytes]:
    """Run kling with stdin, stdout and stderr on a pty, answering the terminal queries it
    sends as a terminal with these abilities would; return the exit code and all it wrote."""
    controller, terminal = pty.openpty()
    # 40 rows, 100 columns, 10x20-pixel cells: no cell-size query needed.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 1000, 800))
    process = subprocess.Popen(
        [*kling_command(), *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"},
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    answered_da1 = answered_kitty = 0
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the other side closed: the process is done
                    break
                if not chunk:
                    break
                seen += chunk
                # Answer every query not answered yet, at once: textual-image waits 0.1 s.
                for _ in range(seen.count(DA1_QUERY) - answered_da1):
                    os.write(controller, answers_da1)
                    answered_da1 += 1
                kitty = [m for m in KITTY_MESSAGE.finditer(seen) if b"a=q" in m.group(1)]
                for match in kitty[answered_kitty:] if speaks_kitty else []:
                    ident = re.search(rb"i=(\d+)", match.group(1))
                    assert ident is not None
                    os.write(controller, b"\x1b_Gi=" + ident.group(1) + b";OK\x1b\\")
                    answered_kitty += 1
            elif process.poll() is not None:
                break
        return process.wait(timeout=30), seen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def test_a_sixel_terminal_gets_the_images_as_sixels() -> None:
    code, seen = in_terminal(
        "generate", "a red fox", "--emulate", "-n", "2", "--preview",
        answers_da1=SIXEL_TERMINAL, speaks_kitty=False,
    )  # fmt: skip
    assert code == 0, seen.decode(errors="replace")
    assert DA1_QUERY in seen  # it asked
    assert len(SIXEL_IMAGE.findall(seen)) == 2, seen[:2000]
    assert b".png" in seen


def test_a_kitty_terminal_gets_the_images_through_the_graphics_protocol() -> None:
    code, seen = in_terminal(
        "generate", "a red fox", "--emulate", "--preview",
        answers_da1=PLAIN_TERMINAL, speaks_kitty=True,
    )  # fmt: skip
    assert code == 0, seen.decode(errors="replace")
    assert not SIXEL_IMAGE.search(seen)
    transmitted = [m for m in KITTY_MESSAGE.finditer(seen) if b"a=q" not in m.group(1)]
    # The PNG sent (f=100), then a virtual placement (a=p, U=1) its placeholders show.
    assert any(b"f=100" in m.group(1) for m in transmitted), seen[:2000]
    assert any(b"a=p" in m.group(1) and b"U=1" in m.group(1) for m in transmitted)
    assert KITTY_PLACEHOLDER in seen


def test_json_asks_nothing_and_writes_no_graphics() -> None:
    code, seen = in_terminal(
        "generate", "a red fox", "--emulate", "--preview", "--json",
        answers_da1=SIXEL_TERMINAL, speaks_kitty=True,
    )  # fmt: skip
    assert code == 0, seen.decode(errors="replace")
    assert DA1_QUERY not in seen and b"\x1b_G" not in seen and b"\x1bP" not in seen
    assert json.loads(seen[seen.index(b"{") :].decode())["status"] == "success"


def test_a_pipe_gets_no_preview(tmp_path: Path) -> None:
    done = subprocess.run(
        [*kling_command(), "generate", "a red fox", "--emulate", "--preview"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for stream in (done.stdout, done.stderr):
        assert b"\x1b" not in stream
    assert Path(done.stdout.decode().strip()).is_file()


def test_jobs_show_and_status_preview_the_recorded_images() -> None:
    made = subprocess.run(
        [*kling_command(), "generate", "a red fox", "--emulate", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    job_id = json.loads(made.stdout)["job"]["id"]
    for command in (["jobs", "show", job_id], ["status", job_id]):
        code, seen = in_terminal(
            *command, "--preview", answers_da1=SIXEL_TERMINAL, speaks_kitty=False
        )
        assert code == 0, seen.decode(errors="replace")
        assert len(SIXEL_IMAGE.findall(seen)) == 1, command


@pytest.mark.parametrize("preview", [[], ["--preview"]])
def test_textual_image_is_loaded_only_to_draw(preview: list[str]) -> None:
    """Without --preview, or with it where nothing can be drawn (a pipe), the library is not
    even imported: a run pays nothing for it."""
    script = (
        "import sys; from kling_cli.cli import main; "
        f"code = main(['generate', 'a red fox', '--emulate', *{preview!r}]); "
        "print('textual_image' in sys.modules, file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "False"
