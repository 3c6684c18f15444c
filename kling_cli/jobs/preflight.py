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


# A file name's limit on the common file systems (ext4, APFS, NTFS), in bytes, and what the
# download adds to a name for its temporary file (`.NAME.PID.part`).
NAME_MAX_BYTES = 255
# The longest name written for an image: `.STEM-9999.jpeg.json.PID.part` (its sidecar's
# temporary file).
PART_OVERHEAD_BYTES = len(".") + len("-9999.jpeg") + len(".json") + len(".4194304.part")


def check_names(options: JobOptions, request: GenerationRequest) -> None:
    """The `--name` template renders for every image of the job, and each name (with its
    temporary download suffix) fits the file system's limit in bytes."""
    from kling_cli.naming import Naming, check_template

    template = check_template(options.name_template)
    naming = Naming(
        template,
        "000000-000000",
        "provider",
        request.prompt,
        request.aspect_ratio,
        request.resolution,
        item_id=options.item_id,
    )
    render = naming.stem_for()
    for index in range(1, request.num_images + 1):
        try:
            stem = render("0" * 36, index, request.num_images)
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise InvalidRequestError(
                f"--name {template!r} cannot be rendered ({exc}); use placeholders such as "
                "{slug}, {index} or {index:02d}."
            ) from None
        longest = len(stem.encode()) + PART_OVERHEAD_BYTES
        if longest > NAME_MAX_BYTES:
            raise InvalidRequestError(
                f"--name {template!r} gives file names of {longest} bytes with their "
                f"temporary suffix; the file system allows {NAME_MAX_BYTES}."
            )


def check_output_dir(directory: Path) -> None:
    """`-o` must be a directory kling can create and write in. Proved by doing it: the
    directory is created and a file written in it; what this check created is removed again
    (a `--no-wait` run leaves no empty folder behind)."""
    shown = str(directory)
    missing: list[Path] = []
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            where = "is" if parent == directory else f"is under {parent}, which is"
            raise InvalidRequestError(
                f"--output-dir {shown} {where} a file, not a directory; choose a directory."
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
            f"--output-dir {shown} cannot be written: {exc.strerror or exc}; nothing was submitted."
        ) from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()
