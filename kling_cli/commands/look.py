"""Looking at saved images without leaving kling: `--open` (the system's viewer), `--reveal`
(the file manager) and `--preview` (inline in the terminal), shared by `generate`, `status`,
`kling open` and `kling jobs show`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord
    from kling_cli.ui import Output


LAUNCH_GRACE_SECONDS = 1.0  # a launcher that fails says so at once; one still running is the viewer


def launch_saved(output: Output, paths: list[Path], *, open_images: bool, reveal: bool) -> None:
    """--open and --reveal, through the system's launcher (xdg-open, open, start).

    A launcher that cannot start a viewer (no display, none installed, none set up for the
    type) is one warning naming why, never the exit code, as with `--preview`."""
    targets = [(path, False) for path in paths] if open_images else []
    if reveal and paths:
        # One folder holds them all: show it once, with the first image selected.
        targets.append((paths[0], True))
    if not targets:
        return
    if not _xdg():
        for path, locate in targets:
            typer.launch(str(path), locate=locate)
        return
    failure = _launch_xdg(targets)
    if failure:
        what = "the folder" if all(locate for _, locate in targets) else "the images"
        output.warn(f"Could not open {what}: {failure}. The paths are printed above.")


def _xdg() -> bool:
    """Linux and the BSDs open files through xdg-open (freedesktop.org's xdg-utils)."""
    return sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def _launch_xdg(targets: list[tuple[Path, bool]]) -> str | None:
    """Runs xdg-open once per target, all at once, and waits up to LAUNCH_GRACE_SECONDS for
    any to fail; returns the first reason, or None. Its stderr goes to a file, not a pipe: a
    viewer it starts inherits it and must not die of a closed pipe once kling has exited."""
    import contextlib
    import shutil
    import subprocess
    import tempfile
    import time

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    launcher = shutil.which("xdg-open")
    if launcher is None:
        return "xdg-open is not installed (Debian and Ubuntu: the xdg-utils package)"
    with contextlib.ExitStack() as files:
        started = []
        for path, locate in targets:
            errors = files.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(
                [launcher, str(path.parent if locate else path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
            started.append((process, errors))
        deadline = time.monotonic() + LAUNCH_GRACE_SECONDS
        for process, errors in started:
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue  # still running: the viewer itself, or a launcher waiting on it
            if code:
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip().splitlines()
                return _last_words(said[-1]) if said else f"xdg-open exited with {code}"
    return None


def _last_words(line: str) -> str:
    """A launcher's last stderr line, printable and short, saying who said it."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in line)[:200]
    return shown if shown.startswith("xdg-open") else f"xdg-open: {shown}"


def images_on_disk(job: JobRecord) -> list[Path]:
    """The job's images that are on disk, as the journal recorded them, in task order."""
    from kling_cli.jobs.views import recorded_files

    paths = [Path(file["path"]) for file in recorded_files(job)]
    return [path for path in paths if path.is_file()]


PREVIEW_WIDTH = 48  # terminal cells: a thumbnail beside the path, not a full-screen image


def preview_saved(output: Output, paths: list[Path]) -> None:
    """--preview: each image inline in the terminal, through textual-image (Sixel or Kitty's
    graphics protocol where the terminal answers that it has one, coloured half blocks
    otherwise). Only on a terminal: never with --json, never into a pipe or a log.

    textual-image asks the terminal which protocol it speaks when it is imported, by writing
    a query to stdout and reading the answer from stdin; so the preview needs stdin and stdout
    to be that terminal too, and the import happens here, only when --preview is given."""
    if output.json_mode or not paths or not _is_terminal(sys.stderr):
        return
    if not (_is_terminal(sys.stdin) and _is_terminal(sys.stdout)):
        output.note(
            "--preview: stdin or stdout is not the terminal, so it cannot be asked how it "
            "shows images; no preview."
        )
        return
    refusal = _cannot_draw()
    if refusal:
        output.note(f"--preview: {refusal}; no preview.")
        return
    try:
        _draw(output, paths)
    except Exception as exc:
        # A look at the images must never turn a finished job into a failure.
        output.warn(f"--preview failed ({type(exc).__name__}: {exc}); the images are saved.")


def _cannot_draw() -> str | None:
    """Why this terminal cannot be drawn on, asked nothing: a `dumb` one would print the
    capability query as text, and one of 0 columns or rows (a pty nobody sized) gives
    textual-image nothing to fit the image to."""
    if os.environ.get("TERM", "") == "dumb":
        return "TERM is dumb"
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError):
        return "the terminal does not say its size"
    if size.columns == 0 or size.lines == 0:
        return f"the terminal says its size is {size.columns}x{size.lines}"
    return None


def _draw(output: Output, paths: list[Path]) -> None:
    from textual_image.renderable import Image

    console = output.stderr
    for path in paths:
        try:
            picture = Image(path, width=min(PREVIEW_WIDTH, console.width), height="auto")
        except OSError:
            continue  # not decodable: its path is printed already
        console.print(picture)
        console.print(f"  {path}", markup=False, highlight=False)


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False
