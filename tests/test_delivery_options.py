"""Runware's documented delivery options on the installed `kling`, against the emulator over
HTTP: --quality (outputQuality), --upload-to (uploadEndpoint), --url-ttl (ttl) and --safety
(safety), each refused before any request where a provider does not document it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.receiver import Receiver
from tests.test_entry_point import run


def _inference_tasks(emulator: Emulator) -> list[dict[str, object]]:
    tasks = [
        r.json()[0]
        for r in emulator.requests
        if r.server == "api" and r.provider == "runware" and r.body.startswith(b"[")
    ]
    return [task for task in tasks if task.get("taskType") == "imageInference"]


def test_a_lower_quality_gives_a_smaller_jpeg(use_emulator: Emulator, tmp_path: Path) -> None:
    sizes = {}
    for quality in (30, 95):
        out = tmp_path / str(quality)
        result = run(
            "generate", "a red fox", "-p", "runware", "-f", "jpeg", "--quality", str(quality),
            "-o", str(out), "--no-sidecar",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        [image] = list(out.iterdir())
        assert image.read_bytes()[:2] == b"\xff\xd8"
        sizes[quality] = image.stat().st_size
    assert sizes[30] < sizes[95]
    assert [task["outputQuality"] for task in _inference_tasks(use_emulator)] == [30, 95]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-p", "runware", "--quality", "30"], "--quality applies to JPEG and WebP, not png"),
        (["-p", "runware", "-f", "jpeg", "--quality", "10"], "20 to 99"),
        (["-p", "fal", "-r", "https://e.com/a", "-f", "jpeg", "--quality", "30"], "no --quality"),
        (["-p", "unifically", "--upload-to", "https://b.example.com/x"], "no --upload-to"),
        (["-p", "runware", "--upload-to", "http://bucket.example.com/x"], "only https is allowed"),
        (["-p", "runware", "--url-ttl", "30"], "at least 60 seconds"),
        (["-p", "comfy", "--url-ttl", "600"], "Comfy Router documents no --url-ttl"),
        (["-p", "runware", "--safety", "strict"], "use fast"),
        (["-p", "wavespeed", "--safety", "fast"], "WaveSpeed documents no --safety"),
        (["-p", "runware", "--download"], "--download only applies with --upload-to"),
    ],
)  # fmt: skip
def test_options_a_provider_does_not_document_are_refused_before_any_request(
    use_emulator: Emulator, args: list[str], words: str
) -> None:
    result = run("generate", "a red fox", *args)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert use_emulator.requests == []


def test_upload_to_puts_the_image_bytes_there_and_saves_nothing_here(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with Receiver() as bucket:
        target = f"{bucket.url}/bucket/fox.png?X-Amz-Signature=abc"
        result = run(
            "generate",
            "a red fox",
            "-p",
            "runware",
            "-o",
            str(out),
            "--upload-to",
            target,
            "--json",
        )
        assert result.returncode == 0, result.stderr
        [put] = bucket.wait_for(1)
    assert put.method == "PUT" and put.path == "/bucket/fox.png?X-Amz-Signature=abc"
    assert put.body[:8] == b"\x89PNG\r\n\x1a\n" and put.headers["content-type"] == "image/png"
    assert not out.exists() or list(out.iterdir()) == []
    assert f"upload the images to {bucket.url}/bucket/fox.png?…" in result.stderr
    answer = json.loads(result.stdout)
    # Made, and not on disk here: `kling status ID --download` would fetch them.
    assert answer["job"]["state"] == "generated" and answer["files"] == []
    assert _inference_tasks(use_emulator)[0]["uploadEndpoint"] == target


def test_upload_to_with_download_also_saves_the_same_bytes(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with Receiver() as bucket:
        result = run(
            "generate", "a red fox", "-p", "runware", "-o", str(out), "--no-sidecar",
            "--upload-to", f"{bucket.url}/fox", "--download",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        [put] = bucket.wait_for(1)
    [saved] = list(out.iterdir())
    assert saved.read_bytes() == put.body


def test_url_ttl_is_sent_and_the_sidecar_says_when_the_url_expires(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run("generate", "a red fox", "-p", "runware", "-o", str(out), "--url-ttl", "3600")
    assert result.returncode == 0, result.stderr
    assert _inference_tasks(use_emulator)[0]["ttl"] == 3600
    [sidecar] = [p for p in out.iterdir() if p.suffix == ".json"]
    facts = json.loads(sidecar.read_text())
    assert facts["parameters"]["url_ttl"] == 3600
    assert facts["result_url_expires"] > facts["timings"]["finished"]


def test_safety_fast_is_sent_and_a_withheld_result_is_exit_3_with_the_reason(
    use_emulator: Emulator,
) -> None:
    use_emulator.inject("runware", Fault("task_failure"))
    result = run("generate", "a red fox", "-p", "runware", "--safety", "fast")
    assert result.returncode == 3, result.stderr
    assert "Content policy violation" in result.stderr
    assert _inference_tasks(use_emulator)[0]["safety"] == {"checkContent": True, "mode": "fast"}
