"""A `manifest.json` read one item at a time: its `items` list is yielded entry by entry, so
that a view of a batch of any size (the gallery, the Markdown summary) holds one entry, not
the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kling_cli.errors import InvalidRequestError

Event = tuple[str, Any]  # ijson's basic (event, value)
_STARTS = ("start_map", "start_array")
_ENDS = ("end_map", "end_array")


class _NotManifest(Exception):
    """Well-formed JSON, but not a document with an "items" list."""


def read_items(path: Path) -> Iterator[Any]:
    """Each element of the document's "items" list, in order (the caller drops those that are
    not objects), parsed by ijson as it is read. A document that is not JSON, or has no
    "items" list, raises InvalidRequestError; the refusal may come after some items were
    yielded (what the caller made of them is its to discard)."""
    import ijson  # type: ignore[import-untyped]

    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InvalidRequestError(f"{path} does not exist.") from None
    except OSError as exc:
        raise InvalidRequestError(f"{path} is not a readable manifest ({exc}).") from None
    with handle:
        try:
            # basic_parse, not parse: parse names every event by its full path, a string as
            # long as the nesting is deep, so a 100,000-level item held gigabytes of them.
            events = iter(ijson.basic_parse(handle, use_float=True))
            yield from _items(events, ijson.ObjectBuilder)
        except _NotManifest:
            raise InvalidRequestError(
                f'{path} is not a kling manifest (no "items" list).'
            ) from None
        except (OSError, ValueError, ijson.JSONError) as exc:
            # yajl's messages go on with a drawing of where it stopped: the first line says it.
            # yajl's lexical errors come as bytes, whose str() is one repr line holding it all.
            text = exc.args[0] if exc.args else ""
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(exc)
            detail = (text.strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidRequestError(f"{path} is not a readable manifest ({detail}).") from None


def _items(events: Iterator[Event], builder: Any) -> Iterator[Any]:
    """The elements of the top-level object's "items" array; every event is consumed, so
    what follows the list is checked to be JSON too."""
    first = next(events, None)
    if first is None or first[0] != "start_map":
        for _ in events:
            pass
        raise _NotManifest
    found, depth, key = False, 1, None
    for event, value in events:
        if depth == 1 and event == "map_key":
            key = value
        elif depth == 1 and key == "items" and event == "start_array":
            found = True
            yield from _elements(events, builder)
        elif event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
    if not found:
        raise _NotManifest


def _elements(events: Iterator[Event], builder: Any) -> Iterator[Any]:
    """The values of an array whose `start_array` was just read, up to its `end_array`."""
    for event, value in events:
        if event == "end_array":
            return
        if event not in _STARTS:
            yield value
            continue
        made, depth = builder(map_type=dict), 0
        while True:
            made.event(event, value)
            depth += 1 if event in _STARTS else -1 if event in _ENDS else 0
            if depth == 0:
                break
            event, value = next(events)
        yield made.value


def typed(item: dict[str, Any]) -> dict[str, Any]:
    """The item with the lists and objects the views walk made to be what they are named: a
    hand-edited or foreign manifest shows what it holds instead of stopping the page."""
    files = item.get("files")
    item["files"] = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    if not isinstance(item.get("request"), dict):
        item["request"] = {}
    if not isinstance(item.get("task_ids"), list):
        item["task_ids"] = []
    item["task_ids"] = [_shown(t) for t in item["task_ids"]]
    for key in _SHOWN:
        item[key] = _shown(item.get(key))
    request = item["request"]
    for key in ("prompt", "aspect_ratio", "resolution"):
        request[key] = _shown(request.get(key))
    return item


# The item's fields printed as text: a list or object there (nested beyond what str() can
# recurse into, or unhashable where a status is looked up) is shown, never walked.
_SHOWN = ("id", "status", "provider", "error", "skip_reason", "job_id")


def _shown(value: Any) -> Any:
    if not isinstance(value, list | dict):
        return value
    try:
        return str(value)
    except RecursionError:
        return "(nested too deep to show)"
