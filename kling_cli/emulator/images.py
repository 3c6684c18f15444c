"""Generated output images: formats, the registry of issued images and the render caches."""

from __future__ import annotations

import functools
import hashlib
import io
import random
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from kling_cli.emulator import png

ImageFormat = Literal["PNG", "JPEG", "WEBP"]

EXTENSIONS: dict[ImageFormat, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES: dict[ImageFormat, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
IMAGE_PATH_PREFIX = "/images/"

# Runware's documented outputQuality default
# (https://runware.ai/docs/models/klingai-image-o1).
_LOSSY_QUALITY = 95
_GRID_STEP = 128
_BLOCK = 4
_SHAPES = 3
_STRIP_BLOCKS = 24
_PROMPT_CHARS = 48


@dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    format: ImageFormat
    # JPEG/WebP quality where a request set one (Runware's outputQuality); None: 95.
    quality: int | None = None


@dataclass(frozen=True)
class Caption:
    """What a request asked for, drawn on its images so that every answer looks like one."""

    prompt: str = ""
    aspect_ratio: str = ""
    resolution: str = ""


_CAPTION_KEYS = {
    "prompt": ("prompt", "positivePrompt"),
    "aspect_ratio": ("aspect_ratio", "aspectRatio"),
    "resolution": ("resolution",),
}


def caption_of(body: Any) -> Caption:
    """The first prompt, aspect ratio and resolution found anywhere in a JSON body: the nine
    wire formats nest them differently (Comfy's in a node, Unifically's under `input`)."""
    found: dict[str, str] = {}
    pending: list[Any] = [body]
    while pending and len(found) < len(_CAPTION_KEYS):
        value = pending.pop(0)
        if isinstance(value, dict):
            for field, keys in _CAPTION_KEYS.items():
                for key in keys:
                    if field not in found and isinstance(value.get(key), str):
                        found[field] = value[key]
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return Caption(**found)


@dataclass(frozen=True)
class IssuedImage:
    image_id: str
    spec: ImageSpec
    provider: str
    caption: Caption = Caption()
    index: int = 0

    @property
    def path(self) -> str:
        return f"{IMAGE_PATH_PREFIX}{self.image_id}.{EXTENSIONS[self.spec.format]}"


def _background(spec: ImageSpec) -> Any:
    """A gradient with a grid, at exactly the requested size (a PIL image, cached per size)."""
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
    return picture


@dataclass(frozen=True)
class _Background:
    picture: Any  # the whole image, as a PIL image
    band: int  # rows at the top that each image draws on; the rest is shared
    png_tail: png.Tail | None  # the rows below the band, compressed once (PNG only)


def _prepare(spec: ImageSpec) -> _Background:
    from PIL import ImageDraw

    picture = _background(spec)
    font = _font(_font_size(spec.width))
    margin = _margin(spec.width)
    probe = ImageDraw.Draw(picture).multiline_textbbox((margin, margin), "Ag\nAg", font=font)
    # The label, then a strip of the seeded pattern; at most the whole image.
    band = min(spec.height, int(probe[3]) + margin * 2 + max(8, spec.height // 32))
    tail = None
    if spec.format == "PNG":
        tail = png.tail(picture.crop((0, band, spec.width, spec.height)))
    return _Background(picture, band, tail)


def render(image: IssuedImage) -> bytes:
    """The cached background of the image's size under a top band drawn for this image: a
    pattern seeded by the request and the image (so no two answers have the same bytes) and
    a label of what was asked, encoded in the requested format. Only the band is encoded per
    image for a PNG (kling_cli.emulator.png), so that a large batch does not wait on it."""
    spec, caption = image.spec, image.caption
    background = _cached_background(spec)
    band = background.picture.crop((0, 0, spec.width, background.band))
    seed = "\0".join((caption.prompt, caption.aspect_ratio, caption.resolution, str(image.index)))
    rng = random.Random(hashlib.sha256(f"{seed}\0{image.image_id}".encode()).digest())
    _draw_pattern(band, rng)
    _draw_label(band, image)
    if background.png_tail is not None:
        return png.assemble(band, background.png_tail, spec.height)
    picture = background.picture.copy()
    picture.paste(band, (0, 0))
    buffer = io.BytesIO()
    # WebP's fastest method: its default spends several times longer for a few % of size.
    options = {"method": 0} if spec.format == "WEBP" else {}
    picture.save(buffer, spec.format, quality=spec.quality or _LOSSY_QUALITY, **options)
    return buffer.getvalue()


def _draw_pattern(band: Any, rng: random.Random) -> None:
    """Seeded blocks along the bottom of the band and a few seeded discs above them."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(band)
    width, height = band.size
    strip = max(4, height // 5)
    step = max(1, width // _STRIP_BLOCKS)
    for x in range(0, width, step):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, height - strip, x + step - 1, height - 1), fill=colour)
    for _ in range(_SHAPES):
        x, y = rng.randrange(width // 2, width), rng.randrange(height)
        size = rng.randint(max(2, height // 8), max(3, height // 3))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - size, y - size, x + size, y + size), fill=colour)


def _font_size(width: int) -> int:
    return max(10, width // 40)


def _margin(width: int) -> int:
    return max(4, width // 64)


def _draw_label(band: Any, image: IssuedImage) -> None:
    from PIL import ImageDraw

    width = image.spec.width
    caption = image.caption
    prompt = " ".join(caption.prompt.split())
    if len(prompt) > _PROMPT_CHARS:
        prompt = prompt[: _PROMPT_CHARS - 1] + "\u2026"
    facts = " \u00b7 ".join(
        part
        for part in (
            caption.aspect_ratio,
            caption.resolution,
            f"{width}x{image.spec.height}",
            f"#{image.index + 1}",
            image.provider,
        )
        if part
    )
    lines = [prompt or "(no prompt)", facts]
    font = _font(_font_size(width))
    draw = ImageDraw.Draw(band)
    margin = _margin(width)
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((margin, margin), text, font=font)
    pad = margin // 2
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(20, 20, 20))
    draw.multiline_text((margin, margin), text, font=font, fill=(255, 255, 255))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


_cache_lock = threading.Lock()
_background_cache: dict[ImageSpec, _Background] = {}
_render_locks: dict[ImageSpec, threading.Lock] = {}
# A client may fetch one image more than once (a resumed download, fal's file_size on every
# poll): the last few renders are kept so that only the first fetch pays for the encoding.
_encoded_cache: OrderedDict[str, bytes] = OrderedDict()
_ENCODED_KEPT = 64


def _cached_background(spec: ImageSpec) -> _Background:
    """The background for a size, built once per process (shared by all emulator instances)."""
    with _cache_lock:
        cached = _background_cache.get(spec)
        if cached is not None:
            return cached
        render_lock = _render_locks.setdefault(spec, threading.Lock())
    with render_lock:  # concurrent first requests for one size build it once
        with _cache_lock:
            cached = _background_cache.get(spec)
        if cached is None:
            cached = _prepare(spec)
            with _cache_lock:
                _background_cache[spec] = cached
        return cached


def encoded(image: IssuedImage) -> bytes:
    """The bytes of an issued image; the same bytes every time it is fetched."""
    with _cache_lock:
        cached = _encoded_cache.get(image.image_id)
        if cached is not None:
            _encoded_cache.move_to_end(image.image_id)
            return cached
    content = render(image)
    with _cache_lock:
        content = _encoded_cache.setdefault(image.image_id, content)
        while len(_encoded_cache) > _ENCODED_KEPT:
            _encoded_cache.popitem(last=False)
    return content


class ImageStore:
    """Images handed out by providers, for the image server to find."""

    def __init__(self) -> None:
        self.origin = ""  # set once the image server is bound
        self._lock = threading.Lock()
        self._issued: dict[str, IssuedImage] = {}

    def issue(
        self, spec: ImageSpec, provider: str, caption: Caption = Caption(), index: int = 0
    ) -> IssuedImage:
        image = IssuedImage(str(uuid.uuid4()), spec, provider, caption, index)
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
