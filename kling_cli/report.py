"""A gallery of what batch runs made: `report.html` from one or more `manifest.json` files.

The page must browse offline from a CI artifact zip, so it has no script, no font and no
link outside its folder: thumbnails are small files next to it (made once; a re-run reuses
them) and every link is relative. Everything taken from a manifest is escaped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

REPORT_NAME = "report.html"
THUMBS_DIR = "thumbs"
_THUMB_SIZE = (320, 320)
_THUMB_QUALITY = 70


@dataclass(frozen=True)
class Totals:
    succeeded: int
    failed: int
    skipped: int
    images: int
    spend: float

    @property
    def items(self) -> int:
        return self.succeeded + self.failed + self.skipped


def read_entries(manifests: Sequence[Path]) -> Iterator[tuple[dict[str, Any], Path]]:
    """Every item of the manifests (several shards make one run of items), each with the
    folder of its manifest, where its relative file paths may also be found; read one at a
    time, so that a manifest of any size is never held whole."""
    from kling_cli.manifest_stream import read_items, typed

    for path in manifests:
        path = path / "manifest.json" if path.is_dir() else path
        for item in read_items(path):
            if isinstance(item, dict):
                yield typed(item), path.parent


class Tally:
    """The totals of entries counted as they go by."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("succeeded", "failed", "interrupted", "skipped"), 0)
        self.images = 0
        self.spend = 0.0

    def add(self, entry: Mapping[str, Any]) -> None:
        status = entry.get("status")
        if status in self.counts:
            self.counts[status] += 1
        cost = entry.get("cost")
        if isinstance(cost, int | float) and status != "skipped":
            self.spend += cost
        self.images += len(entry.get("files") or [])

    def totals(self) -> Totals:
        counts = self.counts
        return Totals(
            succeeded=counts["succeeded"],
            failed=counts["failed"] + counts["interrupted"],
            skipped=counts["skipped"],
            images=self.images,
            spend=round(self.spend, 6),
        )


def totals(entries: Iterable[Mapping[str, Any]]) -> Totals:
    tally = Tally()
    for entry in entries:
        tally.add(entry)
    return tally.totals()


def write_report(manifests: Sequence[Path], output: Path) -> Path:
    """Write the gallery for `manifests` to `output`, thumbnails in `thumbs/` beside it."""
    return write_entries(read_entries(manifests), output)


def write_entries(
    entries: Iterable[tuple[Mapping[str, Any], Path]], output: Path, *, title: str = "kling batch"
) -> Path:
    """The gallery of `entries` (manifest items, each with the folder its relative paths
    are found in) written to `output`: a batch's, or a `generate -a 16:9,1:1` run's. The
    cards are written as the entries come, to a file of their own, and the page around them
    once the totals its header shows are known: one entry is held at a time."""
    output.parent.mkdir(parents=True, exist_ok=True)
    report_dir = output.parent
    root = report_dir.resolve()  # once: resolving walks every folder of the path
    tally = Tally()
    temporary = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        # Anonymous, beside the page (a temporary folder in memory would hold the cards).
        with tempfile.TemporaryFile("w+", encoding="utf-8", dir=output.parent) as cards:
            separator = ""
            for entry, folder in entries:
                tally.add(entry)
                cards.write(separator + _card(entry, folder, report_dir, root))
                separator = "\n"
            head, tail = _PAGE.split("{cards}")
            title_text = escape(f"{title} report")
            with temporary.open("w", encoding="utf-8") as page:
                page.write(head.format(title=title_text, header=_header(tally.totals())))
                cards.seek(0)
                shutil.copyfileobj(cards, page)
                page.write(tail)
        temporary.replace(output)
    except BaseException:
        # A full disk, a manifest found unreadable or a signal midway leaves no half page.
        temporary.unlink(missing_ok=True)
        raise
    return output


