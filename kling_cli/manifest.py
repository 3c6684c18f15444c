"""Batch manifests: reading a JSONL or CSV file into items, and validating every item against
the documented limits and its provider before anything is submitted."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import shutil
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from kling_cli.errors import InvalidRequestError
from kling_cli.naming import safe_name
from kling_cli.providers import PROVIDERS, Registry
from kling_cli.providers.base import Provider

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

# Item fields, with the names a manifest may use for each.
FIELD_ALIASES: dict[str, str] = {
    "id": "id",
    "prompt": "prompt",
    "provider": "provider",
    "refs": "references",
    "ref": "references",
    "references": "references",
    "aspect_ratio": "aspect_ratio",
    "resolution": "resolution",
    "num_images": "num_images",
    "n": "num_images",
    "format": "output_format",
    "output_format": "output_format",
    "negative_prompt": "negative_prompt",
    "mode": "mode",
    "webhook": "webhook",
    "quality": "quality",
    "upload_to": "upload_to",
    "safety": "safety",
    "url_ttl": "url_ttl",
}
# The names a manifest is told about (the aliases still work).
FIELD_NAMES = sorted(set(FIELD_ALIASES) - {"ref", "n", "references"})


@dataclass(frozen=True)
class BatchItem:
    line: int  # 1-based line in the file (CSV: counting the header)
    fields: Mapping[str, Any]

    @cached_property  # asked for many times per item; safe_name is not cheap
    def item_id(self) -> str:
        """The item's id made safe as a file name on every system (it names the files)."""
        fallback = f"item-{self.line}"
        return safe_name(str(self.fields.get("id") or fallback), fallback=fallback)


@dataclass
class PlannedItem:
    item: BatchItem
    provider: Provider
    request: Any  # GenerationRequest (pydantic is imported lazily)
    key: str = ""
    # A batch spread over several providers (`-p a,b,c`): those that can serve this item, any
    # of which may make it; empty for an item that names its provider (it stays on it).
    alternatives: tuple[Provider, ...] = ()


# How many bad lines one error lists before it only counts the rest.
MAX_REPORTED_PROBLEMS = 20
BOM = "\ufeff"
EXPECTED_SHAPE = "JSONL (one JSON object per line) or CSV (a header row naming the fields)"


