"""Downloaded images are checked whole to their last byte before they are published, named by
what their bytes are, and capped in size. Served over loopback by a tiny HTTP server that
sends exactly the bytes and headers each case needs."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from kling_cli import download
from kling_cli.download import download_image
from kling_cli.errors import DownloadError, SaveError


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    image = Image.effect_noise(size, 60).convert("RGB")  # noise: no tiny compressed body
    image.save(buffer, fmt)
    return buffer.getvalue()


PNG, JPEG, WEBP = encoded("PNG"), encoded("JPEG"), encoded("WEBP")


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


class Served:
    """What the server answers next: a queue of (body, content type, send Content-Length)."""

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, str, bool]] = []
        self.requests = 0


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # without Content-Length the body ends when we close

        def do_GET(self) -> None:
            served.requests += 1
            body, content_type, with_length = served.answers.pop(0)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if with_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/image", served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path / "images"


def fetch(url: str, directory: Path) -> download.SavedFile:
    async def go() -> download.SavedFile:
        async with httpx.AsyncClient() as client:
            return await download_image(client, url, directory, "out")

    return asyncio.run(go())


BROKEN = [
    pytest.param(PNG[: len(PNG) // 2], "image/png", id="png-cut-in-half-no-length"),
    pytest.param(PNG[:-12], "image/png", id="png-without-iend"),
    pytest.param(flipped(PNG, len(PNG) // 2), "image/png", id="png-bad-crc"),
    pytest.param(JPEG[: len(JPEG) * 2 // 3], "image/jpeg", id="jpeg-without-eoi"),
    pytest.param(WEBP[:-40], "image/webp", id="webp-riff-length-differs"),
    pytest.param(b"<html>oops</html>" * 10, "application/octet-stream", id="not-an-image"),
]


@pytest.mark.parametrize(("body", "content_type"), BROKEN)
def test_an_incomplete_or_corrupt_image_is_a_retryable_download_error_and_leaves_nothing(
    server: tuple[str, Served], images: Path, body: bytes, content_type: str
) -> None:
    url, served = server
    served.answers.append((body, content_type, False))
    with pytest.raises(DownloadError) as raised:
        fetch(url, images)
    assert type(raised.value) is DownloadError and raised.value.retryable
    assert raised.value.partial is None
    assert not images.exists() or list(images.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "content_type", "extension"),
    [
        pytest.param(JPEG, "image/png", "jpg", id="jpeg-served-as-png"),
        pytest.param(PNG, "application/octet-stream", "png", id="png-as-octet-stream"),
        pytest.param(WEBP, "image/jpeg", "webp", id="webp-served-as-jpeg"),
        pytest.param(JPEG + b"\0\0", "", "jpg", id="jpeg-padded-after-eoi-no-type"),
    ],
)
def test_the_extension_comes_from_the_bytes(
    server: tuple[str, Served], images: Path, body: bytes, content_type: str, extension: str
) -> None:
    url, served = server
    served.answers.append((body, content_type, False))
    saved = fetch(url, images)
    assert saved.path.name == f"out.{extension}"
    assert (saved.width, saved.height, saved.bytes) == (64, 48, len(body))


def test_a_download_over_the_cap_is_refused_without_retry(
    server: tuple[str, Served], images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", len(PNG) - 1)
    for with_length in (True, False):
        served.answers.append((PNG, "image/png", with_length))
        with pytest.raises(DownloadError, match="is larger than") as raised:
            fetch(url, images)
        assert not raised.value.retryable and not isinstance(raised.value, SaveError)
        assert not images.exists() or list(images.iterdir()) == []


def test_the_engine_discards_a_cut_image_and_downloads_it_again(
    server: tuple[str, Served], images: Path
) -> None:
    from kling_cli.engine import Engine
    from kling_cli.providers import get_provider
    from kling_cli.providers.base import Endpoint
    from kling_cli.retry import RetryPolicy

    url, served = server
    served.answers += [(PNG[: len(PNG) // 2], "image/png", False), (PNG, "image/png", False)]

    async def go() -> download.SavedFile:
        engine = Engine(
            get_provider("runware"),
            Endpoint("http://127.0.0.1:9", "key"),
            retry_policy=RetryPolicy(base_delay=0.01),
        )
        async with engine:
            return await engine.download_one(url, images, "out", False)

    saved = asyncio.run(go())
    assert served.requests == 2
    assert saved.path.read_bytes() == PNG
    assert [p.name for p in images.iterdir()] == ["out.png"]


def test_a_png_whose_header_pillow_refuses_is_refused_too(
    server: tuple[str, Served], images: Path
) -> None:
    """Every CRC right, but an IHDR filter method the specification does not define: Pillow
    refuses it, so nothing is published."""
    import zlib

    header = bytearray(PNG[16:29])
    header[11] = 1  # filter method
    ihdr = b"IHDR" + bytes(header)
    odd = PNG[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + PNG[33:]
    url, served = server
    served.answers.append((odd, "image/png", True))
    with pytest.raises(DownloadError):
        fetch(url, images)
    assert not images.exists() or list(images.iterdir()) == []