def append_summary(manifests: Sequence[Path], path: Path) -> Path:
    """Append the totals and a compact table in Markdown to `path`: `$GITHUB_STEP_SUMMARY`
    collects a step's writes. The rows wait in a file of their own until the totals above
    them are known; nothing is appended if a manifest cannot be read."""
    tally = Tally()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as rows:
        for entry, _ in read_entries(manifests):
            tally.add(entry)
            rows.write(_summary_row(entry) + "\n")
        total = tally.totals()
        head = [
            "## kling batch",
            "",
            f"**{total.succeeded}** succeeded · **{total.failed}** failed · "
            f"**{total.skipped}** skipped · **{total.images}** images · spend ${total.spend:.2f}",
            "",
            "| id | status | provider | aspect | images | cost | note |",
            "|---|---|---|---|---|---|---|",
        ]
        # A full disk midway would leave half a table in the step's summary: it is cut back.
        start = path.stat().st_size if path.is_file() else 0
        try:
            with path.open("a", encoding="utf-8") as handle:
                handle.write("\n".join(head) + "\n")
                rows.seek(0)
                shutil.copyfileobj(rows, handle)
        except OSError as exc:
            if path.is_file():
                with contextlib.suppress(OSError):
                    os.truncate(path, start)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    return path


def _summary_row(entry: Mapping[str, Any]) -> str:
    request = entry.get("request") or {}
    note = entry.get("error") or entry.get("skip_reason") or ""
    cells = [
        entry.get("id"),
        entry.get("status"),
        entry.get("provider"),
        request.get("aspect_ratio"),
        len(entry.get("files") or []),
        _money(entry.get("cost")),
        note,
    ]
    return "| " + " | ".join(_md_cell(cell) for cell in cells) + " |"


def _md_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A pipe would end the cell and a newline the row; markup in a prompt stays text.
    return escape(" ".join(text.split())).replace("|", "\\|")


def _money(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "—"


def _header(total: Totals) -> str:
    parts = [
        ("items", total.items),
        ("succeeded", total.succeeded),
        ("failed", total.failed),
        ("skipped", total.skipped),
        ("images", total.images),
        ("spend", f"${total.spend:.2f}"),
    ]
    return "".join(
        f'<div class="total"><span class="n" id="total-{name}">{value}</span>{name}</div>'
        for name, value in parts
    )


def _card(entry: Mapping[str, Any], folder: Path, report_dir: Path, root: Path) -> str:
    request = entry.get("request") or {}
    status = str(entry.get("status") or "unknown")
    figures = []
    for file in entry.get("files") or []:
        image = _find(str(file.get("path", "")), folder)
        if image is None:
            figures.append('<div class="missing">file not found</div>')
            continue
        thumb = _thumbnail(image, file, report_dir)
        target = _relative(image, root)
        source = _relative(thumb, root) if thumb is not None else target
        pixels = f"{file.get('width')}x{file.get('height')}"
        figures.append(
            f'<figure><a href="{_attr(target)}"><img src="{_attr(source)}" '
            f'alt="{escape(image.name)}" loading="lazy"></a><figcaption>{escape(pixels)} · '
            f"{_bytes(file.get('bytes'))}</figcaption></figure>"
        )
    facts = [
        ("provider", entry.get("provider")),
        ("aspect ratio", request.get("aspect_ratio")),
        ("resolution", request.get("resolution")),
        ("cost", _money(entry.get("cost"))),
        ("job", entry.get("job_id")),
        ("tasks", ", ".join(str(t) for t in entry.get("task_ids") or [])),
    ]
    if entry.get("error"):
        facts.append(("error", entry["error"]))
    if entry.get("skip_reason"):
        facts.append(("skipped", entry["skip_reason"]))
    rows = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>"
        for label, value in facts
        if value not in (None, "")
    )
    return (
        f'<article class="card {escape(status)}"><h2>{escape(str(entry.get("id")))} '
        f'<span class="status">{escape(status)}</span></h2>'
        f'<div class="images">{"".join(figures)}</div>'
        f'<p class="prompt">{escape(str(request.get("prompt") or ""))}</p>'
        f"<dl>{rows}</dl></article>"
    )


