"""Generated output images: formats, the registry of issued images and the render cache."""

from __future__ import annotations

import io
import threading
import uuid
from dataclasses import dataclass
from typing import Literal

ImageFormat = Literal["PNG", "JPEG", "WEBP"]

EXTENSIONS: dict[ImageFormat, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES: dict[ImageFormat, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
IMAGE_PATH_PREFIX = "/images/"

# Runware's documented outputQuality default (seed 002); one quality keeps the cache per size.
_LOSSY_QUALITY = 95
_GRID_STEP = 128
_BLOCK = 4


@dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    format: ImageFormat


@dataclass(frozen=True)
class IssuedImage:
    image_id: str
    spec: ImageSpec
    provider: str

    @property
    def path(self) -> str:
        return f"{IMAGE_PATH_PREFIX}{self.image_id}.{EXTENSIONS[self.spec.format]}"


def render(spec: ImageSpec) -> bytes:
    """A gradient with a grid, at exactly the requested size, encoded in the requested format."""
    from PIL import Image, ImageDraw  # lazy: only the image path needs Pillow

    # Drawn at a quarter of the size and scaled up without smoothing: flat 4x4 blocks make a
    # 2K image several times cheaper to build and to encode, and it still looks like one.
    coarse = (max(1, spec.width // _BLOCK), max(1, spec.height // _BLOCK))
    red = Image.linear_gradient("L").rotate(90).resize(coarse)
    green = Image.linear_gradient("L").resize(coarse)
    blue = Image.radial_gradient("L").resize(coarse)
    picture = Image.merge("RGB", (red, green, blue))
    picture = picture.resize((spec.width, spec.height), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    for x in range(0, spec.width, _GRID_STEP):
        draw.line([(x, 0), (x, spec.height)], fill=(255, 255, 255))
    for y in range(0, spec.height, _GRID_STEP):
        draw.line([(0, y), (spec.width, y)], fill=(255, 255, 255))
    buffer = io.BytesIO()
    if spec.format == "PNG":
        picture.save(buffer, "PNG", compress_level=1)
    else:
        picture.save(buffer, spec.format, quality=_LOSSY_QUALITY)
    return buffer.getvalue()


_cache_lock = threading.Lock()
_encoded_cache: dict[ImageSpec, bytes] = {}
_render_locks: dict[ImageSpec, threading.Lock] = {}


def encoded(spec: ImageSpec) -> bytes:
    """The bytes for a spec, rendered once per process (shared by all emulator instances)."""
    with _cache_lock:
        cached = _encoded_cache.get(spec)
        if cached is not None:
            return cached
        render_lock = _render_locks.setdefault(spec, threading.Lock())
    with render_lock:  # concurrent first requests for one size render it once
        with _cache_lock:
            cached = _encoded_cache.get(spec)
        if cached is None:
            cached = render(spec)
            with _cache_lock:
                _encoded_cache[spec] = cached
        return cached


class ImageStore:
    """Images handed out by providers, for the image server to find."""

    def __init__(self) -> None:
        self.origin = ""  # set once the image server is bound
        self._lock = threading.Lock()
        self._issued: dict[str, IssuedImage] = {}

    def issue(self, spec: ImageSpec, provider: str) -> IssuedImage:
        image = IssuedImage(image_id=str(uuid.uuid4()), spec=spec, provider=provider)
        with self._lock:
            self._issued[image.image_id] = image
        return image

    def url(self, image: IssuedImage) -> str:
        return f"{self.origin}{image.path}"

    def find(self, path: str) -> IssuedImage | None:
        """The issued image a request path names, if the id and the extension both match."""
        if not path.startswith(IMAGE_PATH_PREFIX):
            return None
        image_id, _, _ = path[len(IMAGE_PATH_PREFIX) :].partition(".")
        with self._lock:
            image = self._issued.get(image_id)
        return image if image is not None and image.path == path else None
