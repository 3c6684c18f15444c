"""`--fit`: turn a local reference that breaks a limit into one that keeps it, on the image as
displayed (EXIF orientation applied), in a mode every provider takes, never cropping."""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kling_cli.limits import (
    MAX_REFERENCE_ASPECT,
    MAX_REFERENCE_BYTES,
    MAX_REFERENCE_PIXELS,
    MIN_REFERENCE_SIDE,
)
from kling_cli.references import inspect_local_reference, open_regular_file

# Modes sent as they are; every other one (CMYK, P, LA, I;16, ...) is converted to RGB, or to
# RGBA when it has transparency.
KEPT_MODES = ("L", "RGB", "RGBA")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
# Beyond Pillow's limit, --fit still decodes an image this many times larger (a JPEG is first
# decoded at 1/2 to 1/8 scale), then downscales it; more would take gigabytes of memory.
FIT_PIXEL_FACTOR = 4
_PILLOW_LIMIT = threading.Lock()


def fit_reference(reference: str, cache_dir: Path) -> tuple[str, str | None]:
    """A version of a local file within the limits, keeping its aspect ratio, in a
    content-addressed cache under `cache_dir` (so the journal's path stays valid); and what was
    done, or None when the file was fine as it is. Raises ValueError when it cannot be fitted
    (an aspect ratio out of range: --fit never crops)."""
    problem: ValueError | None = None
    try:
        info = inspect_local_reference(reference)
    except ValueError as exc:
        problem = exc
    else:
        if info.orientation == 1 and info.mode in KEPT_MODES:
            return reference, None
    from PIL import Image, ImageOps, UnidentifiedImageError

    steps: list[str] = []
    try:
        with (
            _pixel_limit_lifted(),
            open_regular_file(reference) as handle,
            Image.open(handle) as opened,
        ):
            found = opened.format or "?"
            stored = opened.size
            if stored[0] * stored[1] > MAX_REFERENCE_PIXELS:
                opened.draft("RGB", _scaled(stored, MAX_REFERENCE_PIXELS))
            if opened.size[0] * opened.size[1] > FIT_PIXEL_FACTOR * MAX_REFERENCE_PIXELS:
                raise ValueError(
                    f"{str(problem).removesuffix('.')}, and --fit decodes at most "
                    f"{FIT_PIXEL_FACTOR * MAX_REFERENCE_PIXELS:,}."
                )
            orientation = opened.getexif().get(0x0112, 1)
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise (problem or ValueError(f"Reference {reference!r} cannot be read.")) from None
    if orientation not in (1, None):
        steps.append(f"turned upright (EXIF orientation {orientation})")
    width, height = image.size
    if max(width, height) / min(width, height) > MAX_REFERENCE_ASPECT:
        raise ValueError(f"{str(problem).removesuffix('.')}, and --fit never crops.")
    if image.mode not in KEPT_MODES:
        mode = image.mode
        image = _sendable(image)
        steps.append(f"converted {mode} to {image.mode}")
    if stored[0] * stored[1] > MAX_REFERENCE_PIXELS:
        size = _scaled((width, height), MAX_REFERENCE_PIXELS)
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
        shown = stored if orientation not in (5, 6, 7, 8) else stored[::-1]
        steps.append(f"downscaled {shown[0]}x{shown[1]} to {size[0]}x{size[1]}")
    elif min(width, height) < MIN_REFERENCE_SIDE:
        scale = MIN_REFERENCE_SIDE / min(width, height)
        size = (round(width * scale), round(height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
        steps.append(f"upscaled {width}x{height} to {size[0]}x{size[1]}")
    before = image.size
    data, kind, final_size = _encode_within_limit(image)
    if kind != found:
        steps.insert(0, f"converted {found} to {kind}")
    if final_size != before:
        steps.append(f"downscaled to {final_size[0]}x{final_size[1]}")
    if not steps:
        steps.append(f"re-encoded to {len(data):,} bytes")
    cache_dir.mkdir(parents=True, exist_ok=True)
    extension = "png" if kind == "PNG" else "jpg"
    fitted = cache_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.{extension}"
    if not fitted.exists():
        fitted.write_bytes(data)
    return str(fitted), f"{reference}: {', '.join(steps)}"


@contextmanager
def _pixel_limit_lifted() -> Iterator[None]:
    """Pillow's decompression-bomb check off while --fit opens a file it will downscale (the
    limit is process-wide, hence the lock); `FIT_PIXEL_FACTOR` bounds what is decoded."""
    import warnings

    from PIL import Image

    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _scaled(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """`size` shrunk, aspect kept, to at most `max_pixels`."""
    width, height = size
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _sendable(image: Any) -> Any:
    """RGB, or RGBA when the image has transparency; 16-bit grey scaled to 8 bits (a plain
    conversion would clip everything above 255 to white)."""
    if image.mode in SIXTEEN_BIT_MODES:
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L").convert("RGB")
    if image.mode == "F":
        return image.convert("L").convert("RGB")
    transparent = "A" in image.mode or "a" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _encode_within_limit(image: Any) -> tuple[bytes, str, tuple[int, int]]:
    """PNG when it fits in the byte limit, else JPEG, downscaled while it still does not."""
    from PIL import Image

    def encode(picture: Any, kind: str) -> bytes:
        buffer = io.BytesIO()
        if kind == "PNG":
            picture.save(buffer, "PNG", optimize=True)
        else:
            picture.convert("RGB").save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    data = encode(image, "PNG")
    if len(data) <= MAX_REFERENCE_BYTES:
        return data, "PNG", image.size
    while True:
        data = encode(image, "JPEG")
        if len(data) <= MAX_REFERENCE_BYTES:
            return data, "JPEG", image.size
        width, height = image.size
        smaller = (round(width * 0.8), round(height * 0.8))
        if min(smaller) < MIN_REFERENCE_SIDE:
            raise ValueError(
                f"--fit cannot bring it under 10 MB ({MAX_REFERENCE_BYTES:,} bytes) without "
                f"a side below {MIN_REFERENCE_SIDE} px."
            )
        image = image.resize(smaller, Image.Resampling.LANCZOS)
