"""The gallery report at scale (#18): `report.html` and the Markdown summary are written from
a manifest read one entry at a time, so `kling report` takes the same memory for 30,000
items as for 1,000, and a batch's thumbnails wait in a queue of bounded length."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kling_cli.manifest_stream import read_items
from tests.test_entry_point import kling_command


def write_manifest(folder: Path, count: int) -> Path:
    """A manifest as kling writes it, of `count` items (a long prompt each, no images)."""
    folder.mkdir(parents=True, exist_ok=True)
    statuses = ("succeeded", "failed", "skipped")
    items = [
        {
            "id": f"n{i:05d}",
            "line": i + 1,
            "status": statuses[i % 3],
            "provider": "runware",
            "request": {"prompt": f"a fox number {i} " + "on a snowy ridge " * 20},
            "cost": 0.028,
            "job_id": f"job-{i}",
            "task_ids": [f"task-{i}"],
            "files": [],
        }
        for i in range(count)
    ]
    path = folder / "manifest.json"
    path.write_text(json.dumps({"version": 1, "items": items}, indent=2))
    return path


def peak_rss_kb(argv: list[str]) -> int:
    """The peak resident set of one `kling` process, from wait4() in a small Python between
    (a child started by this test process would count this process's own peak as its own)."""
    measure = (
        "import os, subprocess, sys; "
        "process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "_, status, usage = os.wait4(process.pid, 0); "
        "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", measure, *argv], capture_output=True, text=True, timeout=300
    )
    code, peak = completed.stdout.splitlines()[-1].split()
    assert code == "0", completed.stderr[-2000:]
    return int(peak)


def test_kling_report_takes_the_same_memory_for_30000_items_as_for_1000(tmp_path: Path) -> None:
    peaks = {}
    for count in (1_000, 30_000):
        folder = tmp_path / f"run{count}"
        write_manifest(folder, count)
        page = folder / "report.html"
        summary = folder / "summary.md"
        argv = [*kling_command(), "report", str(folder), "-o", str(page)]
        peaks[count] = peak_rss_kb([*argv, "--summary-md", str(summary)])
        html = page.read_text()
        assert html.count('<article class="card') == count
        assert f'<span class="n" id="total-items">{count}</span>' in html
        assert html.index("n00000") < html.index(f"n{count - 1:05d}")  # manifest order
        assert summary.read_text().count("| runware |") == count
    # The manifest of 30,000 items is 25 MB on disk; read whole, it took 160 MB more.
    assert peaks[30_000] < peaks[1_000] + 8 * 1024, peaks


@pytest.mark.parametrize("indent", [None, 2, 40], ids=["compact", "kling", "wide"])
def test_a_manifest_read_in_pieces_gives_what_json_gives(
    tmp_path: Path, indent: int | None
) -> None:
    # Values longer than a read (64 KiB), numbers and escapes cut by its edge.
    items: list[object] = [
        {"id": "long", "prompt": 'é\\"' * 40_000, "cost": 0.1},
        *({"id": f"n{i}", "line": i, "cost": i * 1.000001, "ok": i % 2 == 0} for i in range(3000)),
        1234567890123456789,  # a 64-bit integer (no kling manifest holds a larger one)
        "a string item",
        None,
    ]
    document = {"meta": {"items": [1]}, "items": items, "version": 1}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=False), encoding="utf-8")
    assert list(read_items(path)) == items


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", 'not a kling manifest (no "items" list)'),
        ('{"version": 1}', 'not a kling manifest (no "items" list)'),
        ('{"items": 5}', 'not a kling manifest (no "items" list)'),
        ('{"items": [{"id": "a"}, {"id":', "is not a readable manifest"),
        ('{"items": []} trailing', "is not a readable manifest"),
        ("", "is not a readable manifest"),
    ],
)
def test_kling_report_refuses_what_is_not_a_manifest_and_leaves_no_page(
    tmp_path: Path, text: str, message: str
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    argv = [*kling_command(), "report", str(folder), "-o", str(folder / "report.html")]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]


def test_thumbnails_wait_in_a_bounded_queue_and_are_all_made(tmp_path: Path) -> None:
    from PIL import Image

    from kling_cli.report import THUMBS_DIR, ThumbnailMaker

    files = []
    for i in range(40):
        path = tmp_path / f"image{i}.png"
        Image.new("RGB", (1024, 1024), (i * 6, 90, 200)).save(path)
        files.append({"path": str(path), "sha256": f"{i:012d}"})
    maker = ThumbnailMaker(tmp_path, limit=4)
    seen = []
    for file in files:  # images ending far faster than thumbnails are made
        maker.add([file])
        seen.append(maker.waiting)
    maker.close()
    assert max(seen) <= 4, seen
    assert len(list((tmp_path / THUMBS_DIR).iterdir())) == 40
    with Image.open(next((tmp_path / THUMBS_DIR).iterdir())) as thumb:
        assert thumb.size == (320, 320)
