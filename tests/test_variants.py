"""Cross-format variants: `generate -a 16:9,1:1,9:16` (and `-a all`) runs one job per ratio, every
ratio checked and the fan-out priced before anything is sent; a batch item may list ratios too."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import Emulator
from kling_cli.limits import OUTPUT_DIMENSIONS
from tests.test_entry_point import run
from tests.test_money_rule import journal_rows, start, submits, wait_for_line

THREE = "16:9,1:1,9:16"


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_EMULATOR_LATENCY", "0")


def test_three_ratios_write_three_images_of_the_documented_sizes_and_one_report() -> None:
    result = run("generate", "a red fox on a snowy ridge", "-a", THREE, "--emulate", "-R", "2k")
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    assert len(paths) == 3 and len(set(paths)) == 3
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    assert sizes == [OUTPUT_DIMENSIONS[("2k", ratio)] for ratio in THREE.split(",")]
    report = Path("kling-output/report.html")
    assert f"Report: {report}" in result.stderr
    page = report.read_text()
    assert page.count('<article class="card succeeded') == 3
    for ratio in THREE.split(","):
        assert f"<dd>{ratio}</dd>" in page
    # Three jobs in the journal, each its own (the jobs layer ran each).
    listed = json.loads(run("jobs", "--json").stdout)["jobs"]
    assert len(listed) == 3 and len({job["id"] for job in listed}) == 3


def test_all_is_the_eight_explicit_ratios_in_one_json_object() -> None:
    result = run("generate", "a lighthouse", "-a", "all", "--emulate", "--json", "--no-report")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()  # generate's contract: one object
    body = json.loads(line)
    ratios = [variant["aspect_ratio"] for variant in body["variants"]]
    assert ratios == ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"]
    assert body["job"] is None and body["report"] is None
    assert len(body["files"]) == 8
    for variant in body["variants"]:
        [file] = variant["files"]
        assert (file["width"], file["height"]) == OUTPUT_DIMENSIONS[("1k", variant["aspect_ratio"])]
        assert variant["job"]["state"] == "succeeded"
    assert not Path("kling-output/report.html").exists()


@pytest.mark.parametrize("ratios", ["16:9,1:7,9:16", "16:9,1:1,auto", "1:1,1:1", "16:9,"])
def test_a_bad_ratio_anywhere_in_the_list_sends_nothing(
    use_emulator: Emulator, ratios: str
) -> None:
    result = run("generate", "a red fox", "-p", "runware", "-a", ratios)
    assert result.returncode == 2, result.stderr
    assert "--aspect-ratio" in result.stderr and "Traceback" not in result.stderr
    assert submits(use_emulator) == 0
    assert result.stdout == ""


def test_the_whole_fan_out_is_priced_against_max_cost_before_paying(
    use_emulator: Emulator,
) -> None:
    # runware lists $0.028 per image: three ratios of two images are $0.168.
    over = run(
        "generate", "a red fox", "-p", "runware", "-a", THREE, "-n", "2", "--max-cost", "0.1"
    )
    assert over.returncode == 2
    assert "The estimated cost is $0.17, over --max-cost $0.10" in over.stderr
    assert submits(use_emulator) == 0
    single = run("generate", "a red fox", "-p", "runware", "-n", "4", "--max-cost", "0.1")
    assert single.returncode == 2 and "over --max-cost" in single.stderr
    assert submits(use_emulator) == 0
    bad = run("generate", "a red fox", "-p", "runware", "--max-cost", "nan")
    assert bad.returncode == 2 and "--max-cost must be a finite number" in bad.stderr
    within = run("generate", "a red fox", "-p", "runware", "-a", THREE, "--max-cost", "0.1")
    assert within.returncode == 0, within.stderr
    assert "estimated $0.0840 in all" in within.stderr
    assert submits(use_emulator) == 3


def test_dry_run_shows_every_ratios_request_and_the_total() -> None:
    result = run("generate", "a red fox", "-p", "runware", "-a", THREE, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    sent = [request["body"][0]["width"] for request in body["requests"]]
    assert sent == [1360, 1024, 768]
    assert body["estimated_cost"] == pytest.approx(0.084)


def test_report_path_for_one_ratio_and_json_names_it() -> None:
    result = run("generate", "a red fox", "--emulate", "--report", "out/gallery.html", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["report"] == "out/gallery.html"
    assert body["job"]["state"] == "succeeded"
    page = Path("out/gallery.html").read_text()
    assert page.count('<article class="card succeeded') == 1


def test_a_batch_item_may_list_its_ratios(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    items = [
        {"id": "hero", "prompt": "a red fox", "aspect_ratio": ["16:9", "9:16"]},
        {"id": "owl", "prompt": "an owl", "aspect_ratio": "1:1"},
    ]
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items))
    result = run("batch", str(manifest), "--emulate", "-o", "out")
    assert result.returncode == 0, result.stderr
    entries = json.loads(Path("out/manifest.json").read_text())["items"]
    by_id = {entry["id"]: entry for entry in entries}
    assert set(by_id) == {"hero-16x9", "hero-9x16", "owl"}
    for item_id, ratio in (("hero-16x9", "16:9"), ("hero-9x16", "9:16")):
        [file] = by_id[item_id]["files"]
        assert Path(file["path"]).name == f"{item_id}.png"
        assert (file["width"], file["height"]) == OUTPUT_DIMENSIONS[("1k", ratio)]
    # Run again: every variant is done, none is paid twice.
    again = run("batch", str(manifest), "--emulate", "-o", "out", "--json")
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    assert summary["skipped"] == 3 and summary["succeeded"] == 0


def test_a_bad_ratio_list_in_a_manifest_sends_nothing(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.jsonl"
    items = [
        {"id": "fox", "prompt": "a red fox"},
        {"id": "hero", "prompt": "a hero", "aspect_ratio": ["16:9", "5:4"]},
    ]
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items))
    result = run("batch", str(manifest), "-p", "runware", "-o", "out")
    assert result.returncode == 2
    assert "line 2" in result.stderr and "'5:4'" in result.stderr
    assert submits(use_emulator) == 0


def test_an_interruption_stops_the_fan_out_with_the_paid_job_recorded(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    # Long enough for the run to be stopped (or time out) while the task is still being made;
    # a task keeps the latency it was created with, so any resume below waits out the rest.
    use_emulator.latency = 10
    process = start("generate", "a red fox", "-p", "runware", "-a", THREE, "--json")
    wait_for_line(process, "submitted to Runware")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    body = json.loads(out)
    first, *rest = body["variants"]
    assert first["aspect_ratio"] == "16:9" and first["job"]["state"] == "interrupted"
    assert f"kling status {first['job']['id']} --wait --download" in first["error"]["hint"]
    assert [(v["aspect_ratio"], v["job"]) for v in rest] == [("1:1", None), ("9:16", None)]
    assert body["error"]["code"] == "interrupted"
    assert submits(use_emulator) == 1  # the ratios not reached were never sent
    [row] = journal_rows(isolated_environment)
    assert row["state"] == "interrupted" and row["task_id"] == first["job"]["task_id"]


def test_batch_aspect_ratio_default_may_be_a_list(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    items = [
        {"id": "fox", "prompt": "a red fox"},
        {"id": "owl", "prompt": "an owl", "aspect_ratio": "4:3"},
    ]
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items))
    result = run("batch", str(manifest), "--emulate", "-o", "out", "-a", "16:9,9:16")
    assert result.returncode == 0, result.stderr
    ids = sorted(
        entry["id"] for entry in json.loads(Path("out/manifest.json").read_text())["items"]
    )
    assert ids == ["fox-16x9", "fox-9x16", "owl"]
    bad = run("batch", str(manifest), "--emulate", "-o", "out", "-a", "16:9,2:1")
    assert bad.returncode == 2 and "'2:1'" in bad.stderr


def test_one_failed_ratio_is_named_the_others_saved_and_the_run_exits_8(
    use_emulator: Emulator,
) -> None:
    from kling_cli.emulator import Fault

    use_emulator.inject("runware", Fault(kind="task_failure", message="policy violation"))
    result = run("generate", "a red fox", "-p", "runware", "-a", "16:9,1:1", "-o", "out")
    assert result.returncode == 8, result.stderr
    [saved] = result.stdout.split()
    with Image.open(saved) as image:
        assert image.size == OUTPUT_DIMENSIONS[("1k", "1:1")]
    assert "16:9:" in result.stderr and "policy violation" in result.stderr
    page = Path("out/report.html").read_text()
    assert page.count('<article class="card failed') == 1
    assert page.count('<article class="card succeeded') == 1


def test_out_of_credits_stops_the_fan_out_and_the_rest_are_not_submitted(
    use_emulator: Emulator,
) -> None:
    # The account pays for one submit: 16:9 is made, 1:1 is refused, 9:16 must not be sent.
    use_emulator.out_of_credits_after("runware", 1)
    result = run("generate", "a red fox", "-p", "runware", "-a", THREE, "-o", "out")
    assert result.returncode == 6, result.stderr
    assert submits(use_emulator) == 2
    [saved] = result.stdout.split()
    with Image.open(saved) as image:
        assert image.size == OUTPUT_DIMENSIONS[("1k", "16:9")]
    assert "9:16: not submitted" in result.stderr and "nothing was charged" in result.stderr
    assert "Traceback" not in result.stderr
    page = Path("out/report.html").read_text()
    assert page.count('<article class="card succeeded') == 1
    assert page.count('<article class="card failed') == 1


def test_a_rejected_key_stops_the_fan_out_in_one_json_object(use_emulator: Emulator) -> None:
    use_emulator.reject_key("runware")
    result = run("generate", "a red fox", "-p", "runware", "-a", THREE, "--json", "--no-report")
    assert result.returncode == 4, result.stderr
    assert submits(use_emulator) == 1
    [line] = result.stdout.splitlines()
    body = json.loads(line)
    assert body["exit_code"] == 4 and body["error"]["code"] == "auth"
    first, *rest = body["variants"]
    assert first["job"] is not None and first["error"]["code"] == "auth"
    assert [(v["aspect_ratio"], v["job"], v["skip_reason"]) for v in rest] == [
        ("1:1", None, "key_rejected"),
        ("9:16", None, "key_rejected"),
    ]


def test_a_content_refusal_on_one_ratio_does_not_stop_the_others(use_emulator: Emulator) -> None:
    from kling_cli.emulator import Fault

    # The emulated task failure is Kling's moderation refusing the first ratio's content.
    use_emulator.inject("runware", Fault(kind="task_failure"))
    result = run("generate", "a red fox", "-p", "runware", "-a", THREE, "--no-report")
    assert "16:9:" in result.stderr and "Content policy violation" in result.stderr
    assert submits(use_emulator) == 3
    assert len(result.stdout.split()) == 2
    assert result.returncode == 8, result.stderr
