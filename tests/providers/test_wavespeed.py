"""WaveSpeed end to end against the emulator: `POST /api/v3/kwaivgi/kling-image-o1`, then
`GET /api/v3/predictions/{id}/result` (https://wavespeed.ai/docs/get-result), with `images`,
`num_images` and `<<<image_N>>>` tokens (https://wavespeed.ai/models/kwaivgi/kling-image-o1)."""

from __future__ import annotations

import json
import time

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.providers.base import HttpResponse, TaskHandle, TaskState
from kling_cli.providers.wavespeed import WaveSpeed

SUBMIT_PATH = "/api/v3/kwaivgi/kling-image-o1"
POLL_PREFIX = "/api/v3/predictions/"


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submits(emu: Emulator) -> list:
    return [r for r in api_requests(emu) if r.method == "POST"]


def test_the_documented_example_goes_out_field_for_field(run_cli, use_emulator: Emulator) -> None:
    refs = ["https://example.com/jacket.png", "https://example.com/woman.png"]
    prompt = "The woman in @image_2 wears the jacket from @image_1"
    result = run_cli(
        "generate", prompt, "-r", refs[0], "-r", refs[1], "-R", "2k", "-n", "2", "-p", "wavespeed"
    )
    assert result.exit_code == 0, result.stderr

    submit, *polls = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", SUBMIT_PATH)
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    # A submit with the model page's fields, concrete URLs.
    assert submit.json() == {
        "prompt": "The woman in <<<image_2>>> wears the jacket from <<<image_1>>>",
        "images": refs,
        "aspect_ratio": "auto",
        "resolution": "2k",
        "num_images": 2,
    }
    assert polls, "the prediction is polled until it is done"
    ids = set()
    for poll in polls:
        assert poll.method == "GET"
        assert poll.path.startswith(POLL_PREFIX) and poll.path.endswith("/result")
        assert poll.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
        ids.add(poll.path[len(POLL_PREFIX) : -len("/result")])
    assert len(ids) == 1
    assert len(result.stdout.split()) == 2


def test_text_only_sends_no_images(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox in the snow", "-p", "wavespeed")
    assert result.exit_code == 0, result.stderr
    assert [r.json() for r in submits(use_emulator)] == [
        {
            "prompt": "a red fox in the snow",
            "aspect_ratio": "1:1",
            "resolution": "1k",
            "num_images": 1,
        }
    ]


def test_ten_references_in_order(run_cli, use_emulator: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    result = run_cli("generate", prompt, *[a for r in refs for a in ("-r", r)], "-p", "wavespeed")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json()["images"] == refs
    assert submit.json()["prompt"] == "<<<image_1>>> wearing the hat from <<<image_10>>>"


def test_nine_images_are_one_request(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "9", "-p", "wavespeed", "--json")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(use_emulator)
    assert submit.json()["num_images"] == 9
    assert len({entry["path"] for entry in result.json()["files"]}) == 9


def test_an_output_format_is_refused(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-f", "webp", "-p", "wavespeed")
    assert result.exit_code == 2
    assert "cannot choose the output format" in result.stderr
    assert not api_requests(use_emulator)


def test_a_failed_task_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("wavespeed", Fault(kind="task_failure", message="Content flagged"))
    result = run_cli("generate", "a red fox", "-p", "wavespeed", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Content flagged" in body["error"]["message"]
    assert body["job"]["provider"] == "wavespeed" and body["job"]["state"] == "failed"


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_WAVESPEED_API_KEY", "ws-wrong-key-0123456789")
    result = run_cli("generate", "a red fox", "-p", "wavespeed")
    assert result.exit_code == 4
    assert "kling config set-key wavespeed" in result.stderr
    assert "ws-wrong-key-0123456789" not in result.stdout + result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("wavespeed", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "a red fox", "-p", "wavespeed")
    assert result.exit_code == 6


def test_the_key_goes_to_the_api_origin_only(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "2", "-p", "wavespeed")
    assert result.exit_code == 0, result.stderr
    assert all(r.headers.get("authorization") for r in api_requests(use_emulator))
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


def test_status_finds_a_task_submitted_without_waiting(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "wavespeed", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    time.sleep(0.4)
    status = run_cli("status", task_id, "-p", "wavespeed", "--json")
    assert status.exit_code == 0, status.stderr
    [task] = status.json()["job"]["tasks"]
    assert task["state"] == "succeeded" and len(task["outputs"]) == 1


# The documented answers (get-result docs).

WAVESPEED = WaveSpeed()
TASK = TaskHandle("wavespeed", "pred_abc123", expected_images=2)


def answer(body: object, status_code: int = 200) -> HttpResponse:
    return HttpResponse(status_code, {}, json.dumps(body).encode())


def test_the_documented_completed_answer() -> None:
    body = {
        "code": 200,
        "message": "success",
        "data": {
            "id": "pred_abc123",
            "model": "kwaivgi/kling-image-o1",
            "status": "completed",
            "outputs": ["https://cdn.wavespeed.ai/0.png", "https://cdn.wavespeed.ai/1.png"],
            "has_nsfw_contents": [False, False],
            "timings": {"inference": 9400},
            "error": "",
        },
    }
    status = WAVESPEED.parse_poll(answer(body), TASK)
    assert status.state is TaskState.SUCCEEDED
    assert [o.url for o in status.outputs] == body["data"]["outputs"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("raw", "state"), [("created", TaskState.PENDING), ("processing", TaskState.RUNNING)]
)
def test_unfinished_states(raw: str, state: TaskState) -> None:
    body = {"code": 200, "data": {"id": "pred_abc123", "status": raw, "outputs": []}}
    assert WAVESPEED.parse_poll(answer(body), TASK).state is state


@pytest.mark.parametrize("raw", ["failed", "cancelled", "timeout", "deleted"])
def test_terminal_failures(raw: str) -> None:
    body = {"code": 200, "data": {"id": "pred_abc123", "status": raw, "error": "Error message"}}
    status = WAVESPEED.parse_poll(answer(body), TASK)
    assert status.state is TaskState.FAILED and status.error == "Error message"
