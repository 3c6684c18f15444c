"""Output file names from a template, safe on every file system.

Placeholders: {id} {job} {task} {index} {provider} {date} {time} {slug} {aspect} {resolution}
{ext}, with Python format specs (`{index:02d}`). `{ext}` may only end the template (the
extension comes from the downloaded bytes); when a task makes several images and the template
has no `{index}`, `-1`, `-2`, ... is added. Every name, with the suffixes kling adds, fits the
file system's limit of 255 bytes.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping
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
# A file name's limit on ext4, APFS, NTFS (in UTF-16 units, which a UTF-8 byte count bounds)
# and most others: 255 bytes.
MAX_FILE_NAME_BYTES = 255
# The longest name derived from a stem: the sidecar's temporary file
# `.{stem}-{n}.{ext}.json.{pid}.part`, with a collision number up to 9999, the longest
# extension and a pid up to Linux's maximum (4194304). The image's own `.{stem}.{pid}.part`
# is shorter.
LONGEST_DERIVED_SUFFIX = len(".") + len("-9999") + len(".webp") + len(".json.4194304.part")
MAX_STEM_BYTES = MAX_FILE_NAME_BYTES - LONGEST_DERIVED_SUFFIX
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+|\s+')
SLUG_WORDS = 4
SLUG_CHARS = 40
# Stand-ins for values only known once a job runs, as long as real ones can be.
SAMPLE_JOB_ID = "261123-" + "f" * 16
SAMPLE_TASK_ID = "f" * 8


def _clean(text: str) -> str:
    """`text` as one path component, not yet cut to length."""
    normalized = unicodedata.normalize("NFKC", text)
    cleaned = UNSAFE.sub("-", normalized).strip(" .-")
    return re.sub(r"-{2,}", "-", cleaned)


def _fit(cleaned: str, fallback: str) -> str:
    from pathvalidate import sanitize_filename

    # pathvalidate knows every system's reserved names (CON, COM1.txt, ...) and cuts by bytes
    # on a character boundary.
    fitted = sanitize_filename(
        cleaned[:MAX_NAME_CHARS].strip(" .-"),
        platform="universal",
        max_len=MAX_STEM_BYTES,
        fs_encoding="utf-8",
    )
    return str(fitted).strip(" .-") or fallback


@functools.lru_cache(maxsize=4096)  # a batch asks for each item's id ~9 times (pathvalidate)
def safe_name(text: str, *, fallback: str = "image") -> str:
    """One path component: no separators or characters Windows refuses, no leading dot, no
    reserved device name, at most MAX_NAME_CHARS characters and MAX_STEM_BYTES bytes in UTF-8
    (so that every file named after it fits 255 bytes)."""
    return _fit(_clean(text), fallback)


def slug(prompt: str, words: int = SLUG_WORDS) -> str:
    """The prompt's first `words` words, transliterated to lower-case ASCII (a Chinese prompt
    keeps its meaning as pinyin), at most SLUG_CHARS characters; `kling` when nothing is left."""
    from slugify import slugify

    first_words = " ".join(prompt.split()[:words])
    return str(slugify(first_words, max_length=SLUG_CHARS, word_boundary=True)) or "kling"


def _fields(template: str) -> list[str]:
    """The placeholder names of `template`; InvalidRequestError for an unbalanced brace."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        raise InvalidRequestError(
            f"--name {template!r} has an unbalanced brace; placeholders are written "
            "{slug}, and a literal brace as {{ or }}."
        ) from None


def check_template(template: str) -> str:
    """Refuse, before any network call, a template kling-cli cannot fill: an unbalanced brace,
    an unknown placeholder, a format spec its value does not take, `{ext}` not at the end, a
    path, or a name that would be too long whatever the prompt. Returns `template`."""
    fields = _fields(template)
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
    # One image: the job's real count is the preflight's to check (`check_names`).
    check_names(template, count=1, prompt="x" * SLUG_CHARS)
    return template


