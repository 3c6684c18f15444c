"""`kling batch`: manifests, validation before spending, partial failure, resume, shards."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def submit_count(emu: Emulator) -> int:
    count = 0
    for r in emu.requests:
        if r.server != "api" or r.method != "POST":
            continue
        body = r.json()
        if isinstance(body, list) and body[0].get("taskType") == "getResponse":
            continue
        count += 1
    return count


def test_fifty_items_with_failures(run_cli, use_emulator: Emulator, tmp_path: Path) -> None:
    items = [
        {
            "id": f"item{i:02d}",
            "prompt": f"a fox number {i}",
            "provider": "runware" if i % 2 else "unifically",
            "aspect_ratio": "16:9",
        }
        for i in range(50)
    ]
    manifest_in = write_jsonl(tmp_path / "items.jsonl", items)
    use_emulator.inject("runware", Fault(kind="task_failure", message="policy", times=3))
    use_emulator.inject("unifically", Fault(kind="task_failure", message="policy", times=2))
    result = run_cli("batch", str(manifest_in), "-o", "out", "-j", "16", "--json")
    assert result.exit_code == 8, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary = lines[-1]["summary"]
    assert (summary["succeeded"], summary["failed"], summary["images"]) == (45, 5, 45)
    assert len(lines) == 51  # one line per item, then the summary
    manifest = json.loads(Path("out/manifest.json").read_text())
    assert [entry["id"] for entry in manifest["items"]] == [item["id"] for item in items]
    for entry in manifest["items"]:
        if entry["status"] == "succeeded":
            [file] = entry["files"]
            assert Path(file["path"]).name == f"{entry['id']}.png"
            with Image.open(file["path"]) as image:
                assert image.size == (1360, 768) == (file["width"], file["height"])
        else:
            assert entry["status"] == "failed" and "policy" in entry["error"]


def test_a_rerun_skips_what_is_done_and_retries_failures(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [{"id": f"i{i}", "prompt": f"fox {i}", "provider": "runware"} for i in range(6)]
    manifest_in = write_jsonl(tmp_path / "items.jsonl", items)
    use_emulator.inject("runware", Fault(kind="task_failure", times=2))
    assert run_cli("batch", str(manifest_in), "-o", "out").exit_code == 8
    assert submit_count(use_emulator) == 6
    again = run_cli("batch", str(manifest_in), "-o", "out")
    assert again.exit_code == 0, again.stderr
    assert "4 skipped" in again.stderr and "2 succeeded" in again.stderr
    assert submit_count(use_emulator) == 8  # only the two failures were submitted again
    assert len(list(Path("out").glob("*.png"))) == 6


def test_every_item_is_validated_before_anything_is_submitted(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [{"prompt": "a fox", "provider": "runware"}] * 3 + [
        {"prompt": "a fox", "provider": "runware", "aspect_ratio": "5:4"}
    ]
    result = run_cli("batch", str(write_jsonl(tmp_path / "m.jsonl", items)))
    assert result.exit_code == 2
    assert "line 4: Aspect ratio '5:4' is not supported" in result.stderr
    assert use_emulator.requests == []
    unknown = run_cli(
        "batch", str(write_jsonl(tmp_path / "u.jsonl", [{"prompt": "x", "colour": "red"}]))
    )
    assert unknown.exit_code == 2 and "line 1: unknown field 'colour'" in unknown.stderr


def test_csv_and_jsonl_give_the_same_result(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "m.csv").write_text(
        "id,prompt,provider,aspect_ratio,num_images,refs\n"
        "a,a red fox,runware,3:2,2,\n"
        "b,@image_1 in snow,unifically,,1,https://example.com/x.png|\n"
    )
    write_jsonl(
        tmp_path / "m.jsonl",
        [
            {
                "id": "a",
                "prompt": "a red fox",
                "provider": "runware",
                "aspect_ratio": "3:2",
                "num_images": 2,
            },
            {
                "id": "b",
                "prompt": "@image_1 in snow",
                "provider": "unifically",
                "num_images": 1,
                "refs": ["https://example.com/x.png"],
            },
        ],
    )
    from_csv = run_cli("batch", str(tmp_path / "m.csv"), "-o", "csv-out", "--json")
    from_jsonl = run_cli("batch", str(tmp_path / "m.jsonl"), "-o", "jsonl-out", "--json")
    assert from_csv.exit_code == from_jsonl.exit_code == 0, from_csv.stderr + from_jsonl.stderr

    def shape(directory: str) -> list:
        entries = json.loads(Path(directory, "manifest.json").read_text())["items"]
        return [
            (e["id"], e["request"], [(f["width"], f["height"]) for f in e["files"]])
            for e in entries
        ]

    assert shape("csv-out") == shape("jsonl-out")


def test_shards_cover_the_manifest_exactly_once(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [{"id": f"s{i}", "prompt": f"fox {i}", "provider": "runware"} for i in range(10)]
    manifest_in = write_jsonl(tmp_path / "m.jsonl", items)
    seen: list[str] = []
    for k in (1, 2, 3):
        result = run_cli("batch", str(manifest_in), "--shard", f"{k}/3", "-o", f"shard{k}")
        assert result.exit_code == 0, result.stderr
        seen += [e["id"] for e in json.loads(Path(f"shard{k}/manifest.json").read_text())["items"]]
    assert sorted(seen) == sorted(item["id"] for item in items)
    assert run_cli("batch", str(manifest_in), "--shard", "4/3").exit_code == 2


def test_max_cost_refuses_before_spending(run_cli, use_emulator: Emulator, tmp_path: Path) -> None:
    items = [{"prompt": "fox", "provider": "runware", "num_images": 9}] * 4  # 36 x $0.028
    result = run_cli("batch", str(write_jsonl(tmp_path / "m.jsonl", items)), "--max-cost", "1")
    assert result.exit_code == 2
    assert "estimated cost is $1.01, over --max-cost $1.00" in result.stderr
    assert use_emulator.requests == []


def test_hostile_ids_become_safe_unique_names(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [
        {"id": "../../etc/passwd", "prompt": "a fox", "provider": "runware"},
        {"id": "CON", "prompt": "a wolf", "provider": "runware"},
        {"id": "🦊" * 50, "prompt": "a bear", "provider": "runware"},
        {"prompt": "x" * 2500, "provider": "runware"},
    ]
    result = run_cli("batch", str(write_jsonl(tmp_path / "m.jsonl", items)), "-o", "out", "--json")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in Path("out").iterdir())
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert "CON_.png" in names and "etc-passwd.png" in names
    assert len([n for n in names if n.endswith(".png")]) == 4
    assert all(Path("out", n).resolve().parent == Path("out").resolve() for n in names)


def test_interrupted_batch_resumes_without_submitting_twice(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [*kling_command(), "emulate", "--port", "0", "--latency", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        urls: list[str] = []
        deadline = time.monotonic() + 20
        while len(urls) < 1 and time.monotonic() < deadline:
            urls += [w for w in server.stdout.readline().split() if w.endswith("/unifically")]
        base_url = urls[0]
        env = {
            **os.environ,
            "KLING_UNIFICALLY_BASE_URL": base_url,
            "KLING_UNIFICALLY_API_KEY": "emulator-key",
            "KLING_CONFIG_DIR": str(tmp_path / "cfg"),
        }
        items = [{"id": f"r{i}", "prompt": f"fox {i}", "provider": "unifically"} for i in range(8)]
        manifest_in = write_jsonl(tmp_path / "m.jsonl", items)
        args = [*kling_command(), "batch", str(manifest_in), "-o", str(tmp_path / "out"), "-j", "8"]
        first = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        database = tmp_path / "cfg" / "jobs.sqlite3"
        deadline = time.monotonic() + 20
        recorded = 0
        while recorded < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
            if database.exists():
                try:
                    with sqlite3.connect(database, timeout=5) as db:
                        query = "SELECT COUNT(*) FROM tasks WHERE task_id IS NOT NULL"
                        recorded = db.execute(query).fetchone()[0]
                except sqlite3.OperationalError:
                    pass  # the batch is creating the database right now
        assert recorded == 8
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=20)
        assert first.returncode == 130
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert len(list((tmp_path / "out").glob("*.png"))) == 8
        control = base_url.split("/unifically")[0]
        requests = httpx.get(f"{control}/_emulator/requests").json()
        submits = [
            r for r in requests if r.get("provider") == "unifically" and r["method"] == "POST"
        ]
        assert len(submits) == 8  # the second run resumed the eight, it did not resubmit
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def test_dry_run_validates_and_prints_without_sending(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    items = [
        {"id": "a", "prompt": "a red fox", "provider": "runware", "num_images": 2},
        {"id": "b", "prompt": "a grey wolf", "provider": "unifically", "num_images": 2},
    ]
    result = run_cli("batch", str(write_jsonl(tmp_path / "m.jsonl", items)), "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    body = result.json()
    assert [(i["id"], len(i["requests"])) for i in body["items"]] == [("a", 1), ("b", 2)]
    assert body["estimated_cost"] == pytest.approx(4 * 0.028)
    assert use_emulator.requests == []
