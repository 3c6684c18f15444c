"""Field-by-field checking of JSON request bodies, shared by the providers added after the seeds.

Problems are collected the way pydantic/FastAPI report them (`loc`, `msg`, `type`, `ctx`),
because fal and Comfy Router document exactly that shape for their 422 answers
(fal's "Model Errors" docs; Comfy Router's errors page). The other providers render the same
problems in their own error envelopes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc  # below the body: ("num_images",), ("image_urls", 3)
    msg: str
    type: str
    ctx: dict[str, Any] | None = field(default=None, compare=False)

    def detail(self) -> dict[str, Any]:
        """One entry of a FastAPI-style `{"detail": [...]}` body."""
        item: dict[str, Any] = {"loc": ["body", *self.loc], "msg": self.msg, "type": self.type}
        if self.ctx:
            item["ctx"] = self.ctx
        return item

    @property
    def path(self) -> str:
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def sentence(self) -> str:
        return f"{self.path}: {self.msg}" if self.loc else self.msg


class Invalid(Exception):
    """The body does not match the documented schema."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.sentence() for problem in problems))
        self.problems = problems

    def details(self) -> list[dict[str, Any]]:
        return [problem.detail() for problem in self.problems]


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Invalid([Problem((), "JSON decode error", "json_invalid")]) from None


def _quoted_choices(choices: Sequence[str]) -> str:
    quoted = [f"'{choice}'" for choice in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class Fields:
    """Reads one JSON object. Every reader returns a usable value (the default when the field
    is absent, null or wrong) and records what was wrong; `finish()` raises them all."""

    def __init__(self, payload: Any, allowed: Collection[str] | None, loc: Loc = ()) -> None:
        self.loc = loc
        self.problems: list[Problem] = []
        if not isinstance(payload, dict):
            self.payload: dict[str, Any] = {}
            self.add((), "Input should be a valid dictionary", "dict_type")
            return
        self.payload = payload
        if allowed is not None:
            for name in payload:
                if name not in allowed:
                    self.add((name,), "Extra inputs are not permitted", "extra_forbidden")

    def add(self, loc: Loc, msg: str, kind: str, ctx: dict[str, Any] | None = None) -> None:
        self.problems.append(Problem((*self.loc, *loc), msg, kind, ctx))

    def has(self, name: str) -> bool:
        return self.payload.get(name) is not None

    def raw(self, name: str) -> Any:
        return self.payload.get(name)

    def _present(self, name: str, required: bool) -> Any:
        # null counts as absent: the documented optional fields are nullable (Comfy's
        # model_name says so explicitly, Router model page); the others are inferred to behave
        # the same.
        value = self.payload.get(name)
        if value is None and required:
            self.add((name,), "Field required", "missing")
        return value

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        default: str | None = None,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> str | None:
        value = self._present(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.add((name,), "Input should be a valid string", "string_type")
            return default
        if len(value) < min_length:
            self.add(
                (name,),
                f"String should have at least {min_length} character"
                + ("s" if min_length > 1 else ""),
                "string_too_short",
                {"min_length": min_length},
            )
        if max_length is not None and len(value) > max_length:
            self.add(
                (name,),
                f"String should have at most {max_length} characters",
                "string_too_long",
                {"max_length": max_length},
            )
        return value

    def integer(self, name: str, *, default: int, ge: int, le: int) -> int:
        value = self._present(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.add((name,), "Input should be a valid integer", "int_type")
            return default
        if value < ge:
            self.add(
                (name,),
                f"Input should be greater than or equal to {ge}",
                "greater_than_equal",
                {"ge": ge},
            )
            return default
        if value > le:
            self.add(
                (name,),
                f"Input should be less than or equal to {le}",
                "less_than_equal",
                {"le": le},
            )
            return default
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._present(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add((name,), "Input should be a valid boolean", "bool_type")
            return default
        return value

    def choice(self, name: str, choices: Sequence[str], *, default: str) -> str:
        value = self._present(name, False)
        if value is None:
            return default
        if value not in choices:
            expected = _quoted_choices(choices)
            self.add(
                (name,), f"Input should be {expected}", "literal_error", {"expected": expected}
            )
            return default
        return str(value)

    def items(
        self, name: str, *, required: bool = False, min_items: int = 0, max_items: int
    ) -> list[Any]:
        value = self._present(name, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add((name,), "Input should be a valid list", "list_type")
            return []
        if len(value) < min_items:
            self.add(
                (name,),
                f"List should have at least {min_items} item"
                + ("s" if min_items > 1 else "")
                + f" after validation, not {len(value)}",
                "too_short",
                {"field_type": "List", "min_length": min_items, "actual_length": len(value)},
            )
        if len(value) > max_items:
            self.add(
                (name,),
                f"List should have at most {max_items} items after validation, not {len(value)}",
                "too_long",
                {"field_type": "List", "max_length": max_items, "actual_length": len(value)},
            )
        return value

    def finish(self) -> None:
        if self.problems:
            raise Invalid(self.problems)
