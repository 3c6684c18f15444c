"""Local reference images: inspected against the documented limits, then sent the way the
provider accepts them: inline (a data URI or raw base64), or uploaded by the engine through
the provider's own upload API."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from kling_cli.limits import (
    MAX_REFERENCE_ASPECT,
    MAX_REFERENCE_BYTES,
    MAX_REFERENCE_PIXELS,
    MIN_REFERENCE_SIDE,
    REFERENCE_FORMATS,
)

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
EXIF_ORIENTATION = 0x0112
# EXIF orientations 5-8 store the picture turned a quarter: its displayed width is the height.
ROTATED_ORIENTATIONS = (5, 6, 7, 8)


class ReferenceLimitError(ValueError):
    """A local reference that breaks a limit `--fit` would bring it within. `remedy` says
    what --fit would do; only a caller that has --fit (`kling generate`, not a batch
    manifest) offers it, through `suggesting_fit`."""

    def __init__(self, message: str, remedy: str) -> None:
        super().__init__(message)
        self.remedy = remedy

    def suggesting_fit(self) -> str:
        """The same sentence, with what --fit would do before its full stop."""
        return f"{str(self).removesuffix('.')} (--fit {self.remedy})."


def is_local(reference: str) -> bool:
    """A path rather than a URL (`C:\\x.png` has a one-letter scheme)."""
    scheme = urlsplit(reference).scheme
    return not scheme or len(scheme) == 1


@dataclass(frozen=True)
class LocalReference:
    path: Path
    format: str  # what the bytes are, whatever the extension says
    width: int  # as displayed: after the EXIF orientation is applied
    height: int
    size: int  # bytes
    mode: str = "RGB"  # Pillow's mode: CMYK, I;16, P, ...
    orientation: int = 1  # the EXIF orientation tag, 1 (upright) to 8

    def describe(self) -> str:
        return f"{self.path}: {self.format} {self.width}x{self.height}, {self.size:,} bytes"


def inspect_local_reference(reference: str) -> LocalReference:
    """Read a local file's real format, displayed size and mode with Pillow, without decoding
    its pixels. Raises ValueError, one sentence per broken rule (limits in `kling_cli.limits`)."""
    with open_regular_file(reference) as handle:
        info = _identify(reference, handle)
    check_limits(reference, info)
    return info


@contextmanager
def open_regular_file(reference: str) -> Iterator[BinaryIO]:
    """Open a local reference for reading, refusing anything that is not a regular file (a
    FIFO or a device would block or never end) with ValueError, before reading a byte."""
    path = Path(reference).expanduser()
    if not path.exists():
        raise ValueError(f"Reference {reference!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"Reference {reference!r} is a directory, not an image file.")
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError:
        raise ValueError(f"Reference {reference!r} cannot be read (permission denied).") from None
    except OSError as exc:
        raise ValueError(f"Reference {reference!r} cannot be opened ({exc.strerror}).") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(
            f"Reference {reference!r} is not a regular file (a pipe, device or socket); "
            "give an image file."
        )
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _identify(reference: str, handle: BinaryIO) -> LocalReference:
    import warnings

    from PIL import Image, UnidentifiedImageError

    size = os.fstat(handle.fileno()).st_size
    unreadable = ValueError(
        f"Reference {reference!r} is not an image kling-cli can read "
        "(a JPEG or PNG file is needed)."
    )
    try:
        with warnings.catch_warnings():
            # Pillow warns above its pixel limit; kling says so in its own words below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle) as image:
                found, (width, height), mode = image.format or "?", image.size, image.mode
                exif = image.info.get("exif")
                if width * height <= MAX_REFERENCE_PIXELS:
                    image.verify()
    except Image.DecompressionBombError as exc:
        counted = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(counted.group(1)):,} pixels" if counted else "more pixels than that"
        raise _too_many_pixels(reference, pixels) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
        raise unreadable from None
    orientation = _orientation(exif)
    if orientation in ROTATED_ORIENTATIONS:
        width, height = height, width
    path = Path(reference).expanduser()
    return LocalReference(path, found, width, height, size, mode, orientation)


def _orientation(exif: Any) -> int:
    """The EXIF orientation tag from the raw EXIF block Pillow read with the header (JPEG's
    APP1, PNG's eXIf before the pixels); 1 when there is none."""
    if not isinstance(exif, bytes):
        return 1
    from PIL import Image

    try:
        value = Image.Exif()
        value.load(exif)
        value = value.get(EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block: Pillow raises many kinds; shown as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _too_many_pixels(reference: str, pixels: str) -> ReferenceLimitError:
    return ReferenceLimitError(
        f"Reference {reference!r} has {pixels}; kling-cli reads images of at most "
        f"{MAX_REFERENCE_PIXELS:,} pixels, Pillow's decompression-bomb limit.",
        "downscales it",
    )


def check_limits(reference: str, info: LocalReference) -> None:
    """The documented limits, on the image as displayed; ValueError names the first broken
    (`ReferenceLimitError` for those --fit would fix)."""
    width, height, size = info.width, info.height, info.size
    if info.format not in REFERENCE_FORMATS:
        raise ReferenceLimitError(
            f"Reference {reference!r} is a {info.format} image; Kling Image O1 takes JPEG or PNG.",
            "converts it to PNG",
        )
    if width * height > MAX_REFERENCE_PIXELS:
        raise _too_many_pixels(reference, f"{width}x{height} = {width * height:,} pixels")
    if size > MAX_REFERENCE_BYTES:
        raise ReferenceLimitError(
            f"Reference {reference!r} is {size:,} bytes; the limit is 10 MB "
            f"({MAX_REFERENCE_BYTES:,} bytes).",
            "re-encodes it, or downscales it, under the limit",
        )
    if min(width, height) < MIN_REFERENCE_SIDE:
        raise ReferenceLimitError(
            f"Reference {reference!r} is {width}x{height} px; each side must be at least "
            f"{MIN_REFERENCE_SIDE} px.",
            "upscales it, keeping its aspect ratio",
        )
    if max(width, height) / min(width, height) > MAX_REFERENCE_ASPECT:
        raise ValueError(
            f"Reference {reference!r} is {width}x{height} px; its aspect ratio must be between "
            f"1:{MAX_REFERENCE_ASPECT} and {MAX_REFERENCE_ASPECT}:1."
        )


@dataclass(frozen=True)
class LocalFile:
    """A checked local reference, read into memory (at most 10 MB) to be sent."""

    path: Path
    content_type: str
    content: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.content).hexdigest()


def read_local_reference(reference: str) -> LocalFile:
    """A checked local reference's bytes, read through the handle that was checked."""
    with open_regular_file(reference) as handle:
        info = _identify(reference, handle)
        check_limits(reference, info)
        handle.seek(0)
        content = handle.read()
    return LocalFile(info.path, MIME_TYPES[info.format], content)


def inline(reference: str, form: str) -> str:
    """A local file as the provider takes it inline: a `data:` URI, or raw base64 (Kling)."""
    file = read_local_reference(reference)
    encoded = base64.b64encode(file.content).decode("ascii")
    if form == "data-uri":
        return f"data:{file.content_type};base64,{encoded}"
    return encoded


def with_inline_references(request: GenerationRequest, form: str) -> GenerationRequest:
    """The request with every local reference replaced by its inline form, order kept."""
    if not any(is_local(ref) for ref in request.references):
        return request
    references = tuple(inline(ref, form) if is_local(ref) else ref for ref in request.references)
    return request.model_copy(update={"references": references})


def with_described_references(request: GenerationRequest, form: str) -> GenerationRequest:
    """For --dry-run: what would be inlined, by size, instead of the bytes."""
    if not any(is_local(ref) for ref in request.references):
        return request
    how = (
        "uploaded first, then sent as the URL it gets"
        if form == "upload"
        else f"sent inline as {form}"
    )
    references = tuple(
        f"<{inspect_local_reference(ref).describe()}, {how}>" if is_local(ref) else ref
        for ref in request.references
    )
    return request.model_copy(update={"references": references})


def fit_reference(reference: str, cache_dir: Path) -> tuple[str, str | None]:
    """With --fit: a version of a local file within the limits (see `kling_cli.fit`)."""
    from kling_cli.fit import fit_reference as fit

    return fit(reference, cache_dir)
