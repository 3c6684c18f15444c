"""A `manifest.json` read one item at a time: its `items` list is yielded entry by entry, so
that a view of a batch of any size (the gallery, the Markdown summary) holds one entry, not
the document. Any JSON document is read; kling's own are read fastest (one item a chunk)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from kling_cli.errors import InvalidRequestError

_CHUNK = 1 << 16
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _NotManifest(Exception):
    """Well-formed JSON so far, but not a document with an "items" list."""


def read_items(path: Path) -> Iterator[Any]:
    """Each element of the document's "items" list, in order (the caller drops those that are
    not objects). A document that is not JSON, or has no "items" list, is refused with the
    messages `json.loads` of the whole file led to before; the refusal may come after some
    items were yielded (what the caller made of them is its to discard)."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequestError(f"{path} does not exist.") from None
    except OSError as exc:
        raise InvalidRequestError(f"{path} is not a readable manifest ({exc}).") from None
    with handle:
        reader = _Reader(handle)
        try:
            yield from _items(reader)
        except _NotManifest:
            raise InvalidRequestError(
                f'{path} is not a kling manifest (no "items" list).'
            ) from None
        except (OSError, ValueError) as exc:
            raise InvalidRequestError(f"{path} is not a readable manifest ({exc}).") from None


def _items(reader: _Reader) -> Iterator[Any]:
    if reader.peek() != "{":
        reader.value()  # a whole other document (a list, a string): checked, then refused
        reader.end()
        raise _NotManifest
    reader.take()
    found = False
    if reader.peek() == "}":
        reader.take()
    else:
        while True:
            key = reader.value()
            if not isinstance(key, str):
                raise ValueError(f"Expecting property name enclosed in double quotes: {key!r}")
            reader.expect(":")
            if key == "items" and reader.peek() == "[":
                found = True
                yield from _elements(reader)
            else:
                reader.value()  # "version", or a field kling does not write: small
            if reader.next_of(",}") == "}":
                break
    reader.end()
    if not found:
        raise _NotManifest


def _elements(reader: _Reader) -> Iterator[Any]:
    reader.take()  # "["
    if reader.peek() == "]":
        reader.take()
        return
    while True:
        yield reader.value()
        if reader.next_of(",]") == "]":
            return


class _Reader:
    """JSON values taken from a text file one at a time, through a window of the file."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.buffer = ""
        self.at = 0
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buffer = self.buffer[self.at :] + chunk
        self.at = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            match = _SPACE.match(self.buffer, self.at)
            self.at = match.end() if match else self.at
            if self.at < len(self.buffer):
                return self.buffer[self.at]
            if not self._more():
                return ""

    def take(self) -> None:
        self.at += 1

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"Expecting {char!r} at {self._where()}")
        self.take()

    def next_of(self, chars: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            raise ValueError(f"Expecting one of {chars!r} at {self._where()}")
        self.take()
        return found

    def value(self) -> Any:
        """The next whole value. One that ends where the window ends is read again with more
        of the file: a number cut by the window would otherwise be read short."""
        if not self.peek():
            raise ValueError("Expecting value: the file ends early")
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise
            if end == len(self.buffer) and self._more():
                continue
            self.at = end
            return value

    def end(self) -> None:
        if self.peek():
            raise ValueError(f"Extra data at {self._where()}")

    def _where(self) -> str:
        return f"{self.buffer[self.at : self.at + 20]!r}"
