"""What can be known before paying is checked before paying.

Each check raises `InvalidRequestError` (exit 2) or `JournalError` (exit 4) with one sentence
naming the value and what is allowed, and no request is sent.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobOptions
    from kling_cli.journal import Journal
    from kling_cli.request import GenerationRequest


def preflight(
    options: JobOptions,
    request: GenerationRequest,
    *,
    journal: Journal | None = None,
    emulated: bool = False,
) -> None:
    """Check the output directory (a directory, or creatable, and writable), the file names
    the job's `--name` template gives for every image, and that the journal can record the
    job. Creates the output directory (the run would)."""
    if emulated and not options.wait:
        raise InvalidRequestError(
            "--no-wait cannot be used with --emulate: the built-in emulator stops when this "
            "command exits, so the job could never be fetched."
        )
    check_names(options, request)
    check_output_dir(options.output_dir)
    if journal is not None:
        journal.check_writable()


def check_names(options: JobOptions, request: GenerationRequest) -> None:
    """The `--name` template renders for every image of the job, and each name (with the
    suffixes kling adds) fits the file system's limit in bytes (`naming.check_names`)."""
    from kling_cli.naming import check_names as check_rendered_names
    from kling_cli.naming import check_template

    check_template(options.name_template)
    check_rendered_names(
        options.name_template,
        count=request.num_images,
        prompt=request.prompt,
        aspect=request.aspect_ratio,
        resolution=request.resolution,
        item_id=options.item_id,
    )


def existing_outputs(options: JobOptions, request: GenerationRequest) -> list[Path] | None:
    """`--skip-existing`: the images this job would write, when all of them exist already
    (then nothing is submitted). The template must not depend on the run (`{task}`, ...)."""
    from kling_cli.naming import Naming, check_skippable, check_template
    from kling_cli.naming import existing_outputs as find_existing

    check_template(options.name_template)
    check_skippable(options.name_template)
    naming = Naming(
        options.name_template,
        "",
        "",
        request.prompt,
        request.aspect_ratio,
        request.resolution,
        item_id=options.item_id,
    )
    return find_existing(options.output_dir, naming, request.num_images)


def check_report_path(path: Path, *, option: str = "--report") -> None:
    """`--report PATH` (or a fan-out's default `OUTPUT_DIR/report.html`): the gallery is
    written after the jobs are paid for, so a path it cannot be written to is refused now."""
    if path.is_dir():
        raise InvalidRequestError(
            f"{option} {path} is a directory; give the file to write, such as "
            f"{path / 'report.html'}."
        )
    check_output_dir(path.parent, option=f"the folder of {option}")


def check_output_dir(directory: Path, *, option: str = "--output-dir") -> None:
    """`-o` must be a directory kling can create and write in. Proved by doing it: the
    directory is created and a file written in it; what this check created is removed again
    (a `--no-wait` run leaves no empty folder behind)."""
    shown = f"{option} {directory}"
    missing: list[Path] = []
    for parent in (directory, *directory.parents):
        if parent.is_symlink() and not parent.exists():
            where = "is" if parent == directory else f"is under {parent}, which is"
            raise InvalidRequestError(
                f"{shown} {where} a symbolic link to nothing (or a loop of "
                "links); choose a directory."
            )
        if parent.exists() and not parent.is_dir():
            where = "is" if parent == directory else f"is under {parent}, which is"
            raise InvalidRequestError(
                f"{shown} {where} a file, not a directory; choose a directory."
            )
        if parent.exists():
            break
        missing.append(parent)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".kling-probe-"):
            pass
    except OSError as exc:
        raise InvalidRequestError(
            f"{shown} cannot be written: {exc.strerror or exc}; nothing was submitted."
        ) from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()
