"""`kling batch -p a,b,c`: items spread over every provider named, each with its own limiter;
an item moves only when the provider it went to provably created nothing, one that runs out
of credits drains its items to the others, and the manifest says who made each image. Real
runs of the installed `kling` against the emulator over HTTP."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from kling_cli.emulator import Emulator
from tests.test_entry_point import run

SPREAD = ("runware", "unifically", "wavespeed")


def created(emulator: Emulator) -> Counter[str]:
    return Counter(provider for _, kind, provider, _ in emulator.events if kind == "created")


def manifest(path: Path, count: int, **extra: str) -> Path:
    lines = [
        {"id": f"fox-{n:02d}", "prompt": f"a red fox, study {n}", "aspect_ratio": "1:1", **extra}
        for n in range(count)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_sixty_items_over_three_providers_with_one_out_of_credits(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    use_emulator.out_of_credits_after("unifically", 10)
    source = manifest(tmp_path / "foxes.jsonl", 60)
    result = run("batch", str(source), "-p", ",".join(SPREAD), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    entries = json.loads((tmp_path / "out" / "manifest.json").read_text())["items"]
    assert len(entries) == 60 and {e["status"] for e in entries} == {"succeeded"}
    assert len(list((tmp_path / "out").glob("fox-*.png"))) == 60
    made = created(use_emulator)
    # No item paid twice: one task per item, over all providers; Unifically made the ten its
    # credit paid for, and the others made the rest, its remaining items included.
    assert sum(made.values()) == 60
    assert made["unifically"] == 10
    assert made["runware"] > 10 and made["wavespeed"] > 10
    by_provider = Counter(entry["provider"] for entry in entries)
    assert by_provider == made
    moved = [e for e in entries if len(e.get("attempts") or []) > 1]
    assert moved, "the items Unifically refused went elsewhere"
    for entry in moved:
        assert entry["attempts"][0]["provider"] == "unifically"
        assert entry["attempts"][0]["outcome"] == "out_of_credits"
        assert entry["attempts"][-1]["provider"] == entry["provider"] != "unifically"
    report = (tmp_path / "out" / "report.html").read_text()
    assert "wavespeed" in report and "runware" in report


def test_items_naming_a_provider_stay_on_it(use_emulator: Emulator, tmp_path: Path) -> None:
    source = manifest(tmp_path / "pinned.jsonl", 6, provider="wavespeed")
    result = run("batch", str(source), "-p", "runware,unifically", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert created(use_emulator) == Counter({"wavespeed": 6})


def test_a_rerun_finds_each_item_where_it_was_made(use_emulator: Emulator, tmp_path: Path) -> None:
    source = manifest(tmp_path / "foxes.jsonl", 9)
    args = ["batch", str(source), "-p", ",".join(SPREAD), "-o", str(tmp_path / "out")]
    assert run(*args).returncode == 0
    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["skipped"] == 9
    assert sum(created(use_emulator).values()) == 9


def test_auto_is_refused_for_a_batch(use_emulator: Emulator, tmp_path: Path) -> None:
    result = run("batch", str(manifest(tmp_path / "m.jsonl", 2)), "-p", "auto")
    assert result.returncode == 2
    assert "spread a batch by naming its providers" in result.stderr
    assert use_emulator.requests == []


def test_a_provider_that_rejects_the_key_drains_to_the_others(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    use_emulator.reject_key("wavespeed")
    source = manifest(tmp_path / "foxes.jsonl", 12)
    args = ["batch", str(source), "-p", "wavespeed,runware", "--concurrency", "2"]
    result = run(*args, "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert created(use_emulator) == Counter({"runware": 12})
    refused = [r for r in use_emulator.requests if r.provider == "wavespeed"]
    assert 1 <= len(refused) <= 2  # those sent before the first refusal came back
    entries = json.loads((tmp_path / "out" / "manifest.json").read_text())["items"]
    assert {entry["provider"] for entry in entries} == {"runware"}


def test_dry_run_names_the_providers_each_item_may_go_to(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    source = manifest(tmp_path / "m.jsonl", 2)
    result = run("batch", str(source), "-p", "runware,unifically", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "# fox-00 (line 1, runware/unifically)" in result.stdout
    assert use_emulator.requests == []