class _Problems:
    """Every bad line of a manifest, reported together so one run shows them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, line: int, message: str) -> None:
        self.lines.append(f"{self.source} line {line}: {message}")

    def raise_if_any(self) -> None:
        if not self.lines:
            return
        if len(self.lines) == 1:
            raise InvalidRequestError(self.lines[0])
        shown = self.lines[:MAX_REPORTED_PROBLEMS]
        more = len(self.lines) - len(shown)
        listed = "\n".join(f"  {line}" for line in shown)
        tail = f"\n  and {more} more." if more else ""
        raise InvalidRequestError(
            f"{len(self.lines)} lines of {self.source} are invalid; nothing was submitted:\n"
            f"{listed}{tail}"
        )


def read_items(text: str, *, source: str) -> list[BatchItem]:
    """The items of a manifest held as text (`iter_items`, all at once)."""
    return list(iter_items(io.StringIO(text), source=source))


def iter_items(handle: TextIO, *, source: str) -> Iterator[BatchItem]:
    """The items of a manifest, read line by line from `handle`: JSONL (one object per line)
    or CSV (a header row names the fields), as text decoded from UTF-8; a leading byte order
    mark (Excel's "CSV UTF-8") is ignored. Always at least one item: raises
    InvalidRequestError naming the expected shape for an empty file, a JSON array, a
    header-only CSV or a file that is neither, and, once every line is read, naming every bad
    line (up to MAX_REPORTED_PROBLEMS)."""
    head: list[str] = []
    for line in handle:
        head.append(line.removeprefix(BOM) if not head else line)
        if head[-1].strip():
            break
    stripped = "".join(head).lstrip()
    if not stripped:
        raise InvalidRequestError(f"{source} has no items; expected {EXPECTED_SHAPE}.")
    if stripped.startswith("["):
        raise InvalidRequestError(
            f"{source} is a JSON array; expected {EXPECTED_SHAPE}. Put each object on its own line."
        )
    lines = itertools.chain(head, handle)
    if stripped.startswith("{"):
        return _read_jsonl(lines, source)
    return _read_csv(lines, source, first_line=head[0] if head else "")


def _read_jsonl(lines: Iterable[str], source: str) -> Iterator[BatchItem]:
    problems = _Problems(source)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            problems.add(number, f"not valid JSON ({exc}).")
            continue
        if not isinstance(value, dict):
            problems.add(number, "expected a JSON object.")
            continue
        yield BatchItem(number, value)
    problems.raise_if_any()


def _read_csv(lines: Iterable[str], source: str, first_line: str) -> Iterator[BatchItem]:
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or ()]
    if not any(name in FIELD_ALIASES for name in header):
        raise InvalidRequestError(
            f"{source} is neither JSONL nor CSV with a header row naming the fields "
            f"({', '.join(FIELD_NAMES)}); its first line is {first_line.rstrip(chr(10))[:80]!r}."
        )
    problems = _Problems(source)
    count = 0
    for row in reader:
        fields: dict[str, Any] = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        refs = fields.pop("refs", None) or fields.pop("ref", None) or fields.pop("references", None)
        if refs:
            # Only `|` separates references: paths and URLs may hold spaces.
            fields["refs"] = [r.strip() for r in refs.split("|") if r.strip()]
        for number_field in ("num_images", "n", "quality", "url_ttl"):
            if number_field in fields:
                try:
                    fields[number_field] = int(fields[number_field])
                except ValueError:
                    problems.add(
                        reader.line_num,
                        f"field {number_field}: {fields[number_field]!r} is not a whole number.",
                    )
        count += 1
        yield BatchItem(reader.line_num, fields)
    problems.raise_if_any()
    if not count:
        raise InvalidRequestError(
            f"{source} has a header row but no items; add one row per item below it."
        )


def shard_filter(shard: str | None) -> Callable[[BatchItem], bool] | None:
    """`K/N`: whether an item's id hashes to the K-th of N slices. By the id, not the
    position: a line inserted in the manifest moves no other item to another shard (so no
    shard pays for an item another one made). Items without an id are placed by their line
    number. None without a shard."""
    if shard is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InvalidRequestError(
            f"--shard {shard!r} must be K/N with 1 <= K <= N, e.g. 2/4 for the second of four."
        )
    k, n = int(match[1]), int(match[2])
    return lambda item: shard_of(item.item_id, n) == k


def shard_of(item_id: str, shards: int) -> int:
    """The shard (1..`shards`) an item id belongs to: a stable hash, the same on every
    machine and Python version."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def expand_variants(
    items: Iterable[BatchItem],
    *,
    source: str = "the manifest",
    default_aspect: Any = None,
) -> Iterator[BatchItem]:
    """An item whose `aspect_ratio` is a list (`["16:9", "1:1"]`, `"16:9,1:1"` or `"all"`),
    or that has none when the default (`batch -a`) is one, becomes one item per ratio, with
    the ratio in its id (`hero-16x9`), on the same line. Once every item is seen, every bad
    list is named (`InvalidRequestError`); callers check the whole stream before planning."""
    from kling_cli.jobs.variants import ratio_list, variant_id

    if default_aspect is not None:
        ratio_list(default_aspect)  # a bad default is one error, not one per item
    problems = _Problems(source)
    for item in items:
        aspect = item.fields.get("aspect_ratio")
        try:
            ratios = ratio_list(aspect, what="aspect_ratio")
            if aspect is None:
                ratios = ratio_list(default_aspect)
        except InvalidRequestError as exc:
            problems.add(item.line, exc.message)
            continue
        if ratios is None:
            yield item
            continue
        for ratio in ratios:
            fields = {**item.fields, "id": variant_id(item.item_id, ratio), "aspect_ratio": ratio}
            yield BatchItem(item.line, fields)
    problems.raise_if_any()


def id_hash(item_id: str) -> int:
    """64 bits of an item id, to tell ids apart in 8 bytes each."""
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(), "big")


def repeated_id_hashes(items: Iterable[BatchItem]) -> set[int]:
    """The id hashes (`id_hash`) more than one item has: what `plan_items` must watch for
    duplicate ids, found in 8 bytes per item instead of a dict of every id."""
    hashes = array("Q", (id_hash(item.item_id) for item in items))
    ordered = sorted(hashes)
    del hashes
    return {a for a, b in itertools.pairwise(ordered) if a == b}


