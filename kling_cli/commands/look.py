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


def launch_saved(paths: list[Path], *, open_images: bool, reveal: bool) -> None:
    """--open and --reveal, through the system's launcher (xdg-open, open, start)."""
    if open_images:
        for path in paths:
            typer.launch(str(path))
    if reveal and paths:
        # One folder holds them all: show it once, with the first image selected.
        typer.launch(str(paths[0]), locate=True)


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
