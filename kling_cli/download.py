"""Stream one generated image to disk: `name.part` first, then an atomic rename that never
replaces an existing file unless asked to."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from kling_cli.errors import DownloadError, SaveError
from kling_cli.retry import RETRYABLE_STATUS

CHUNK_SIZE = 256 * 1024
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True)
class SavedFile:
    path: Path
    url: str
    width: int
    height: int
    bytes: int
    sha256: str


def extension_for(content_type: str | None, url: str) -> str:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in EXTENSIONS:
        return EXTENSIONS[mime]
    suffix = Path(urlsplit(url).path).suffix.lower().lstrip(".")
    if suffix in ("png", "jpg", "jpeg", "webp"):
        return "jpg" if suffix == "jpeg" else suffix
    guessed = mimetypes.guess_extension(mime) if mime else None
    return guessed.lstrip(".") if guessed else "png"


def url_host(url: str) -> str:
    """Only the host of a (possibly signed) URL, for messages: query strings can hold tokens."""
    return urlsplit(url).hostname or "the image host"


async def download_image(
    client: httpx.AsyncClient, url: str, directory: Path, stem: str, *, overwrite: bool = False
) -> SavedFile:
    """Download `url` to `directory/stem.<ext>` (or `stem-1.<ext>`, ... when taken)."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                error = DownloadError(
                    f"Downloading an image from {url_host(url)} failed with HTTP "
                    f"{response.status_code}"
                    + (
                        " (the link may have expired)."
                        if response.status_code in (403, 404)
                        else "."
                    )
                )
                error.retryable = response.status_code in RETRYABLE_STATUS
                raise error
            content_type = response.headers.get("content-type", "")
            mime = content_type.split(";")[0].strip().lower()
            if mime and not mime.startswith(("image/", "application/octet-stream")):
                raise DownloadError(f"{url_host(url)} answered with {mime} instead of an image.")
            extension = extension_for(content_type, url)
            part = directory / f".{stem}.{os.getpid()}.{extension}.part"
            digest = hashlib.sha256()
            size = 0
            try:
                with part.open("wb") as handle:
                    async for chunk in response.aiter_raw(CHUNK_SIZE):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
                expected = response.headers.get("content-length")
                if expected is not None and expected.isdigit() and int(expected) != size:
                    raise DownloadError(
                        f"The image from {url_host(url)} arrived truncated "
                        f"({size} of {expected} bytes)."
                    )
                width, height = _image_size(part, url)
                final = _place(part, directory, stem, extension, overwrite=overwrite)
            finally:
                part.unlink(missing_ok=True)
    except httpx.RemoteProtocolError:
        raise DownloadError(
            f"The image from {url_host(url)} arrived truncated (the connection closed early)."
        ) from None
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"Downloading an image from {url_host(url)} failed: {type(exc).__name__}."
        ) from None
    except OSError as exc:
        raise SaveError(f"Cannot save the image in {directory}: {exc.strerror}.") from None
    return SavedFile(final, url, width, height, size, digest.hexdigest())


def _image_size(path: Path, url: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        raise SaveError(f"What {url_host(url)} sent is not an image kling-cli can read.") from None


def _place(part: Path, directory: Path, stem: str, extension: str, *, overwrite: bool) -> Path:
    """Rename into place. Without `overwrite`, `os.link` refuses an existing name atomically,
    so two processes can never write over each other's files."""
    if overwrite:
        final = directory / f"{stem}.{extension}"
        os.replace(part, final)
        return final
    for attempt in range(10_000):
        final = directory / (
            f"{stem}.{extension}" if attempt == 0 else f"{stem}-{attempt}.{extension}"
        )
        try:
            os.link(part, final)
        except FileExistsError:
            continue
        return final
    raise SaveError(f"No free file name for {stem}.{extension} in {directory}.")