def check_names(
    template: str,
    *,
    count: int,
    prompt: str = "",
    provider: str = "provider",
    aspect: str = "1:1",
    resolution: str = "1k",
    item_id: str | None = None,
    job_id: str = SAMPLE_JOB_ID,
    task_id: str = SAMPLE_TASK_ID,
) -> None:
    """Refuse, before any submit, a `--name` template that would fail once images exist.

    Renders the stem of every image index 1..`count` of one job (the values as `Naming`
    gets them; `job_id` and `task_id` default to stand-ins as long as real ones) and raises
    InvalidRequestError (exit 2, one sentence naming the template and what is allowed) when
    the template is malformed (unbalanced brace, unknown placeholder, `{ext}` not last, a
    path), a format spec does not suit its value (`{index:02d}` works, `{slug:d}` does not:
    `{index}` is a whole number, every other value text), or a rendered name would pass
    MAX_STEM_BYTES bytes in UTF-8: the file system's 255-byte limit (ext4, APFS, NTFS) less
    the longest suffix kling adds (`-N`, the extension, the sidecar's `.json` and the
    temporary `.{pid}.part`). Returns None when every name renders and fits."""
    if count < 1:
        return
    naming = Naming(template, job_id, provider, prompt, aspect, resolution, item_id)
    for index in range(1, count + 1):
        try:
            raw = naming.render_raw(task_id, index, count)
        except InvalidRequestError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise InvalidRequestError(
                f"--name {template!r} does not render ({exc}); format specs must suit the "
                "value: {index} is a whole number (e.g. {index:02d}), the others are text "
                "(e.g. {slug:.20})."
            ) from None
        size = len(_clean(raw).encode())
        if size > MAX_STEM_BYTES:
            raise InvalidRequestError(
                f"--name {template!r} makes file names of {size} bytes; with the suffixes "
                f"kling adds, a name may have at most {MAX_STEM_BYTES} bytes (the file "
                f"system allows {MAX_FILE_NAME_BYTES})."
            )


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

    def _values(
        self, task_id: str, index: int, started: datetime, needed: Iterable[str]
    ) -> Mapping[str, object]:
        values: dict[str, Callable[[], str]] = {
            "id": lambda: self.item_id or self.job_id,
            "job": lambda: self.job_id,
            "task": lambda: re.sub(r"[^A-Za-z0-9]", "", task_id)[:8] or "task",
            "provider": lambda: self.provider,
            "date": lambda: f"{started:%Y%m%d}",
            "time": lambda: f"{started:%H%M%S}",
            "slug": lambda: slug(self.prompt),
            "aspect": lambda: self.aspect.replace(":", "x"),
            "resolution": lambda: self.resolution,
            "ext": lambda: "",
        }
        # Only the placeholders the template uses: making a value safe costs (pathvalidate,
        # the slug's transliteration), and a batch renders every item's names more than once.
        # `{index}` stays a number so that `{index:02d}` pads it.
        return {
            **{k: safe_name(values[k](), fallback=k) for k in needed if k in values},
            "index": index,
        }

    def render_raw(
        self, task_id: str, index: int, count: int, started: datetime | None = None
    ) -> str:
        """The stem before it is made safe and cut to length; the formatting errors of
        `str.format` (ValueError, KeyError, ...) for a template that does not render."""
        template = self.template.removesuffix(".{ext}").removesuffix("{ext}")
        try:
            needed = {re.split(r"[.\[]", name, maxsplit=1)[0] for name in _fields(template)}
        except InvalidRequestError:  # unbalanced: str.format says so below, as it always did
            needed = set(PLACEHOLDERS)
        values = self._values(task_id, index, started or datetime.now(UTC), needed)
        rendered = template.format_map(values)
        if count > 1 and "index" not in _fields(template):
            rendered = f"{rendered}-{index}"
        return rendered

    def stem_for(self) -> Callable[[str, int, int], str]:
        started = datetime.now(UTC)

        def render(task_id: str, index: int, count: int) -> str:
            return safe_name(self.render_raw(task_id, index, count, started))

        return render


def check_skippable(template: str) -> None:
    used = set(_fields(template))
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
