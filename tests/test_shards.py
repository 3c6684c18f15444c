"""Shards that are stable: an item's shard follows its id, shards sharing an output folder keep
each other's manifest entries, and `kling batch merge` folds shard folders into one."""

from __future__ import annotations

import json
from pathlib import Path

from kling_cli.emulator import Emulator
from tests.test_entry_point import run


def write_items(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"a fox {i}"}) + "\n" for i in ids))
    return path


def shards_of(manifest: Path, n: int) -> dict[str, int]:
    placed: dict[str, int] = {}
    for k in range(1, n + 1):
        shown = run(
            "batch", str(manifest), "-p", "runware", "--shard", f"{k}/{n}", "--dry-run", "--json"
        )
        assert shown.returncode == 0, shown.stderr
        for item in json.loads(shown.stdout)["items"]:
            assert item["id"] not in placed, "an item in two shards"
            placed[item["id"]] = k
    return placed


def test_inserting_a_line_moves_no_item_to_another_shard(tmp_path: Path) -> None:
    ids = [f"item{n}" for n in range(12)]
    before = shards_of(write_items(tmp_path / "m.jsonl", ids), 4)
    assert sorted(before) == sorted(ids) and len(set(before.values())) > 1
    after = shards_of(write_items(tmp_path / "m.jsonl", ["new-first", *ids]), 4)
    assert {i: after[i] for i in ids} == before


def test_shards_writing_into_one_folder_keep_each_others_entries(use_emulator: Emulator) -> None:
    manifest = write_items(Path("m.jsonl"), [f"item{n}" for n in range(6)])
    for k in (1, 2):
        done = run("batch", str(manifest), "-p", "runware", "--shard", f"{k}/2", "-o", "out")
        assert done.returncode == 0, done.stderr
    entries = json.loads(Path("out/manifest.json").read_text())["items"]
    assert sorted(entry["id"] for entry in entries) == [f"item{n}" for n in range(6)]
    assert all(entry["status"] == "succeeded" for entry in entries)


def test_batch_merge_folds_shard_folders_into_one_manifest(use_emulator: Emulator) -> None:
    manifest = write_items(Path("m.jsonl"), [f"item{n}" for n in range(4)])
    for k in (1, 2):
        done = run("batch", str(manifest), "-p", "runware", "--shard", f"{k}/2", "-o", f"s{k}")
        assert done.returncode == 0, done.stderr
    merged = run("batch", "merge", "s1", "s2", "-o", "all", "--copy-files")
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == str(Path("all/manifest.json"))
    entries = json.loads(Path("all/manifest.json").read_text())["items"]
    assert [entry["id"] for entry in entries] == [f"item{n}" for n in range(4)]
    assert all(Path(f["path"]).parent == Path("all") for e in entries for f in e["files"])
    assert len(list(Path("all").glob("*.png"))) == 4
    again = run("batch", "merge", "s1", "s1", "-o", "twice")
    assert again.returncode == 2 and "both" in again.stderr
