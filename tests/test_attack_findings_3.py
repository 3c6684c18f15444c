"""Third round of breaks, against #15's features (cross-format variants, `--report`, `kling
open`, `jobs show`), each reproduced on the installed `kling` in real processes against the
emulator, with real signals and real file systems."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from tests.test_entry_point import run
from tests.test_money_rule import journal_rows, read_only_dir, start, submits, tmpfs

__all__ = ["read_only_dir", "tmpfs"]  # fixtures, used by name


@pytest.mark.parametrize("ratios", ["16:9", "16:9,1:1"])
def test_a_report_path_that_cannot_be_written_is_refused_before_paying(
    use_emulator: Emulator, read_only_dir: Path, ratios: str
) -> None:
    """`kling generate fox -a 16:9,1:1 --report RO/r.html --json`, RO on a read-only file
    system: both jobs were paid, then the gallery's write raised, and the run ended with
    exit 1 "Unexpected OSError ... This is a bug", `job: null` and `files: []`: the images
    saved and paid for named nowhere. The report's folder is known before paying."""
    result = run(
        "generate", "a fox", "-p", "runware", "-a", ratios, "--report",
        str(read_only_dir / "r.html"), "--json",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    body = json.loads(result.stdout)
    assert (
        "--report" in body["error"]["message"]
        and "nothing was submitted" in (body["error"]["message"])
    )
    assert submits(use_emulator) == 0


def test_a_report_path_that_is_a_directory_is_refused_before_paying(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    Path("out/report.html").mkdir(parents=True)
    result = run("generate", "a fox", "-p", "runware", "-a", "16:9,1:1", "-o", "out")
    assert result.returncode == 2, result.stderr
    assert "is a directory" in result.stderr
    assert submits(use_emulator) == 0


def test_a_full_disk_for_the_report_loses_no_paid_job(use_emulator: Emulator, tmpfs: Path) -> None:
    """The report's folder fills up after the check (a shared CI disk): the gallery cannot be
    written, and the run must still print the one envelope naming both paid jobs."""
    _fill(tmpfs)
    result = run(
        "generate", "a fox", "-p", "runware", "-a", "16:9,1:1", "-o", "out", "--report",
        str(tmpfs / "r.html"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    body = json.loads(result.stdout)
    assert body["report"] is None
    assert [v["job"]["state"] for v in body["variants"]] == ["succeeded", "succeeded"]
    assert len(body["files"]) == 2 and all(Path(f["path"]).exists() for f in body["files"])
    assert "could not be written" in result.stderr
    assert not list(tmpfs.glob(".r.html.*.part"))


def _fill(directory: Path) -> None:
    """Write until the file system is full."""
    try:
        with (directory / "fill").open("wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError:
        pass


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_report_is_written_still_names_every_paid_job(
    use_emulator: Emulator, isolated_environment: Path, signum: int, code: int
) -> None:
    """`kling generate fox -a all -n 9 -R 2k --json`, stopped by SIGTERM after the eighth job
    saved its images, while the gallery's 72 thumbnails were made: kling exited 130 (not
    143) and printed nothing at all, neither on stdout nor stderr (typer turns a
    KeyboardInterrupt that leaves a command into a silent exit 130). Eight paid jobs, named
    nowhere."""
    process = start(
        "generate", "a fox", "-p", "runware", "-a", "all", "-n", "9", "-R", "2k", "-o", "out",
        "--json",
    )  # fmt: skip
    assert process.stderr is not None
    seen, saved = "", 0
    deadline = time.monotonic() + 120
    while saved < 72 and time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        saved += " saved " in line
        if not line:
            break
    assert saved == 72, seen[-2000:]
    time.sleep(0.05)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, (out[-500:], err[-1500:])
    body = json.loads(out)  # one object
    assert body["exit_code"] == code and body["error"]["code"] == "interrupted"
    rows = journal_rows(isolated_environment)
    job_ids = {v["job"]["id"] for v in body["variants"]}
    assert len(job_ids) == 8 and job_ids == {row["id"] for row in rows}
    assert all(row["task_id"] for row in rows)
    for job_id in job_ids:
        status = run("status", job_id, "--json")
        assert status.returncode == 0, status.stdout


def test_a_huge_ratio_list_is_refused_in_one_short_sentence(use_emulator: Emulator) -> None:
    """`-a 16:9,16:9,...` (5,000 times, a script's loop gone wrong): refused, but the error
    pasted the whole 25,000-character list back, twice over the terminal's scrollback."""
    result = run("generate", "a fox", "-p", "runware", "-a", ",".join(["16:9"] * 5000), "--json")
    assert result.returncode == 2
    message = json.loads(result.stdout)["error"]["message"]
    assert "16:9 twice" in message and len(message) < 200
    assert submits(use_emulator) == 0


def _on_a_silent_terminal(*args: str, term: str, size: tuple[int, int] | None) -> tuple[int, bytes]:
    """kling with stdin, stdout and stderr on a pty that answers nothing (a terminal that
    ignores queries), of `size` (rows, columns), or unsized as a fresh pty is."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import termios

    from tests.test_entry_point import kling_command

    controller, terminal = pty.openpty()
    if size is not None:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    process = subprocess.Popen(
        [*kling_command(), *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": term, "KLING_EMULATOR_LATENCY": "0"},
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=30), seen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def test_preview_on_an_unsized_terminal_does_not_fail_the_paid_job() -> None:
    """`kling generate fox --preview` on a pty nobody gave a size (0x0: `docker exec -t`
    before its resize, `script`, expect, an IDE's run console): the job succeeded and its
    path was printed, then "Error: Unexpected ZeroDivisionError: division by zero ... This
    is a bug", exit 1 (textual-image divides the pixel size by the columns)."""
    code, seen = _on_a_silent_terminal(
        "generate", "a fox", "--emulate", "--preview", term="xterm", size=None
    )
    assert code == 0, seen[-600:]
    assert b"ZeroDivisionError" not in seen and b"no preview" in seen


def test_preview_on_a_dumb_terminal_writes_no_query() -> None:
    """TERM=dumb (Emacs' shell, some CI consoles): the preview wrote the DA1 and Kitty
    queries, which such a terminal prints as garbage; and, unsized, failed as above."""
    code, seen = _on_a_silent_terminal(
        "generate", "a fox", "--emulate", "--preview", term="dumb", size=(24, 80)
    )
    assert code == 0, seen[-600:]
    assert b"\x1b[c" not in seen and b"\x1b_G" not in seen
    assert b"no preview" in seen
