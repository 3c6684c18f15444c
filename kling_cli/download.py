"""Stream one generated image to disk: `name.part` first, then an atomic rename that never
replaces an existing file unless asked to."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from kling_cli.errors import DownloadError, SaveError
from kling_cli.retry import RETRYABLE_STATUS

# How a saved image takes its name: "keep" never replaces a file (it adds -1, -2, ...);
# "replace" does (--overwrite); "reuse" takes a file of that name holding the very same bytes
# as this image (a job picked up again whose journal lost the record that it saved it).
Placement = Literal["keep", "replace", "reuse"]
CHUNK_SIZE = 256 * 1024
# File extensions by the format Pillow detects in the bytes (never by Content-Type or URL).
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
# Far above any documented output (a 2K 21:9 PNG, 3104x1312 RGBA, is under 17 MB even
# uncompressed): a server streaming more is not sending one of our images.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SavedFile:
    path: Path
    url: str
    width: int
    height: int
    bytes: int
    sha256: str


def url_host(url: str) -> str:
    """Only the host of a (possibly signed) URL, for messages: query strings can hold tokens."""
    return urlsplit(url).hostname or "the image host"


async def download_image(
    client: httpx.AsyncClient,
    url: str,
    directory: Path,
    stem: str,
    *,
    placement: Placement = "keep",
    partial: Path | None = None,
    timeout: httpx.Timeout | None = None,
) -> SavedFile:
    """Download `url` to `directory/stem.<ext>` (or `stem-1.<ext>`, ... when taken). A
    `partial` file left by an interrupted attempt is resumed with `Range` where the server
    allows it; a failure that may pass leaves its partial file on the raised error. `timeout`
    replaces the client's (the engine's, clipped to its deadline)."""
    if partial is None:
        _remove_orphans(directory, stem)
        part, have = directory / f".{stem}.{os.getpid()}.part", 0
    else:
        part, have = partial, _size_of(partial)
    headers = {"Range": f"bytes={have}-"} if have else None
    digest = hashlib.sha256()
    try:
        limits = timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
        async with client.stream("GET", url, headers=headers, timeout=limits) as response:
            resumed = response.status_code == 206 and _resumes_at(response, have)
            if response.status_code != 200 and not resumed:
                raise _status_error(url, response.status_code)
            content_type = response.headers.get("content-type", "")
            mime = content_type.split(";")[0].strip().lower()
            if mime and not mime.startswith(("image/", "application/octet-stream")):
                raise DownloadError(f"{url_host(url)} answered with {mime} instead of an image.")
            announced = _expected_size(response, resumed)
            if announced is not None and announced > MAX_DOWNLOAD_BYTES:
                raise _too_large(url)
            size = have if resumed else 0
            if resumed:
                _read_back(part, digest)
            # One unbuffered descriptor, written and hashed chunk by chunk as httpx hands
            # them over (no copy, no Python buffer in between), fsynced before it is closed.
            fd = _open_part(part, directory, append=resumed)
            try:
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise _too_large(url)
                    _write_all(fd, chunk)
                    digest.update(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            if announced is not None and announced != size:
                raise DownloadError(
                    f"The image from {url_host(url)} arrived truncated ({size} of {announced} "
                    "bytes).",
                    partial=part,
                )
    except httpx.RemoteProtocolError:
        raise DownloadError(
            f"The image from {url_host(url)} arrived truncated (the connection closed early).",
            partial=part,
        ) from None
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"Downloading an image from {url_host(url)} failed: {type(exc).__name__}.",
            partial=part,
        ) from None
    except DownloadError as exc:
        if exc.partial is None:
            part.unlink(missing_ok=True)
        raise
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise SaveError(f"Cannot save the image in {directory}: {exc.strerror}.") from None
    except BaseException:
        # Cancelled (Ctrl-C, SIGTERM): a `.part` no later run would find again is removed.
        part.unlink(missing_ok=True)
        raise
    sha256 = digest.hexdigest()
    try:
        found, width, height = check_complete(part, size, url)
        extension = EXTENSIONS.get(found, found.lower())
        final = _place(part, directory, stem, extension, placement=placement, sha256=sha256)
    except OSError as exc:
        raise SaveError(f"Cannot save the image in {directory}: {exc.strerror}.") from None
    finally:
        part.unlink(missing_ok=True)
    return SavedFile(final, url, width, height, size, sha256)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_back(path: Path, digest: hashlib._Hash) -> None:
    """The bytes of a partial file being resumed, into the hash."""
    with path.open("rb") as existing:
        for block in iter(lambda: existing.read(CHUNK_SIZE), b""):
            digest.update(block)


# Write-only, created if missing, never handed to a child process; on Windows, binary (its
# C runtime would otherwise turn each LF written into CR LF).
_PART_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _open_part(part: Path, directory: Path, *, append: bool) -> int:
    """The `.part` file's descriptor, truncated unless appended to. The folder is made only
    when opening finds it missing: a `mkdir` before each of a batch's images would cost a
    system call and an exception each time."""
    flags = _PART_FLAGS | (os.O_APPEND if append else os.O_TRUNC)
    try:
        return os.open(part, flags, 0o666)
    except FileNotFoundError:
        pass
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"Cannot create {directory}: {exc.strerror}.") from None
    return os.open(part, flags, 0o666)


def _write_all(fd: int, chunk: bytes) -> None:
    written = os.write(fd, chunk)
    if written < len(chunk):  # a regular file takes it all but on a full disk or a signal
        view = memoryview(chunk)
        while written < len(chunk):
            written += os.write(fd, view[written:])


def _too_large(url: str) -> DownloadError:
    error = DownloadError(
        f"The image from {url_host(url)} is larger than {MAX_DOWNLOAD_BYTES // 1024 // 1024} MiB, "
        "far above any image Kling Image O1 makes; it was not saved."
    )
    error.retryable = False
    return error


def _remove_orphans(directory: Path, stem: str) -> None:
    """Remove the `.part` files of this name left by a kling that was killed (SIGKILL, a
    power cut): its process is gone, so no one will finish them. Their bytes are not resumed:
    nothing proves they are the same image."""
    for name in _part_files(directory).pop(stem, ()):
        pid = name[len(stem) + 2 : -len(".part")]
        if pid.isdigit() and not _alive(int(pid)):
            (directory / name).unlink(missing_ok=True)


# The `.part` files of each folder, by stem, as found by one scan of it per process: a batch
# saves thousands of images into one folder, and scanning it for each image would cost time
# growing with the folder. What a killed kling left is there before this process looks; a
# `.part` file made later belongs to a kling alive then.
_PART_FILES: dict[str, dict[str, list[str]]] = {}


def _part_files(directory: Path) -> dict[str, list[str]]:
    key = os.path.abspath(directory)
    found = _PART_FILES.get(key)
    if found is None:
        found = _PART_FILES[key] = {}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") and name.endswith(".part") and name.count(".") >= 3:
                        stem = name[1:].rsplit(".", 2)[0]
                        found.setdefault(stem, []).append(name)
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _status_error(url: str, status: int) -> DownloadError:
    expired = " (the link may have expired)" if status in (403, 404) else ""
    error = DownloadError(
        f"Downloading an image from {url_host(url)} failed with HTTP {status}{expired}."
    )
    error.retryable = status in RETRYABLE_STATUS
    return error


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """A 206 whose `Content-Range` starts where our partial file ends."""
    content_range = str(response.headers.get("content-range", ""))
    return content_range.startswith(f"bytes {offset}-")


def _expected_size(response: httpx.Response, resumed: bool) -> int | None:
    if resumed:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length")
    return int(length) if length is not None and length.isdigit() else None


def check_complete(path: Path, size: int, url: str) -> tuple[str, int, int]:
    """The format Pillow detects in a downloaded file and its pixel size, once the file is
    known to be whole to its last byte without decoding its pixels: a PNG's chunks are walked
    to IEND with their CRCs checked (Pillow's `verify`), a JPEG must end with its EOI marker,
    a WebP's RIFF length must be the file's; other formats are decoded. Raises a retryable
    DownloadError for a cut or corrupt image (the caller discards the file), OSError when
    the file cannot be read back."""
    from PIL import Image, UnidentifiedImageError

    try:
        with path.open("rb") as handle, Image.open(handle) as image:
            found, (width, height) = image.format or "?", image.size
            if found == "PNG":
                image.verify()
            elif found == "JPEG":
                # Some encoders pad after EOI; a cut file has no EOI at all.
                handle.seek(max(size - 64, 0))
                if not handle.read(64).rstrip(b"\0\r\n ").endswith(JPEG_EOI):
                    raise SyntaxError("no EOI marker at the end")
            elif found == "WEBP":
                handle.seek(4)
                if int.from_bytes(handle.read(4), "little") + 8 != size:
                    raise SyntaxError("RIFF length differs from the file's")
            else:
                image.load()
    except UnidentifiedImageError:
        raise DownloadError(
            f"What {url_host(url)} sent is not an image kling-cli can read."
        ) from None
    except (SyntaxError, ValueError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not _is_decoder_error(exc):
            raise
        raise DownloadError(
            f"The image from {url_host(url)} arrived incomplete or corrupt ({size:,} bytes)."
        ) from None
    return found, width, height


JPEG_EOI = b"\xff\xd9"


def _is_decoder_error(exc: OSError) -> bool:
    """Pillow reports a cut or broken image as a bare OSError (no errno); a disk problem has
    one."""
    return exc.errno is None


def _place(
    part: Path, directory: Path, stem: str, extension: str, *, placement: Placement, sha256: str
) -> Path:
    """Rename into place. Unless replacing, `os.link` refuses an existing name atomically, so
    two processes can never write over each other's files."""
    if placement == "replace":
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
            if placement == "reuse" and _same_bytes(final, part, sha256):
                return final
            continue
        return final
    raise SaveError(f"No free file name for {stem}.{extension} in {directory}.")


def _same_bytes(existing: Path, part: Path, sha256: str) -> bool:
    try:
        if existing.stat().st_size != part.stat().st_size:
            return False
        digest = hashlib.sha256()
        with existing.open("rb") as handle:
            for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def sync_directory(directory: Path) -> None:
    """Make the names just linked into a directory durable (the files' bytes already are):
    one fsync of the directory for all the images of a task, not one per image."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
