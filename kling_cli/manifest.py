"""Batch manifests: reading a JSONL or CSV file into items, and validating every item against
the documented limits and its provider before anything is submitted."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kling_cli.errors import InvalidRequestError
from kling_cli.naming import safe_name
from kling_cli.providers import PROVIDERS, Registry
from kling_cli.providers.base import Provider

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

    @property
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
    """The items of a manifest: JSONL (one object per line) or CSV (a header row names the
    fields), as text already decoded from UTF-8; a leading byte order mark (Excel's "CSV
    UTF-8") is ignored. Always at least one item: raises InvalidRequestError naming the
    expected shape for an empty file, a JSON array, a header-only CSV or a file that is
    neither, and naming every bad line (up to MAX_REPORTED_PROBLEMS) otherwise."""
    text = text.removeprefix(BOM)
    stripped = text.lstrip()
    if not stripped:
        raise InvalidRequestError(f"{source} has no items; expected {EXPECTED_SHAPE}.")
    if stripped.startswith("["):
        raise InvalidRequestError(
            f"{source} is a JSON array; expected {EXPECTED_SHAPE}. Put each object on its own line."
        )
    if stripped.startswith("{"):
        return _read_jsonl(text, source)
    return _read_csv(text, source)


def _read_jsonl(text: str, source: str) -> list[BatchItem]:
    items = []
    problems = _Problems(source)
    for number, line in enumerate(text.splitlines(), start=1):
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
        items.append(BatchItem(number, value))
    problems.raise_if_any()
    return items


def _read_csv(text: str, source: str) -> list[BatchItem]:
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or ()]
    if not any(name in FIELD_ALIASES for name in header):
        raise InvalidRequestError(
            f"{source} is neither JSONL nor CSV with a header row naming the fields "
            f"({', '.join(FIELD_NAMES)}); its first line is {text.splitlines()[0][:80]!r}."
        )
    items = []
    problems = _Problems(source)
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
        items.append(BatchItem(reader.line_num, fields))
    problems.raise_if_any()
    if not items:
        raise InvalidRequestError(
            f"{source} has a header row but no items; add one row per item below it."
        )
    return items


def select_shard(items: list[BatchItem], shard: str | None) -> list[BatchItem]:
    """`K/N`: the items whose id hashes to the K-th of N slices. By the id, not the position:
    a line inserted in the manifest moves no other item to another shard (so no shard pays
    for an item another one made). Items without an id are placed by their line number."""
    if shard is None:
        return items
    match = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InvalidRequestError(
            f"--shard {shard!r} must be K/N with 1 <= K <= N, e.g. 2/4 for the second of four."
        )
    k, n = int(match[1]), int(match[2])
    return [item for item in items if shard_of(item.item_id, n) == k]


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
) -> list[BatchItem]:
    """An item whose `aspect_ratio` is a list (`["16:9", "1:1"]`, `"16:9,1:1"` or `"all"`),
    or that has none when the default (`batch -a`) is one, becomes one item per ratio, with
    the ratio in its id (`hero-16x9`), on the same line. Every bad list is named
    (`InvalidRequestError`) before any item is planned."""
    from kling_cli.jobs.variants import ratio_list, variant_id

    if default_aspect is not None:
        ratio_list(default_aspect)  # a bad default is one error, not one per item
    expanded: list[BatchItem] = []
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
            expanded.append(item)
            continue
        for ratio in ratios:
            fields = {**item.fields, "id": variant_id(item.item_id, ratio), "aspect_ratio": ratio}
            expanded.append(BatchItem(item.line, fields))
    problems.raise_if_any()
    return expanded


def plan_items(
    items: Iterable[BatchItem],
    defaults: Mapping[str, Any],
    *,
    source: str,
    default_provider: str | None,
    registry: Registry = PROVIDERS,
) -> list[PlannedItem]:
    """Validate every item against the documented limits and its provider's capabilities,
    before anything is submitted. Raises InvalidRequestError naming every bad item's line and
    problem (up to MAX_REPORTED_PROBLEMS, then how many more) when any is bad."""
    from kling_cli.request import build_request

    planned = []
    problems = _Problems(source)
    seen_ids: dict[str, int] = {}
    upload_lines: dict[str, int] = {}
    for item in expand_variants(items, source=source, default_aspect=defaults.get("aspect_ratio")):
        fields: dict[str, Any] = {}
        unknown = [name for name in item.fields if name not in FIELD_ALIASES]
        if unknown:
            problems.add(
                item.line, f"unknown field {unknown[0]!r}; fields are {', '.join(FIELD_NAMES)}."
            )
            continue
        for name, value in item.fields.items():
            fields[FIELD_ALIASES[name]] = value
        if item.item_id in seen_ids:
            problems.add(
                item.line,
                f"id {item.item_id!r} is already used on line {seen_ids[item.item_id]}; ids "
                "name the output files, so they must be unique.",
            )
            continue
        seen_ids[item.item_id] = item.line
        provider_id = fields.pop("provider", None) or default_provider
        fields.pop("id", None)
        merged = {**defaults, **fields}
        if isinstance(merged.get("references"), str):
            merged["references"] = [merged["references"]]
        try:
            if provider_id is None:
                raise InvalidRequestError(
                    "no provider: give the item a provider field, or pass --provider."
                )
            provider = registry.lookup(str(provider_id))
            if (
                merged.get("aspect_ratio") is None
                and "auto" not in provider.capabilities.aspect_ratios
            ):
                merged["aspect_ratio"] = "1:1"
            request = build_request(**merged)
            provider.check_request(request)
        except InvalidRequestError as exc:
            problems.add(item.line, exc.message)
            continue
        if request.upload_to is not None:
            first = upload_lines.setdefault(request.upload_to, item.line)
            if first != item.line:
                problems.add(
                    item.line,
                    f"--upload-to is line {first}'s upload URL too; each image needs its own "
                    "(the provider PUTs each image there, each over the last).",
                )
                continue
        planned.append(PlannedItem(item, provider, request))
    problems.raise_if_any()
    return planned
