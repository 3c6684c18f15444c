"""PNG files whose top rows change per image while the rest is compressed once per size.

Encoding a 2K PNG takes tens of milliseconds, so encoding every emulated image in full would
make a batch of hundreds of images wait on the emulator. Deflate lets the stream be cut: the
top band is compressed per image and ends on a full flush (byte-aligned, no back-references
across it), then the cached compression of the remaining rows follows unchanged, and the zlib
checksum of the whole is combined from the two parts' checksums.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADLER_BASE = 65521
_LEVEL = 1  # the emulator's PNGs were always written at compress_level=1: fast, and small
# enough for flat 4x4 blocks


@dataclass(frozen=True)
class Tail:
    """The rows below the band, compressed once: raw deflate data ending the stream."""

    deflated: bytes
    adler: int
    length: int


def _scanlines(picture: Any, *, first_unfiltered: bool = False) -> bytes:
    """RGB rows under PNG's Up filter (each row minus the one above, computed by Pillow in
    one pass): the emulator's images are flat 4x4 blocks, so three rows in four become zeros.
    A band's first row has the zero row above it, as the image's first row does; the tail's
    first row follows a row that changes per image, so it goes unfiltered (its bytes as the
    Up filter against zeros gives them)."""
    from PIL import Image, ImageChops

    width, height = picture.size
    above = Image.new("RGB", (width, height))
    above.paste(picture.crop((0, 0, width, max(0, height - 1))), (0, 1))
    raw = ImageChops.subtract_modulo(picture, above).tobytes()
    stride = width * 3
    rows = [raw[start : start + stride] for start in range(0, len(raw), stride)]
    filters = [b"\x02"] * len(rows)
    if first_unfiltered and rows:
        filters[0] = b"\x00"
    return b"".join(kind + row for kind, row in zip(filters, rows, strict=True))


def tail(picture: Any) -> Tail:
    data = _scanlines(picture, first_unfiltered=True)
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
    return Tail(deflated, zlib.adler32(data), len(data))


def assemble(band: Any, rest: Tail, height: int) -> bytes:
    """A complete PNG: `band` (an RGB image, the top rows) above the cached `rest`."""
    width = band.size[0]
    data = _scanlines(band)
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    head = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = adler32_combine(zlib.adler32(data), rest.adler, rest.length)
    stream = b"\x78\x01" + head + rest.deflated + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's (zlib's adler32_combine)."""
    remainder = second_length % _ADLER_BASE
    sum1 = first & 0xFFFF
    sum2 = (remainder * sum1) % _ADLER_BASE
    sum1 += (second & 0xFFFF) + _ADLER_BASE - 1
    sum2 += (first >> 16) + (second >> 16) + _ADLER_BASE - remainder
    sum1 %= _ADLER_BASE
    sum2 %= _ADLER_BASE
    return sum1 | (sum2 << 16)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