class ThumbnailMaker:
    """Makes the thumbnails of a run's images while the run goes on (on one worker thread:
    a batch mostly waits on its providers, and Pillow decodes without holding the GIL), so
    that the report at the end finds them made instead of decoding every image then.

    At most `limit` images wait: when they end faster than thumbnails are made, `add` waits
    for a place (the run slows to the thumbnails' pace instead of queueing without bound)."""

    def __init__(self, report_dir: Path, *, limit: int = 32) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.report_dir = report_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        self._places = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Images queued or being made now."""
        return self._waiting

    def add(self, files: Iterable[Mapping[str, Any]]) -> None:
        for file in files:
            self._places.acquire()
            with self._lock:
                self._waiting += 1
            try:
                self._pool.submit(self._make, dict(file))
            except BaseException:
                self._done()
                raise

    def _make(self, file: Mapping[str, Any]) -> None:
        try:
            image = _find(str(file.get("path", "")), self.report_dir)
            if image is not None:
                _thumbnail(image, file, self.report_dir)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._waiting -= 1
        self._places.release()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def _find(recorded: str, folder: Path) -> Path | None:
    """A manifest path as recorded (absolute, or relative to where the batch ran), else the
    same name in the manifest's folder (the artifact was unpacked elsewhere)."""
    if not recorded:
        return None
    path = Path(recorded)
    for candidate in (path, folder / path.name):
        if candidate.is_file():
            return candidate
    return None


def _thumbnail(image: Path, file: Mapping[str, Any], report_dir: Path) -> Path | None:
    """A small WebP of the image beside the report, named by the image's hash so that a
    re-run finds it made already and a changed image gets a new one."""
    digest = str(file.get("sha256") or "")[:12]
    if not digest:  # an entry without a hash: the file's place and time stand in for it
        stat = image.stat()
        key = f"{image.resolve()}\0{stat.st_mtime_ns}\0{stat.st_size}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    thumb = report_dir / THUMBS_DIR / f"{image.stem}-{digest}.webp"
    if thumb.is_file():
        return thumb
    from PIL import Image  # lazy: only a report with images needs Pillow

    try:
        with Image.open(image) as picture:
            # reducing_gap 1: a box reduce by a whole factor (an average, so no aliasing), then
            # bicubic for the rest; at the default (2) a 1K image is resampled whole in
            # bicubic, three times the CPU for no difference visible at 320 pixels.
            picture.thumbnail(_THUMB_SIZE, reducing_gap=1.0)
            thumb.parent.mkdir(parents=True, exist_ok=True)
            partial = thumb.with_name(f".{thumb.name}.{os.getpid()}.part")
            # method 0: WebP's fastest; its default takes longer than decoding the image.
            picture.convert("RGB").save(partial, "WEBP", quality=_THUMB_QUALITY, method=0)
            partial.replace(thumb)
    except OSError:
        return None  # unreadable image: the card links to the full image instead
    return thumb


def _relative(path: Path, root: Path) -> str:
    """`path` relative to the report's folder (`root`, resolved already)."""
    return Path(os.path.relpath(path.resolve(), root)).as_posix()


def _attr(link: str) -> str:
    from urllib.parse import quote

    return escape(quote(link), quote=True)


def _bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    return f"{value / 1024:.0f} KB" if value < 1024 * 1024 else f"{value / 1048576:.1f} MB"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; background: #f6f6f4; color: #222; }}
header {{ display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: 1.5rem; }}
.total {{ background: #fff; border-radius: 6px; padding: .5rem 1rem; min-width: 5rem; }}
.total .n {{ display: block; font-size: 1.6rem; font-weight: 600; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
  gap: 1rem; }}
.card {{ background: #fff; border-radius: 6px; padding: .8rem; border-top: 4px solid #999; }}
.card.succeeded {{ border-color: #2a9d4b; }} .card.failed {{ border-color: #c0392b; }}
.card.skipped {{ border-color: #d4a017; }}
h2 {{ font-size: 1rem; margin: 0 0 .5rem; word-break: break-all; }}
.status {{ font-weight: normal; color: #666; font-size: .85rem; }}
.images {{ display: flex; flex-wrap: wrap; gap: .4rem; }}
.images img {{ max-width: 180px; max-height: 180px; display: block; }}
figure {{ margin: 0; }} figcaption {{ font-size: .75rem; color: #666; }}
.prompt {{ white-space: pre-wrap; font-style: italic; }}
dl {{ display: grid; grid-template-columns: auto 1fr; gap: .1rem .6rem; font-size: .8rem;
  margin: 0; }}
dt {{ color: #666; }} dd {{ margin: 0; word-break: break-all; }}
</style></head>
<body><h1>{title}</h1>
<header>{header}</header>
<main>
{cards}
</main></body></html>
"""
