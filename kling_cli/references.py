"""Local reference images: inspected against the documented limits, then sent the way the
provider accepts them: inline (a data URI or raw base64), or uploaded by the engine through
the provider's own upload API."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kling_cli.limits import (
    MAX_REFERENCE_ASPECT,
    MAX_REFERENCE_BYTES,
    MIN_REFERENCE_SIDE,
    REFERENCE_FORMATS,
)

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def is_local(reference: str) -> bool:
    """A path rather than a URL (`C:\\x.png` has a one-letter scheme)."""
    scheme = urlsplit(reference).scheme
    return not scheme or len(scheme) == 1


@dataclass(frozen=True)
class LocalReference:
    path: Path
    format: str  # what the bytes are, whatever the extension says
    width: int
    height: int
    size: int

    def describe(self) -> str:
        return f"{self.path}: {self.format} {self.width}x{self.height}, {self.size:,} bytes"


def inspect_local_reference(reference: str) -> LocalReference:
    """Read a local file's real format and size with Pillow; one sentence per broken rule."""
    path = Path(reference).expanduser()
    if not path.exists():
        raise ValueError(f"Reference {reference!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"Reference {reference!r} is a directory, not an image file.")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(handle) as image:
                    image.verify()
                    found, (width, height) = image.format or "?", image.size
            except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
                raise ValueError(
                    f"Reference {reference!r} is not an image kling-cli can read "
                    "(a JPEG or PNG file is needed)."
                ) from None
    except PermissionError:
        raise ValueError(f"Reference {reference!r} cannot be read (permission denied).") from None
    if found not in REFERENCE_FORMATS:
        raise ValueError(
            f"Reference {reference!r} is a {found} image; Kling Image O1 takes JPEG or PNG."
        )
    if size > MAX_REFERENCE_BYTES:
        raise ValueError(
            f"Reference {reference!r} is {size / 1024 / 1024:.1f} MB; the limit is "
            f"{MAX_REFERENCE_BYTES // 1024 // 1024} MB."
        )
    if min(width, height) < MIN_REFERENCE_SIDE:
        raise ValueError(
            f"Reference {reference!r} is {width}x{height} px; each side must be at least "
            f"{MIN_REFERENCE_SIDE} px."
        )
    if max(width, height) / min(width, height) > MAX_REFERENCE_ASPECT:
        raise ValueError(
            f"Reference {reference!r} is {width}x{height} px; its aspect ratio must be between "
            f"1:{MAX_REFERENCE_ASPECT} and {MAX_REFERENCE_ASPECT}:1."
        )
    return LocalReference(path, found, width, height, size)


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
    info = inspect_local_reference(reference)
    return LocalFile(info.path, MIME_TYPES[info.format], info.path.read_bytes())


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
    """With --fit: a version of a local file within the limits, keeping its aspect ratio, in a
    content-addressed cache (so the journal's path stays valid); and what was done, or None
    when the file was fine. Never crops: an aspect ratio out of range is still refused."""
    try:
        inspect_local_reference(reference)
        return reference, None
    except ValueError as problem:
        original_problem = problem
    from PIL import Image, UnidentifiedImageError

    path = Path(reference).expanduser()
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
            found = opened.format or "?"
    except (UnidentifiedImageError, OSError):
        raise original_problem from None
    width, height = image.size
    if max(width, height) / min(width, height) > MAX_REFERENCE_ASPECT:
        raise ValueError(f"{original_problem} (--fit does not crop.)") from None
    steps = []
    if min(width, height) < MIN_REFERENCE_SIDE:
        scale = MIN_REFERENCE_SIDE / min(width, height)
        size = (round(width * scale), round(height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
        steps.append(f"upscaled {width}x{height} to {size[0]}x{size[1]}")
    data, kind, final_size = _encode_within_limit(image)
    if kind != found:
        steps.insert(0, f"converted {found} to {kind}")
    if final_size != image.size:
        steps.append(f"downscaled to {final_size[0]}x{final_size[1]}")
    if not steps:
        steps.append(f"re-encoded to {len(data):,} bytes")
    import hashlib

    cache_dir.mkdir(parents=True, exist_ok=True)
    extension = "png" if kind == "PNG" else "jpg"
    fitted = cache_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.{extension}"
    if not fitted.exists():
        fitted.write_bytes(data)
    return str(fitted), f"{reference}: {', '.join(steps)}"


def _encode_within_limit(image: Any) -> tuple[bytes, str, tuple[int, int]]:
    """PNG when it fits in the byte limit, else JPEG, downscaled while it still does not."""
    import io

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
                f"--fit cannot bring it under {MAX_REFERENCE_BYTES // 1024 // 1024} MB without "
                f"a side below {MIN_REFERENCE_SIDE} px."
            )
        image = image.resize(smaller, Image.Resampling.LANCZOS)