def plan_items(
    items: Iterable[BatchItem],
    defaults: Mapping[str, Any],
    *,
    source: str,
    default_provider: str | None,
    registry: Registry = PROVIDERS,
    spread: Sequence[str] = (),
    repeated: set[int] | None = None,
) -> Iterator[PlannedItem]:
    """Validate every item against the documented limits and its provider's capabilities,
    before anything is submitted, yielding each valid one. Once every item is seen, raises
    InvalidRequestError naming every bad item's line and problem (up to
    MAX_REPORTED_PROBLEMS, then how many more) when any is bad. `spread`: the providers an
    item that names none may go to; it is planned on the first that serves it. `repeated`
    (`repeated_id_hashes`) limits the duplicate-id check to the ids that may be repeated, so
    that nothing is kept per item; None checks every id."""
    problems = _Problems(source)
    seen_ids: dict[str, int] = {}
    uploads: dict[str, tuple[str, int]] = {}  # upload URL: the item id and line that has it
    for item in items:
        item_id = item.item_id
        unknown = [name for name in item.fields if name not in FIELD_ALIASES]
        if unknown:
            problems.add(
                item.line, f"unknown field {unknown[0]!r}; fields are {', '.join(FIELD_NAMES)}."
            )
            continue
        if repeated is None or (repeated and id_hash(item_id) in repeated):
            if item_id in seen_ids:
                problems.add(
                    item.line,
                    f"id {item_id!r} is already used on line {seen_ids[item_id]}; ids "
                    "name the output files, so they must be unique.",
                )
                continue
            seen_ids[item_id] = item.line
        try:
            plan = plan_item(
                item, defaults, default_provider=default_provider, registry=registry, spread=spread
            )
        except InvalidRequestError as exc:
            problems.add(item.line, exc.message)
            continue
        upload_to = plan.request.upload_to
        if upload_to is not None:
            first_id, first_line = uploads.setdefault(upload_to, (item_id, item.line))
            if first_id != item_id:
                problems.add(
                    item.line,
                    f"--upload-to is line {first_line}'s upload URL too; each image needs its "
                    "own (the provider PUTs each image there, each over the last).",
                )
                continue
        yield plan
    problems.raise_if_any()


def plan_item(
    item: BatchItem,
    defaults: Mapping[str, Any],
    *,
    default_provider: str | None,
    registry: Registry = PROVIDERS,
    spread: Sequence[str] = (),
) -> PlannedItem:
    """One item's provider and request, checked against the documented limits and the
    provider's capabilities (`InvalidRequestError` when it is not valid): its own provider,
    else the first of `spread` that serves it (the first one's reason when none does), else
    `default_provider`."""
    fields = {FIELD_ALIASES[name]: value for name, value in item.fields.items()}
    named = fields.pop("provider", None)
    candidates = [named or default_provider] if named or not spread else list(spread)
    fields.pop("id", None)
    merged = {**defaults, **fields}
    if isinstance(merged.get("references"), str):
        merged["references"] = [merged["references"]]
    refusals: list[str] = []
    for provider_id in candidates:
        try:
            provider, request = _checked(provider_id, dict(merged), registry)
        except InvalidRequestError as exc:
            refusals.append(exc.message)
            continue
        return PlannedItem(item, provider, request)
    raise InvalidRequestError(refusals[0])


def _checked(
    provider_id: str | None, merged: dict[str, Any], registry: Registry
) -> tuple[Provider, GenerationRequest]:
    """The item's request as `provider_id` takes it, checked against its capabilities."""
    from kling_cli.request import build_request

    if provider_id is None:
        raise InvalidRequestError(
            "no provider: give the item a provider field, or pass --provider."
        )
    provider = registry.lookup(str(provider_id))
    if merged.get("aspect_ratio") is None and "auto" not in provider.capabilities.aspect_ratios:
        merged["aspect_ratio"] = "1:1"
    request = build_request(**merged)
    provider.check_request(request)
    return provider, request


class Spool:
    """A manifest's bytes copied once into a private temporary file, read again by each pass
    over the items (validation, then the run): nothing is held per item, and a manifest
    edited or a pipe closed while the run goes on changes nothing of what was checked."""

    def __init__(self, data: BinaryIO) -> None:
        import tempfile
        import weakref

        fd, name = tempfile.mkstemp(prefix="kling-manifest-", suffix=".spool")
        self.path = Path(name)
        self._remove = weakref.finalize(self, self.path.unlink, missing_ok=True)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out)

    def items(self, *, source: str) -> Callable[[], Iterator[BatchItem]]:
        """A fresh iterator over the items at every call (`iter_items`)."""

        def read() -> Iterator[BatchItem]:
            with self.path.open(encoding="utf-8") as handle:
                yield from iter_items(handle, source=source)

        return read

    def close(self) -> None:
        self._remove()
