"""Looking at saved images without leaving kling: `--open` (the system's viewer), `--reveal`
(the file manager), shared by `generate`, `status`, `kling open` and `kling jobs show`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord


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
