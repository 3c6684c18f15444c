"""Output file names from a template, safe on every file system.

Placeholders: {id} {job} {task} {index} {provider} {date} {time} {slug} {aspect} {resolution}
{ext}. `{ext}` may only end the template (the extension comes from the downloaded bytes); when
a task makes several images and the template has no `{index}`, `-1`, `-2`, ... is added.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kling_cli.errors import InvalidRequestError

PLACEHOLDERS = (
    "id",
    "job",
    "task",
    "index",
    "provider",
    "date",
    "time",
    "slug",
    "aspect",
    "resolution",
    "ext",
)
DEFAULT_TEMPLATE = "{slug}-{task}"
# Placeholders whose value is only known once a run starts: a name using them cannot be
# checked for on disk beforehand.
RUN_DEPENDENT = ("task", "job", "date", "time")
IMAGE_EXTENSIONS = ("png", "jpg", "webp")
MAX_NAME_CHARS = 120
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+|\s+')
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}
)


def safe_name(text: str, *, fallback: str = "image") -> str:
    """One path component: no separators or characters Windows refuses, no leading dot, no
    reserved device name, not too long."""
    normalized = unicodedata.normalize("NFKC", text)
    cleaned = UNSAFE.sub("-", normalized).strip(" .-")[:MAX_NAME_CHARS].strip(" .-")
    cleaned = re.sub(r"-{2,}", "-", cleaned) or fallback
    base, dot, rest = cleaned.partition(".")
    if base.upper() in WINDOWS_RESERVED:
        # `CON`, and `CON.txt` too, name devices on Windows.
        cleaned = f"{base}_{dot}{rest}"
    return cleaned


def slug(prompt: str, words: int = 4) -> str:
    found = re.findall(r"[a-z0-9]+", prompt.lower())[:words]
    return "-".join(found)[:40].strip("-") or "kling"


def check_template(template: str) -> str:
    """Refuse, before any network call, a template kling-cli cannot fill."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InvalidRequestError(
            f"--name {template!r} is not a valid template ({exc}); write a literal brace as "
            "{{ or }}."
        ) from None
    unknown = sorted(set(fields) - set(PLACEHOLDERS))
    if unknown:
        raise InvalidRequestError(
            f"--name has unknown placeholder {{{unknown[0]}}}; use "
            f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}."
        )
    if "ext" in fields and not template.endswith("{ext}"):
        raise InvalidRequestError("--name may use {ext} only at its end, e.g. '{id}.{ext}'.")
    if "/" in template or "\\" in template:
        raise InvalidRequestError("--name is a file name, not a path; use --output-dir for that.")
    return template


@dataclass(frozen=True)
class Naming:
    """Renders file stems (names without extension) for one job."""

    template: str
    job_id: str
    provider: str
    prompt: str
    aspect: str
    resolution: str
    item_id: str | None = None

    def stem_for(self) -> Callable[[str, int, int], str]:
        started = datetime.now(UTC)

        def render(task_id: str, index: int, count: int) -> str:
            values: Mapping[str, str] = {
                "id": self.item_id or self.job_id,
                "job": self.job_id,
                "task": re.sub(r"[^A-Za-z0-9]", "", task_id)[:8] or "task",
                "index": str(index),
                "provider": self.provider,
                "date": f"{started:%Y%m%d}",
                "time": f"{started:%H%M%S}",
                "slug": slug(self.prompt),
                "aspect": self.aspect.replace(":", "x"),
                "resolution": self.resolution,
                "ext": "",
            }
            template = self.template.removesuffix(".{ext}").removesuffix("{ext}")
            rendered = template.format_map({k: safe_name(v, fallback=k) for k, v in values.items()})
            if count > 1 and "{index}" not in template:
                rendered = f"{rendered}-{index}"
            return safe_name(rendered)

        return render


def check_skippable(template: str) -> None:
    used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    blocking = [name for name in RUN_DEPENDENT if name in used]
    if blocking:
        raise InvalidRequestError(
            f"--skip-existing needs a --name that is known before the run; "
            f"{{{blocking[0]}}} is not (use e.g. '{{slug}}' or, in a batch, '{{id}}')."
        )


def existing_outputs(directory: Path, naming: Naming, count: int) -> list[Path] | None:
    """The images a run named this way would write, when all of them exist already."""
    render = naming.stem_for()
    found = []
    for index in range(1, count + 1):
        stem = render("", index, count)
        match = next(
            (
                directory / f"{stem}.{ext}"
                for ext in IMAGE_EXTENSIONS
                if (directory / f"{stem}.{ext}").exists()
            ),
            None,
        )
        if match is None:
            return None
        found.append(match)
    return found
