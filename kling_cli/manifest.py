"""Batch manifests: reading a JSONL or CSV file into items, and validating every item against
the documented limits and its provider before anything is submitted."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kling_cli.errors import InvalidRequestError
from kling_cli.naming import safe_name
from kling_cli.providers import get_provider
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
}


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


def read_items(text: str, *, source: str) -> list[BatchItem]:
    """JSONL (one object per line) or CSV (a header row names the fields)."""
    stripped = text.lstrip()
    if not stripped:
        raise InvalidRequestError(f"{source} has no items.")
    if stripped.startswith("{"):
        return _read_jsonl(text, source)
    return _read_csv(text, source)


def _read_jsonl(text: str, source: str) -> list[BatchItem]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise InvalidRequestError(f"{source} line {number}: not valid JSON ({exc}).") from None
        if not isinstance(value, dict):
            raise InvalidRequestError(f"{source} line {number}: expected a JSON object.")
        items.append(BatchItem(number, value))
    return items


def _read_csv(text: str, source: str) -> list[BatchItem]:
    reader = csv.DictReader(io.StringIO(text))
    items = []
    for row in reader:
        fields: dict[str, Any] = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        refs = fields.pop("refs", None) or fields.pop("ref", None) or fields.pop("references", None)
        if refs:
            # Several references in one cell, separated by `|` or whitespace.
            fields["refs"] = [r for r in re.split(r"[|\s]+", refs) if r]
        for number_field in ("num_images", "n"):
            if number_field in fields:
                try:
                    fields[number_field] = int(fields[number_field])
                except ValueError:
                    raise InvalidRequestError(
                        f"{source} line {reader.line_num}, field {number_field}: "
                        f"{fields[number_field]!r} is not a whole number."
                    ) from None
        items.append(BatchItem(reader.line_num, fields))
    return items


def select_shard(items: list[BatchItem], shard: str | None) -> list[BatchItem]:
    """`K/N`: the K-th of N deterministic slices (every N-th item, starting at the K-th)."""
    if shard is None:
        return items
    match = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InvalidRequestError(
            f"--shard {shard!r} must be K/N with 1 <= K <= N, e.g. 2/4 for the second of four."
        )
    k, n = int(match[1]), int(match[2])
    return [item for index, item in enumerate(items) if index % n == k - 1]


def plan_items(
    items: Iterable[BatchItem],
    defaults: Mapping[str, Any],
    *,
    source: str,
    default_provider: str | None,
) -> list[PlannedItem]:
    """Validate every item against the documented limits and its provider's capabilities,
    before anything is submitted. The first bad item fails the run, naming line and field."""
    from kling_cli.request import build_request

    planned = []
    seen_ids: dict[str, int] = {}
    for item in items:
        fields: dict[str, Any] = {}
        for name, value in item.fields.items():
            canonical = FIELD_ALIASES.get(name)
            if canonical is None:
                raise InvalidRequestError(
                    f"{source} line {item.line}: unknown field {name!r}; fields are "
                    f"{', '.join(sorted(set(FIELD_ALIASES) - {'ref', 'n', 'references'}))}."
                )
            fields[canonical] = value
        if item.item_id in seen_ids:
            raise InvalidRequestError(
                f"{source} line {item.line}: id {item.item_id!r} is already used on line "
                f"{seen_ids[item.item_id]}; ids name the output files, so they must be unique."
            )
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
            provider = get_provider(str(provider_id))
            if (
                merged.get("aspect_ratio") is None
                and "auto" not in provider.capabilities.aspect_ratios
            ):
                merged["aspect_ratio"] = "1:1"
            request = build_request(**merged)
            provider.check_request(request)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{source} line {item.line}: {exc.message}") from None
        planned.append(PlannedItem(item, provider, request))
    return planned
