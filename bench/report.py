"""The gallery report at scale: `kling report` on a manifest of 1,000 items (one 1K PNG each,
made here with Pillow, and a few failed and skipped items), first with no thumbnails made
(each image decoded once), then again (every thumbnail reused: the page alone).

    python bench/report.py                     # 1,000 items, 3 warm runs (~1 min)
    python bench/report.py --items 200 --runs 5

Targets: the warm run (the page beyond the thumbnails) <= 2 s wall, as the `kling report`
command a user runs; the warm run makes no thumbnail (the thumbs/ folder is unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import banner, kling_executable, median, table, verdict

TARGET_WARM_SECONDS = 2.0


def make_manifest(folder: Path, items: int) -> Path:
    from PIL import Image

    entries = []
    for number in range(items):
        status = "failed" if number % 50 == 7 else "skipped" if number % 50 == 9 else "succeeded"
        files = []
        if status == "succeeded":
            path = folder / f"item-{number:04d}.png"
            shade = (number * 37 % 256, number * 91 % 256, number * 13 % 256)
            Image.new("RGB", (1024, 1024), shade).save(path, compress_level=1)
            files.append(
                {"path": path.name, "width": 1024, "height": 1024, "bytes": path.stat().st_size}
            )
        entries.append(
            {
                "id": f"item-{number:04d}",
                "line": number + 1,
                "provider": "runware",
                "status": status,
                "job_id": f"261130-{number:06x}",
                "task_ids": [f"task-{number}"],
                "request": {"prompt": f"a <b>fox</b> number {number}", "aspect_ratio": "1:1"},
                "files": files,
                "cost": 0.028 if status == "succeeded" else None,
                "error": "policy violation" if status == "failed" else None,
                "skip_reason": "done" if status == "skipped" else None,
            }
        )
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"items": entries}))
    return manifest


def timed_report(manifest: Path, output: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [kling_executable(), "report", str(manifest), "-o", str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kling report failed: {done.stderr}")
    return elapsed


def thumbs_state(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="warm runs (median shown)")
    args = parser.parse_args()
    banner(f"kling report: {args.items} items")
    with tempfile.TemporaryDirectory(prefix="kling-bench-report-") as scratch:
        folder = Path(scratch)
        made = time.perf_counter()
        manifest = make_manifest(folder, args.items)
        print(f"# manifest and images made in {time.perf_counter() - made:.1f} s")
        output = folder / "report.html"
        cold = timed_report(manifest, output)
        thumbs = folder / "thumbs"
        before = thumbs_state(thumbs)
        warm = [timed_report(manifest, output) for _ in range(args.runs)]
        reused = thumbs_state(thumbs) == before
        images = len(before)
        per_thumb = (cold - median(warm)) / images * 1000 if images else 0.0
        print(
            table(
                ["run", "wall s", "thumbnails made"],
                [
                    ["cold (no thumbnails yet)", f"{cold:.2f}", str(images)],
                    [
                        f"warm (median of {args.runs})",
                        f"{median(warm):.2f}",
                        "0" if reused else "?",
                    ],
                ],
            )
        )
        print(f"thumbnail cost: about {per_thumb:.1f} ms each ({images} images)")
        print(f"page size: {os.path.getsize(output) / 1024:.0f} KB")
        met = median(warm) <= TARGET_WARM_SECONDS and reused
        print(f"target (warm report <= 2 s, thumbnails reused): {verdict(met)}")


if __name__ == "__main__":
    main()
