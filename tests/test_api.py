"""kling as a library: the public calls run the same validation, journal and money rules as the
CLI, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import kling_cli
from kling_cli.emulator import Emulator, Fault
from kling_cli.errors import InvalidRequestError, TaskFailedError, WaitTimeoutError
from tests.test_entry_point import run


def test_generate_offline_returns_the_saved_images_and_records_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLING_EMULATOR_LATENCY", "0.2")
    job = kling_cli.generate("a red fox on a snowy ridge", aspect_ratio="16:9", emulate=True)
    assert job.state == "succeeded" and job.emulated and job.cost is None
    (image,) = job.images
    assert (image.width, image.height) == (1360, 768) and image.path.exists()
    listed = json.loads(run("jobs", "--json").stdout)["jobs"]
    assert [entry["id"] for entry in listed] == [job.id]
    assert kling_cli.status(job.id) == job


def test_agenerate_runs_inside_a_running_event_loop(use_emulator: Emulator) -> None:
    async def notebook_cell() -> kling_cli.Job:
        # A running loop, as in Jupyter or Prefect: asyncio.run() would refuse here.
        return await kling_cli.agenerate("a lighthouse in fog", provider="unifically", num_images=2)

    job = asyncio.run(notebook_cell())
    assert job.state == "succeeded" and len(job.images) == 2
    assert len(job.task_ids) == 2  # unifically makes one image per task


def test_bad_input_raises_before_any_request(use_emulator: Emulator) -> None:
    with pytest.raises(InvalidRequestError, match="out of range"):
        kling_cli.generate("a red fox", provider="runware", num_images=10)
    with pytest.raises(InvalidRequestError, match="timeout"):
        kling_cli.generate("a red fox", provider="runware", timeout=float("nan"))
    assert use_emulator.requests == []


def test_a_failed_task_raises_with_the_job_named(use_emulator: Emulator) -> None:
    use_emulator.inject("runware", Fault(kind="task_failure", message="Content policy"))
    with pytest.raises(TaskFailedError, match="Content policy") as raised:
        kling_cli.generate("a red fox", provider="runware")
    assert raised.value.job is not None and raised.value.job["task_ids"]


def test_a_timeout_raises_and_status_finishes_the_job(use_emulator: Emulator) -> None:
    # Long enough for the run to be stopped (or time out) while the task is still being made;
    # a task keeps the latency it was created with, so any resume below waits out the rest.
    use_emulator.latency = 10
    with pytest.raises(WaitTimeoutError) as raised:
        # A deadline the submit is sent well within, also when parallel workers slow the start.
        kling_cli.generate("a red fox", provider="unifically", timeout=4)
    assert raised.value.job is not None
    job_id = raised.value.job["id"]
    use_emulator.latency = 0.2
    finished = kling_cli.status(job_id, wait=True, download=True, timeout=30)
    assert finished.state == "succeeded" and len(finished.images) == 1


def test_providers_lists_every_provider_with_its_key_state(use_emulator: Emulator) -> None:
    listed = {summary.id: summary for summary in kling_cli.list_providers()}
    assert len(listed) == 9 and listed["runware"].key_configured
    assert listed["runware"].usd_per_image > 0


def test_the_api_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    program = tmp_path / "make_image.py"
    program.write_text(
        "import asyncio\n"
        "import kling_cli\n\n"
        "job: kling_cli.Job = kling_cli.generate('a red fox', emulate=True)\n"
        "path = job.images[0].path\n"
        "width: int = job.images[0].width\n"
        "later: kling_cli.Job = asyncio.run(kling_cli.agenerate('a fox', num_images=2))\n"
        "ids: tuple[str, ...] = later.task_ids\n"
        "names: list[str] = [p.id for p in kling_cli.list_providers()]\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_run_batch_runs_items_reports_each_and_resumes_without_paying_again(
    use_emulator: Emulator,
) -> None:
    items = [{"id": f"fox-{n}", "prompt": f"a red fox, pose {n}"} for n in range(3)]
    seen: list[str] = []
    results = kling_cli.run_batch(
        items, provider="unifically", output_dir="out", on_result=lambda r: seen.append(r.id)
    )
    assert [r.id for r in results] == ["fox-0", "fox-1", "fox-2"] and sorted(seen) == [
        "fox-0",
        "fox-1",
        "fox-2",
    ]
    assert all(r.status == "succeeded" and len(r.images) == 1 for r in results)
    assert json.loads(Path("out/manifest.json").read_text())["items"][2]["id"] == "fox-2"
    again = kling_cli.run_batch(items, provider="unifically", output_dir="out")
    assert {r.skip_reason for r in again} == {"done"}
    submits = [r for r in use_emulator.requests if r.server == "api" and r.method == "POST"]
    assert len(submits) == 3
    with pytest.raises(InvalidRequestError, match="line 2"):
        kling_cli.run_batch([{"prompt": "ok"}, {"prompt": "x", "num_images": 99}])


def test_the_provider_options_reach_the_provider_through_the_api(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    from tests.receiver import Receiver
    from tests.test_delivery_options import _inference_tasks

    with Receiver() as bucket:
        target = f"{bucket.url}/bucket/fox.jpg?X-Amz-Signature=abc"
        job = kling_cli.generate(
            "a red fox",
            provider="runware",
            output_format="jpeg",
            quality=30,
            upload_to=target,
            download=True,
            url_ttl=3600,
            safety="fast",
            output_dir=tmp_path,
        )
        [put] = bucket.wait_for(1)
    [image] = job.images
    assert image.path.read_bytes() == put.body and put.body[:2] == b"\xff\xd8"
    [task] = _inference_tasks(use_emulator)
    assert task["outputQuality"] == 30 and task["uploadEndpoint"] == target
    assert task["ttl"] == 3600 and task["safety"] == {"checkContent": True, "mode": "fast"}


def test_upload_to_without_download_saves_nothing_here(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    from tests.receiver import Receiver

    out = tmp_path / "out"
    with Receiver() as bucket:
        job = kling_cli.generate(
            "a red fox", provider="runware", upload_to=f"{bucket.url}/fox", output_dir=out
        )
        bucket.wait_for(1)
    assert job.images == () and (not out.exists() or list(out.iterdir()) == [])


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"quality": 30}, "--quality applies to JPEG and WebP, not png"),
        ({"output_format": "jpeg", "quality": 10}, "20 to 99"),
        ({"upload_to": "http://bucket.example.com/x?token=s3cret"}, "only https is allowed"),
        ({"url_ttl": 30}, "at least 60 seconds"),
        ({"safety": "strict"}, "use fast"),
        ({"download": True}, "--download only applies with --upload-to"),
        ({"provider": "wavespeed", "safety": "fast"}, "WaveSpeed documents no --safety"),
    ],
)
def test_bad_provider_options_raise_before_any_request(
    use_emulator: Emulator, options: dict[str, object], words: str
) -> None:
    arguments: dict[str, object] = {"provider": "runware", **options}
    with pytest.raises(InvalidRequestError, match=words) as raised:
        kling_cli.generate("a red fox", **arguments)  # type: ignore[arg-type]
    assert "s3cret" not in str(raised.value)
    assert use_emulator.requests == []
