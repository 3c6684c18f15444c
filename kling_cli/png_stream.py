"""A PNG checked whole while it streams in: its chunks walked to `IEND` with every CRC
checked, as Pillow's `verify` does on the file, but on the bytes as they arrive, so a
download need not read the file back nor load Pillow's PNG reader to publish it.

Only a verdict of "whole" is acted on: a stream this walker does not accept (not a PNG, cut,
a bad CRC, an `IHDR` it does not know) is left to `kling_cli.download.check_complete`,
which reads the file with Pillow and gives the error a user sees.
"""

from __future__ import annotations

import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The bit depths the PNG specification allows for each colour type (PNG, Third Edition,
# W3C Recommendation, 11.2.1 IHDR Image header): Pillow opens every one of them.
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
MAX_CHUNK = 2**31 - 1  # the specification's bound on a chunk's length
IHDR = b"IHDR\x00\x00\x00\x0d"  # the first chunk, 13 bytes long

# What the walker waits for next.
_SIGNATURE, _HEADER, _DATA, _CRC, _END, _BROKEN = range(6)


class PngStream:
    """Feed it a download's bytes in order; `size` is then the (width, height) of a PNG that
    arrived whole to its `IEND`, or None."""

    __slots__ = ("_crc", "_held", "_ihdr", "_left", "_need", "_state", "_type", "size")

    def __init__(self) -> None:
        self._held = b""  # the start of a signature, chunk header or CRC split across reads
        self._need = len(SIGNATURE)
        self._state = _SIGNATURE
        self._crc = 0
        self._left = 0  # data bytes of the current chunk still to come
        self._type = b""
        self._ihdr = b""
        self.size: tuple[int, int] | None = None

    @property
    def whole(self) -> bool:
        return self._state == _END

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        position, end = 0, len(data)
        while position < end and self._state < _END:
            if self._state == _DATA:
                take = min(self._left, end - position)
                piece = view[position : position + take]
                self._crc = zlib.crc32(piece, self._crc)
                if self._type == b"IHDR":
                    self._ihdr += piece
                self._left -= take
                position += take
                if not self._left:
                    self._expect(_CRC, 4)
                continue
            take = min(self._need - len(self._held), end - position)
            self._held += view[position : position + take]
            position += take
            if len(self._held) == self._need:
                held, self._held = self._held, b""
                self._advance(held)

    def _expect(self, state: int, need: int = 0) -> None:
        self._state, self._need = state, need

    def _advance(self, held: bytes) -> None:
        if self._state == _SIGNATURE:
            if held == SIGNATURE:
                self._expect(_HEADER, 8)
            else:
                self._expect(_BROKEN)
        elif self._state == _HEADER:
            length, kind = int.from_bytes(held[:4], "big"), held[4:]
            first = self.size is None and not self._type
            # Pillow, too, refuses a chunk type that is not four ASCII letters.
            if length > MAX_CHUNK or not kind.isalpha() or (first and kind + held[:4] != IHDR):
                self._expect(_BROKEN)
                return
            self._type, self._left, self._crc = kind, length, zlib.crc32(kind)
            if length:
                self._expect(_DATA)
            else:
                self._expect(_CRC, 4)
        elif int.from_bytes(held, "big") != self._crc:
            self._expect(_BROKEN)
        elif self._type == b"IHDR":
            self._read_header()
        elif self._type == b"IEND" and self.size is not None:
            self._expect(_END)
        else:
            self._expect(_HEADER, 8)

    def _read_header(self) -> None:
        header, self._ihdr = self._ihdr, b""
        width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
        depth, colour, compression, filtering, interlace = header[8:13]
        # The only methods the specification defines; Pillow refuses another filter method.
        methods_known = not compression and not filtering and interlace in (0, 1)
        known = depth in DEPTHS.get(colour, ()) and methods_known
        if self.size is not None or not width or not height or not known:
            self._expect(_BROKEN)
            return
        self.size = (width, height)
        self._expect(_HEADER, 8)
