"""Third round of breaks, against #15's features (cross-format variants, `--report`, `kling
open`, `jobs show`), each reproduced on the installed `kling` in real processes against the
emulator, with real signals and real file systems."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run
from tests.test_money_rule import (
    journal_rows,
    read_only_dir,
    start,
    submits,
    tmpfs,
    wait_for_line,
)

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


def test_a_signal_as_the_next_ratio_starts_leaves_no_phantom_job(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """SIGTERM as `2/3` is announced (kill at the moment between two ratios): about one
    run in two left a job recorded `submitting` with no task, forever, though nothing was
    sent for it, and named in no output (the journal row was written, then the signal came
    before the loop that records how a job ends). Eight tries, a few milliseconds apart,
    make the race likely."""
    before: set[str] = set()
    for attempt, delay in enumerate((0, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.01)):
        process = start(
            "generate", "a fox", "-p", "unifically", "-a", "16:9,1:1,9:16", "-o", "out",
            "--json",
        )  # fmt: skip
        wait_for_line(process, "(2/3)")
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 143, err[-800:]
        body = json.loads(out)
        named = {v["job"]["id"] for v in body["variants"] if v["job"]}
        # 16:9 was paid for: the run's error must not say that nothing was submitted.
        assert "before anything was submitted" not in body["error"]["message"]
        rows = journal_rows(isolated_environment)
        assert not [row["id"] for row in rows if row["state"] == "submitting"], attempt
        new = [row for row in rows if row["id"] not in before]
        assert not [row["id"] for row in new if row["id"] not in named], attempt
        before |= {row["id"] for row in rows}
    assert submits(use_emulator, "unifically") == 8


def test_open_of_a_job_that_never_made_an_image_does_not_send_the_user_to_status(
    use_emulator: Emulator,
) -> None:
    """`kling open ID` of a ratio the provider failed: "fetch its images with: kling status
    ID --download", which has nothing to fetch either."""
    use_emulator.inject("unifically", Fault(kind="task_failure"))
    made = run("generate", "a fox", "-p", "unifically", "-a", "16:9,1:1", "--json")
    assert made.returncode == 8
    failed = next(v["job"]["id"] for v in json.loads(made.stdout)["variants"] if v["exit_code"])
    opened = run("open", failed)
    assert opened.returncode == 2
    assert "no image to open or to fetch" in opened.stderr and "kling status" not in opened.stderr
    assert "(its state is failed)" in opened.stderr  # not "it is failed"


def test_kling_report_to_a_path_it_cannot_write_is_a_sentence_not_a_bug(
    use_emulator: Emulator, read_only_dir: Path
) -> None:
    """`kling report DIR -o RO/x.html`, `-o DIR` (a folder) or `--summary-md RO/s.md`: exit 1,
    "Unexpected OSError ... This is a bug in kling-cli"."""
    manifest = Path("m.jsonl")
    manifest.write_text(json.dumps({"id": "a", "prompt": "a fox"}) + "\n")
    assert run("batch", str(manifest), "-p", "runware", "-o", "b").returncode == 0
    for args in (
        ["-o", str(read_only_dir / "x.html")],
        ["-o", "b"],
        ["-o", "r.html", "--summary-md", str(read_only_dir / "s.md")],
    ):
        result = run("report", "b", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "bug" not in result.stderr
