"""fal.ai end to end against the emulator: the queue protocol (fal's queue docs), the
`@ImageN` prompt tokens and upper-case resolutions
(https://fal.ai/models/fal-ai/kling-image/o1/api), the status and result addresses taken
verbatim from the submit answer, and the refusal of text-only requests."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.engine import Engine
from kling_cli.errors import ProviderRequestError
from kling_cli.providers.base import Endpoint, HttpResponse, TaskHandle, TaskState
from kling_cli.providers.fal import Fal

SUBMIT_PATH = "/fal-ai/kling-image/o1"
# Status and result live under the app, without the `/o1` model path (queue docs).
REQUESTS_PREFIX = "/fal-ai/kling-image/requests/"
REF = "https://example.com/reference.png"


@pytest.fixture(autouse=True)
def no_real_fal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAL_KEY", raising=False)


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submits(emu: Emulator) -> list:
    return [r for r in api_requests(emu) if r.method == "POST"]


def test_the_documented_example_goes_out_field_for_field(run_cli, use_emulator: Emulator) -> None:
    refs = ["https://example.com/a.png", "https://example.com/b.png"]
    prompt = "Put @image_1 in the back seat of the car in @image_2"
    result = run_cli(
        "generate", prompt, "-r", refs[0], "-r", refs[1], "-R", "2k", "-f", "png", "-p", "fal"
    )
    assert result.exit_code == 0, result.stderr

    submit, *follow_ups = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", SUBMIT_PATH)
    assert submit.headers["authorization"] == f"Key {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    # The submit example (queue docs), verbatim but for the URLs.
    assert submit.json() == {
        "prompt": "Put @Image1 in the back seat of the car in @Image2",
        "image_urls": refs,
        "num_images": 1,
        "resolution": "2K",
        "aspect_ratio": "auto",
        "output_format": "png",
    }
    assert follow_ups, "the status is polled, then the result fetched"
    for request in follow_ups:
        assert request.method == "GET" and request.path.startswith(REQUESTS_PREFIX)
        assert request.headers["authorization"] == f"Key {EMULATOR_API_KEY}"
    statuses = [r for r in follow_ups if r.path.endswith("/status")]
    results = [r for r in follow_ups if not r.path.endswith("/status")]
    assert statuses and len(results) == 1
    assert results[0].time > statuses[-1].time

    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_text_only_is_refused_before_the_network(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-p", "fal")
    assert result.exit_code == 2
    assert "needs at least one --ref" in result.stderr
    assert not api_requests(use_emulator)


def test_ten_references_in_order(run_cli, use_emulator: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    result = run_cli("generate", prompt, *[a for r in refs for a in ("-r", r)], "-p", "fal")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json()["image_urls"] == refs
    assert submit.json()["prompt"] == "@Image1 wearing the hat from @Image10"


def test_nine_images_are_one_request(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "restyle", "-r", REF, "-n", "9", "-p", "fal", "--json")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json()["num_images"] == 9
    assert len({entry["path"] for entry in result.json()["files"]}) == 9


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_format(run_cli, use_emulator: Emulator, fmt: str, pil_format: str) -> None:
    result = run_cli("generate", "restyle", "-r", REF, "-f", fmt, "-p", "fal")
    assert result.exit_code == 0, result.stderr
    assert submits(use_emulator)[0].json()["output_format"] == fmt
    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == pil_format


def test_a_failed_task_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("fal", Fault(kind="task_failure", message="Content policy violation"))
    result = run_cli("generate", "restyle", "-r", REF, "-p", "fal", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Content policy violation" in body["error"]["message"]
    assert body["job"]["provider"] == "fal" and body["job"]["state"] == "failed"


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_FAL_API_KEY", "fal-wrong-key-0123456789")
    result = run_cli("generate", "restyle", "-r", REF, "-p", "fal")
    assert result.exit_code == 4
    assert "kling config set-key fal" in result.stderr
    assert "fal-wrong-key-0123456789" not in result.stdout + result.stderr


def test_fals_own_variable_works(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.delenv("KLING_FAL_API_KEY")
    monkeypatch.setenv("FAL_KEY", EMULATOR_API_KEY)
    result = run_cli("generate", "restyle", "-r", REF, "-p", "fal")
    assert result.exit_code == 0, result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("fal", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "restyle", "-r", REF, "-p", "fal")
    assert result.exit_code == 6


def test_the_key_goes_to_the_api_origin_only(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "restyle", "-r", REF, "-n", "2", "-p", "fal")
    assert result.exit_code == 0, result.stderr
    assert all(r.headers.get("authorization") for r in api_requests(use_emulator))
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


def test_a_status_url_on_another_host_never_gets_the_key() -> None:
    endpoint = Endpoint("https://queue.fal.run", "fal-key-0123456789")
    task = TaskHandle(
        "fal",
        "80e7",
        extra={
            "status_url": "https://attacker.example/fal-ai/kling-image/requests/80e7/status",
            "response_url": "https://attacker.example/fal-ai/kling-image/requests/80e7",
        },
    )

    async def refresh() -> None:
        async with Engine(Fal(), endpoint) as engine:
            await engine.refresh(task)

    with pytest.raises(ProviderRequestError, match=r"Refusing to send the fal\.ai key"):
        asyncio.run(refresh())


def test_status_resumes_a_task_submitted_without_waiting(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli("generate", "restyle", "-r", REF, "-p", "fal", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    time.sleep(0.4)
    status = run_cli("status", task_id, "-p", "fal", "--json")
    assert status.exit_code == 0, status.stderr
    [task] = status.json()["job"]["tasks"]
    assert task["state"] == "succeeded" and len(task["outputs"]) == 1


# The queue answers (queue docs), checked on the documented shapes.

FAL = Fal()
TASK = TaskHandle(
    "fal",
    "80e732af-660e-45cd-bd63-580e4f2a94cc",
    expected_images=1,
    extra={
        "status_url": "https://queue.fal.run/fal-ai/kling-image/requests/80e732af/status",
        "response_url": "https://queue.fal.run/fal-ai/kling-image/requests/80e732af",
    },
)


def answer(status_code: int, body: object) -> HttpResponse:
    return HttpResponse(status_code, {}, json.dumps(body).encode())


def test_the_submit_answer_urls_are_kept_verbatim() -> None:
    body = {
        "request_id": TASK.task_id,
        "response_url": TASK.extra["response_url"],
        "status_url": TASK.extra["status_url"],
        "cancel_url": TASK.extra["response_url"] + "/cancel",
    }
    from kling_cli.request import build_request

    request = build_request(prompt="restyle", references=(REF,))
    submission = FAL.build_submit(request, Endpoint("https://queue.fal.run", "k"))
    task, status = FAL.parse_submit(answer(200, body), submission)
    assert task.task_id == TASK.task_id and dict(task.extra) == dict(TASK.extra)
    assert status.state is TaskState.PENDING
    endpoint = Endpoint("https://queue.fal.run", "k")
    assert FAL.build_poll(task, endpoint).url == TASK.extra["status_url"]
    result = FAL.build_result(task, endpoint)
    assert result is not None and result.url == TASK.extra["response_url"]


@pytest.mark.parametrize(
    ("status_code", "body", "state"),
    [
        (202, {"status": "IN_QUEUE", "queue_position": 3}, TaskState.PENDING),
        (202, {"status": "IN_PROGRESS", "logs": []}, TaskState.RUNNING),
        (200, {"status": "COMPLETED", "logs": None, "metrics": {}}, TaskState.SUCCEEDED),
    ],
)
def test_the_three_states(status_code: int, body: dict, state: TaskState) -> None:
    status = FAL.parse_poll(answer(status_code, body), TASK)
    assert status.state is state and not status.outputs


def test_completed_with_an_error_is_a_failure() -> None:
    body = {"status": "COMPLETED", "error": "NSFW content", "error_type": "content_policy"}
    status = FAL.parse_poll(answer(200, body), TASK)
    assert status.state is TaskState.FAILED
    assert status.error == "NSFW content (content_policy)"


def test_the_result_carries_the_images() -> None:
    body = {
        "images": [
            {
                "url": "https://v3b.fal.media/files/b/abc.png",
                "content_type": "image/png",
                "file_name": "abc.png",
                "file_size": 2817713,
                "width": 2048,
                "height": 2048,
            }
        ]
    }
    status = FAL.parse_result(answer(200, body), TASK)
    assert status.state is TaskState.SUCCEEDED
    assert [o.url for o in status.outputs] == ["https://v3b.fal.media/files/b/abc.png"]


def test_a_model_error_at_the_result_fails_the_task() -> None:
    body = {"detail": [{"loc": ["body", "image_urls"], "msg": "field required", "type": "x"}]}
    status = FAL.parse_result(answer(422, body), TASK)
    assert status.state is TaskState.FAILED and status.error == "image_urls: field required"


def test_a_task_without_its_addresses_cannot_be_looked_up() -> None:
    with pytest.raises(ProviderRequestError, match="not kept"):
        FAL.build_poll(TaskHandle("fal", "80e7"), Endpoint("https://queue.fal.run", "k"))
