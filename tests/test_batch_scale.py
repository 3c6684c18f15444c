"""A batch of a few thousand items through the streaming path (#18): the manifest read again
as items are reached, results written as they end, `manifest.json` assembled at the end. The
100,000-item figures are a bench (`bench/batch.py --items`), never a test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kling_cli.emulator import Emulator
from tests.test_batch import submit_count, write_jsonl
from tests.test_entry_point import kling_command

ITEMS = 2000


def test_two_thousand_items_every_image_on_disk_and_the_manifest_whole(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [{"id": f"n{i:05d}", "prompt": f"a fox number {i}"} for i in range(ITEMS)]
    manifest_in = write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "out"
    argv = [*kling_command(), "batch", str(manifest_in), "-p", "runware", "-n", "1", "-R", "1k"]
    argv += ["-j", "64", "--no-report", "--no-sidecar", "-o", str(out), "--json"]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout.splitlines()[-1])["summary"]
    assert (summary["succeeded"], summary["images"]) == (ITEMS, ITEMS)
    assert submit_count(use_emulator) == ITEMS  # one task per item, none twice
    manifest = json.loads((out / "manifest.json").read_text())
    assert [entry["id"] for entry in manifest["items"]] == [item["id"] for item in items]
    assert [entry["line"] for entry in manifest["items"]] == list(range(1, ITEMS + 1))
    for entry in manifest["items"]:
        assert entry["status"] == "succeeded" and entry["request"]["prompt"].startswith("a fox")
        [file] = entry["files"]
        assert Path(file["path"]) == out / f"{entry['id']}.png" and Path(file["path"]).is_file()
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["manifest.json", *(f"{item['id']}.png" for item in items)]
    )
