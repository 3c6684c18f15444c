"""Runware end to end against the emulator: the exact wire requests
(https://runware.ai/docs/models/klingai-image-o1 and the platform docs), the poll loop, and the
downloaded files."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def test_text_to_image_request_matches_the_documented_example(
    run_cli, use_emulator: Emulator
) -> None:
    prompt = "Two rival duelists facing each other on a narrow suspended walkway"
    result = run_cli("generate", prompt, "-p", "runware", "-a", "16:9")
    assert result.exit_code == 0, result.stderr

    # Waiting anyway, kling uses the documented default `deliveryMethod: sync`: one request,
    # answered with the image, no polling.
    [submit] = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", "/v1")
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    [task] = submit.json()
    task_uuid = task["taskUUID"]
    assert uuid.UUID(task_uuid).version == 4
    # The documented text-to-image example ("Velvet Canopy Duelists", model page) sends exactly
    # taskType, taskUUID, model, positivePrompt, width and height; the rest are documented
    # options kling-cli sets on purpose.
    assert task == {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "model": "klingai:kling-image@o1",
        "positivePrompt": prompt,
        "width": 1360,
        "height": 768,
        "numberResults": 1,
        "outputType": "URL",
        "outputFormat": "PNG",
        "includeCost": True,
        "deliveryMethod": "sync",
    }
    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1360, 768)
    assert "Cost reported by Runware: $0.0280" in result.stderr


def test_no_wait_submits_async_and_status_polls_with_get_response(
    run_cli, use_emulator: Emulator
) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "runware", "--no-wait", "--json")
    assert submitted.exit_code == 0, submitted.stderr
    [submit] = api_requests(use_emulator)
    [task] = submit.json()
    assert task["deliveryMethod"] == "async"
    finished = run_cli("status", submitted.json()["job"]["id"], "--wait", "--download")
    assert finished.exit_code == 0, finished.stderr
    polls = api_requests(use_emulator)[1:]
    assert polls, "the result is fetched with getResponse"
    for poll in polls:
        assert (poll.method, poll.path) == ("POST", "/v1")
        assert poll.json() == [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]


def test_references_and_several_images(run_cli, use_emulator: Emulator) -> None:
    refs = ["https://example.com/a.png", "https://example.com/b.jpg"]
    result = run_cli(
        "generate",
        "@image_1 wearing the jacket from @image_2",
        "-r",
        refs[0],
        "-r",
        refs[1],
        "-p",
        "runware",
        "-R",
        "2k",
        "-a",
        "3:2",
        "-n",
        "3",
    )
    assert result.exit_code == 0, result.stderr
    [task] = api_requests(use_emulator)[0].json()
    assert task["inputs"] == {"referenceImages": refs}
    assert (task["width"], task["height"]) == (2496, 1664)
    assert task["numberResults"] == 3
    paths = result.stdout.split()
    assert len(paths) == 3 and len(set(paths)) == 3
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (2496, 1664)


def test_auto_aspect_sends_resolution_instead_of_a_size(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate",
        "restyle @image_1",
        "-r",
        "https://example.com/a.png",
        "-p",
        "runware",
        "-R",
        "2k",
    )
    assert result.exit_code == 0, result.stderr
    [task] = api_requests(use_emulator)[0].json()
    assert "width" not in task and "height" not in task
    assert task["resolution"] == "2k"


@pytest.mark.parametrize(
    "fmt, pil_format, ext", [("jpeg", "JPEG", ".jpg"), ("webp", "WEBP", ".webp")]
)
def test_output_format(
    run_cli, use_emulator: Emulator, fmt: str, pil_format: str, ext: str
) -> None:
    result = run_cli("generate", "a red fox", "-p", "runware", "-f", fmt)
    assert result.exit_code == 0, result.stderr
    [task] = api_requests(use_emulator)[0].json()
    assert task["outputFormat"] == {"jpeg": "JPG", "webp": "WEBP"}[fmt]
    [path] = result.stdout.split()
    assert path.endswith(ext)
    with Image.open(path) as image:
        assert image.format == pil_format


def test_json_output_contract(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-p", "runware", "-n", "2", "--json", "-o", "out")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert set(body) == {"schema_version", "status", "exit_code", "job", "files", "error"}
    assert body["schema_version"] == 1
    assert body["status"] == "success" and body["exit_code"] == 0 and body["error"] is None
    assert body["job"]["provider"] == "runware"
    assert body["job"]["state"] == "succeeded"
    assert uuid.UUID(body["job"]["task_id"])
    assert len(body["files"]) == 2
    for entry in body["files"]:
        assert set(entry) == {"path", "width", "height", "bytes", "sha256", "url", "size_mismatch"}
        assert entry["size_mismatch"] is False
        data = Path(entry["path"]).read_bytes()
        assert Path(entry["path"]).parent == Path("out").resolve() or Path(
            entry["path"]
        ).parent == Path("out")
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert (entry["width"], entry["height"]) == (1024, 1024)
        assert entry["url"].startswith(use_emulator.image_origin)


def test_the_image_host_never_sees_the_key(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-p", "runware", "-n", "2")
    assert result.exit_code == 0, result.stderr
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)
    assert EMULATOR_API_KEY not in result.stdout + result.stderr


def test_existing_files_are_never_overwritten(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    first = run_cli("generate", "a red fox", "-p", "runware", "-o", "same")
    second = run_cli("generate", "a red fox", "-p", "runware", "-o", "same")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout.strip() != second.stdout.strip()
    assert Path(first.stdout.strip()).exists() and Path(second.stdout.strip()).exists()
    assert not list(Path("same").glob("*.part")) and not list(Path("same").glob(".*.part"))


def test_no_wait_prints_the_job_id_and_status_finishes_it(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "runware", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert f"kling status {job_id} --wait --download" in submitted.stderr
    assert not Path("kling-output").exists()

    status = run_cli("status", job_id, "--wait", "--download", "--json")
    assert status.exit_code == 0, status.stderr
    body = status.json()
    assert body["job"]["id"] == job_id and body["job"]["state"] == "succeeded"
    assert body["job"]["cost"] == pytest.approx(0.028)
    [task] = body["job"]["tasks"]
    assert uuid.UUID(task["task_id"]) and task["state"] == "succeeded"
    [entry] = body["files"]
    with Image.open(entry["path"]) as image:
        assert image.size == (1024, 1024)


def test_a_sidecar_describes_each_image(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-p", "runware", "-a", "3:2", "-n", "2", "--json")
    assert result.exit_code == 0, result.stderr
    body = result.json()
    for entry in body["files"]:
        sidecar = json.loads(Path(entry["path"] + ".json").read_text())
        assert sidecar["prompt"] == "a red fox"
        assert sidecar["parameters"]["aspect_ratio"] == "3:2"
        assert sidecar["parameters"]["num_images"] == 2
        assert (sidecar["provider"], sidecar["job_id"]) == ("runware", body["job"]["id"])
        assert sidecar["task_id"] == body["job"]["task_id"]
        assert sidecar["image"]["sha256"] == entry["sha256"]
        assert sidecar["image"]["source_host"] == "127.0.0.1"  # the host, never the signed URL
        assert entry["url"] not in json.dumps(sidecar)
        assert sidecar["cost_usd"] == pytest.approx(0.056)
        assert sidecar["tool"].startswith("kling-cli ")
        assert all(sidecar["timings"][k] for k in ("started", "submitted", "finished", "saved"))
    no_sidecar = run_cli("generate", "a red fox", "-p", "runware", "--no-sidecar", "-o", "bare")
    assert no_sidecar.exit_code == 0
    assert [p.suffix for p in Path("bare").iterdir()] == [".png"]


def test_dry_run_prints_the_exact_request_and_sends_nothing(
    run_cli, use_emulator: Emulator
) -> None:
    result = run_cli(
        "generate", "a red fox", "-p", "runware", "-a", "16:9", "-n", "2", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.stderr
    body = result.json()
    [request] = body["requests"]
    assert request["method"] == "POST" and request["url"] == use_emulator.base_url("runware")
    assert request["headers"]["Authorization"] == "<redacted>"
    [task] = request["body"]
    assert (task["width"], task["height"], task["numberResults"]) == (1360, 768, 2)
    assert body["estimated_cost"] == pytest.approx(0.056)
    assert use_emulator.requests == []
    assert EMULATOR_API_KEY not in result.stdout
    assert not Path("kling-output").exists()
    text = run_cli("generate", "a red fox", "-p", "unifically", "-n", "3", "--dry-run")
    assert text.stdout.count("POST ") == 3  # fanned out: one request per task
    assert "Authorization: <redacted>" in text.stdout and "Nothing was sent" in text.stderr
