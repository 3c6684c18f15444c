"""Comfy Router end to end against the emulator: one synchronous
`POST /v2/models/kling/kling-image-o1` with Kling's body, `X-API-Key` and an `Idempotency-Key`,
answered with Kling's task object
(https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code)."""

from __future__ import annotations

import json
import uuid

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.errors import OutOfCreditsError, ProviderRequestError
from kling_cli.limits import OUTPUT_DIMENSIONS
from kling_cli.providers.base import Endpoint, HttpResponse, Submission, TaskHandle, TaskState
from kling_cli.providers.comfy import Comfy
from kling_cli.request import build_request

SUBMIT_PATH = "/v2/models/kling/kling-image-o1"
REF = "https://example.com/reference.png"


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submits(emu: Emulator) -> list:
    return [r for r in api_requests(emu) if r.method == "POST"]


def test_text_to_image_is_one_synchronous_request(run_cli, use_emulator: Emulator) -> None:
    prompt = "A lighthouse at dusk, oil painting"
    result = run_cli("generate", prompt, "-p", "comfy", "-a", "16:9", "-n", "2")
    assert result.exit_code == 0, result.stderr

    [submit] = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", SUBMIT_PATH)
    assert submit.headers["x-api-key"] == EMULATOR_API_KEY
    assert "authorization" not in submit.headers
    assert uuid.UUID(submit.headers["idempotency-key"]).version == 4
    assert submit.headers["content-type"] == "application/json"
    # Kling's body (only `prompt` is required); model_name is left to the path (Router docs).
    assert submit.json() == {"prompt": prompt, "resolution": "1k", "n": 2, "aspect_ratio": "16:9"}
    paths = result.stdout.split()
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as image:
            assert image.size == OUTPUT_DIMENSIONS[("1k", "16:9")]


def test_ten_references_in_kling_form(run_cli, use_emulator: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    result = run_cli(
        "generate", prompt, *[a for r in refs for a in ("-r", r)], "-R", "2k", "-p", "comfy"
    )
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json() == {
        "prompt": "<<<image_1>>> wearing the hat from <<<image_10>>>",
        "image_list": [{"image": r} for r in refs],
        "resolution": "2k",
        "n": 1,
        "aspect_ratio": "auto",
    }


def test_nine_images_are_one_request(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "9", "-p", "comfy", "--json")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json()["n"] == 9
    assert len({entry["path"] for entry in result.json()["files"]}) == 9


def test_a_failed_task_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("comfy", Fault(kind="task_failure", message="risk control"))
    result = run_cli("generate", "a red fox", "-p", "comfy", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "risk control" in body["error"]["message"]
    assert body["job"]["provider"] == "comfy" and body["job"]["state"] == "failed"


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_COMFY_API_KEY", "comfyui-wrong-key-0123456789")
    result = run_cli("generate", "a red fox", "-p", "comfy")
    assert result.exit_code == 4
    assert "kling config set-key comfy" in result.stderr
    assert "comfyui-wrong-key-0123456789" not in result.stdout + result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("comfy", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "a red fox", "-p", "comfy")
    assert result.exit_code == 6
    keys = {r.headers["idempotency-key"] for r in submits(use_emulator)}
    assert len(submits(use_emulator)) > 1 and len(keys) == 1, "a resend reuses its key"


def test_the_key_goes_to_the_api_origin_only(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "2", "-p", "comfy")
    assert result.exit_code == 0, result.stderr
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert len(downloads) == 2
    for download in downloads:
        assert "x-api-key" not in download.headers and "authorization" not in download.headers


# The Router docs' answers, checked on the adapter.

COMFY = Comfy()
ENDPOINT = Endpoint("https://api.comfy.org", "comfy-key")


def answer(status_code: int, body: object, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status_code, headers or {}, json.dumps(body).encode())


def submitted() -> Submission:
    return COMFY.build_submit(build_request(prompt="a red fox"), ENDPOINT)


def test_the_documented_answer_and_its_cost() -> None:
    body = {
        "code": 0,
        "message": "SUCCEED",
        "request_id": "6a4b2c80",
        "data": {
            "task_id": "kling-image-task-3c4d5e6f7a8b",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_result": {
                "result_type": "single",
                "images": [
                    {
                        "index": 0,
                        "url": "https://example.invalid/kling/kling-image-o1/generated.png",
                    }
                ],
            },
            "created_at": 1798761600000,
            "updated_at": 1798761660000,
        },
    }
    submission = submitted()
    task, status = COMFY.parse_submit(
        answer(200, body, {"x-comfy-credits-used": "5.91"}), submission
    )
    assert task.task_id == submission.client_task_id
    assert status.state is TaskState.SUCCEEDED
    assert [o.url for o in status.outputs] == [
        "https://example.invalid/kling/kling-image-o1/generated.png"
    ]
    assert status.cost == pytest.approx(0.028, abs=1e-4)


def test_a_lost_answer_is_collected_by_resending_with_the_same_key() -> None:
    submission = submitted()
    task, status = COMFY.parse_submit(
        answer(504, {"detail": "deadline"}, {"x-comfy-error-type": "deadline_exceeded"}),
        submission,
    )
    assert status.state is TaskState.RUNNING
    poll = COMFY.build_poll(task, ENDPOINT)
    assert poll.method == "POST" and poll.url == submission.request.url
    assert poll.json == submission.request.json
    assert poll.headers["Idempotency-Key"] == submission.client_task_id
    busy = answer(409, {"detail": "busy"}, {"x-comfy-error-type": "concurrency_limit_exceeded"})
    assert COMFY.parse_poll(busy, task).state is TaskState.RUNNING


def test_an_old_request_is_never_resent() -> None:
    submission = submitted()
    task = COMFY.handle("key", submission, submitted_at="1000")
    with pytest.raises(ProviderRequestError, match="24 hours"):
        COMFY.build_poll(task, ENDPOINT)


def test_no_credits_is_out_of_credits() -> None:
    refusal = answer(402, {"error_type": "insufficient_credits"})
    with pytest.raises(OutOfCreditsError):
        COMFY.parse_submit(refusal, submitted())


def test_a_content_policy_refusal_fails_the_task() -> None:
    refusal = answer(
        400,
        {"detail": "risk control", "error_type": "content_policy_violation"},
        {"x-comfy-error-type": "content_policy_violation"},
    )
    _, status = COMFY.parse_submit(refusal, submitted())
    assert status.state is TaskState.FAILED and status.error == "risk control"


def test_a_lost_answer_is_collected_with_the_same_key(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("comfy", Fault(kind="lost_response", on="submit"))
    result = run_cli("generate", "a red fox", "-p", "comfy")
    assert result.exit_code == 0, result.stderr
    first, replay = submits(use_emulator)
    assert replay.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert replay.json() == first.json()
    assert [event[1] for event in use_emulator.events].count("created") == 1
    assert len(result.stdout.split()) == 1


def test_a_still_running_answer_paces_the_next_poll_by_its_retry_after() -> None:
    # Router errors page: a replay while the original request runs is 409
    # concurrency_limit_exceeded with a Retry-After; the next poll waits that long rather than
    # the usual sub-second pace.
    body = {"error_type": "concurrency_limit_exceeded", "message": "still running"}
    task = TaskHandle("comfy", "key-1")
    status = COMFY.parse_poll(answer(409, body, {"retry-after": "7"}), task)
    assert status.state is TaskState.RUNNING
    assert status.poll_after == 7
