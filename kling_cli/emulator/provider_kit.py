"""Small pieces shared by the Kling, fal, WaveSpeed, Comfy Router and AIML emulations."""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kling_cli.emulator.dimensions import Tier, pixels
from kling_cli.emulator.images import (
    Caption,
    ImageFormat,
    ImageSpec,
    ImageStore,
    IssuedImage,
    caption_of,
)
from kling_cli.emulator.tasks import Event, Task

# None of these providers says what "auto" picks; the model chooses from the references,
# which the emulator never fetches, so it answers with the square size (inferred, as for the
# seed providers).
AUTO_ASPECT_RATIO = "1:1"

_HTTP_URL = re.compile(r"^https?://[^/\s]+", re.I)
_DATA_URI = re.compile(r"^data:(image/[\w.+-]+)?(;[\w=.+-]+)*;base64,(?P<data>.*)$", re.I | re.S)


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and _HTTP_URL.match(value) is not None


def data_uri_payload(value: str) -> str | None:
    """The base64 part of a `data:...;base64,` URI, or None when it is not one."""
    match = _DATA_URI.match(value)
    return match.group("data") if match else None


def decode_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def reference_image_problem(content: bytes) -> str | None:
    """Kling's documented reference-image limits (Omni-Image API reference,
    https://kling.ai/document-api/api/image/o1/image-generation; general docs):
    .jpg/.jpeg/.png, at most 10 MB, each side at least 300 px, aspect 1:2.5 to 2.5:1."""
    from PIL import Image, UnidentifiedImageError  # lazy, as in images.py

    if len(content) > 10 * 1024 * 1024:
        return "image file must not exceed 10MB"
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError):
        return "image content is not a readable image"
    if kind not in ("JPEG", "PNG"):
        return f"image format {kind} is not supported; use jpg, jpeg or png"
    if min(width, height) < 300:
        return f"image is {width}x{height}; width and height must be at least 300px"
    if not 1 / 2.5 <= width / height <= 2.5:
        return f"image aspect ratio {width}:{height} is outside 1:2.5 to 2.5:1"
    return None


def output_spec(tier: Tier, aspect_ratio: str, image_format: ImageFormat = "PNG") -> ImageSpec:
    ratio = AUTO_ASPECT_RATIO if aspect_ratio == "auto" else aspect_ratio
    width, height = pixels(tier, ratio)
    return ImageSpec(width, height, image_format)


def issue_images(
    store: ImageStore, spec: ImageSpec, count: int, provider: str, body: Any = None
) -> tuple[IssuedImage, ...]:
    """`count` images answering `body` (the request's JSON, drawn on each image)."""
    caption = body if isinstance(body, Caption) else caption_of(body)
    return tuple(store.issue(spec, provider, caption, index) for index in range(count))


def retry_after_seconds(task: Task[Any]) -> str:
    return str(max(1, math.ceil(task.seconds_left())))


def iso_time(wall: float) -> str:
    """`2026-01-01T12:00:00.000Z`, the timestamp style of WaveSpeed's examples."""
    moment = datetime.fromtimestamp(wall, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wait_until_finished(task: Task[Any], limit: float | None = None) -> bool:
    """Hold the caller (a synchronous route) until the task ends, or `limit` seconds."""
    left = task.seconds_left()
    time.sleep(left if limit is None else min(left, limit))
    return task.is_finished()


class Cancellations:
    """Queue requests cancelled while still waiting (fal's queue docs and Comfy Router's queue
    page)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._lock = threading.Lock()
        self._cancelled: dict[str, float] = {}  # task id -> time.time() of the cancel

    def cancel_if_queued(self, task: Task[Any]) -> bool:
        with self._lock:
            if task.task_id in self._cancelled:
                return True
            if task.phase() != "pending":
                return False
            self._cancelled[task.task_id] = time.time()
            return True

    def __contains__(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._cancelled

    def adjust(self, events: list[Event]) -> list[Event]:
        """A cancelled task never completes: its outcome becomes a "cancelled" event."""
        with self._lock:
            cancelled = dict(self._cancelled)
        kept = [event for event in events if not (event[3] in cancelled and event[1] != "created")]
        kept += [(wall, "cancelled", self.provider, task_id) for task_id, wall in cancelled.items()]
        return kept

    def clear(self) -> None:
        with self._lock:
            self._cancelled.clear()
