"""API in One end to end against the emulator: `POST /images/generations` with the documented
flat body (https://apiin.one/models/kling-image-o1), `GET /tasks/{task_id}` until it is done, then
the images; and the defensive reading of the undocumented poll answer."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.errors import ProviderRequestError
from kling_cli.limits import OUTPUT_DIMENSIONS
from kling_cli.providers.apiinone import ApiInOne
from kling_cli.providers.base import HttpResponse, TaskHandle, TaskState

# API in One's model page (https://apiin.one/models/kling-image-o1), "Example Request", verbatim.
DOCUMENTED_PROMPT = (
    "A cyberpunk cityscape at night with neon signs, inspired by the reference image"
)
DOCUMENTED_EXAMPLE = {
    "model": "kling-image-o1",
    "prompt": DOCUMENTED_PROMPT,
    "images": ["https://example.com/reference.jpg"],
    "aspect_ratio": "16:9",
    "resolution": "1k",
}
BASE_PATH = "/api/v1"
REF = "https://example.com/reference.jpg"


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submitted_bodies(emu: Emulator) -> list[dict]:
    return [r.json() for r in api_requests(emu) if r.method == "POST"]


def test_the_documented_example_goes_out_field_for_field(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate", DOCUMENTED_PROMPT, "-r", REF, "-a", "16:9", "-R", "1k", "-p", "apiinone"
    )
    assert result.exit_code == 0, result.stderr

    submit, *polls = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", f"{BASE_PATH}/images/generations")
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    assert submit.json() == DOCUMENTED_EXAMPLE
    assert polls, "the task is polled until it is done"
    task_ids = set()
    for poll in polls:
        assert poll.method == "GET" and poll.path.startswith(f"{BASE_PATH}/tasks/")
        assert poll.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
        task_ids.add(poll.path.rsplit("/", 1)[1])
    assert len(task_ids) == 1

    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == OUTPUT_DIMENSIONS[("1k", "16:9")]
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert downloads and all("authorization" not in r.headers for r in downloads)


def test_text_only_sends_no_optional_fields(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox in the snow", "-p", "apiinone")
    assert result.exit_code == 0, result.stderr
    assert submitted_bodies(use_emulator) == [
        {
            "model": "kling-image-o1",
            "prompt": "a red fox in the snow",
            "aspect_ratio": "1:1",
            "resolution": "1k",
        }
    ]


def test_ten_references_in_order_and_tokens_kept(run_cli, use_emulator: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    result = run_cli("generate", prompt, *[a for r in refs for a in ("-r", r)], "-p", "apiinone")
    assert result.exit_code == 0, result.stderr
    [body] = submitted_bodies(use_emulator)
    assert body["images"] == refs
    assert body["prompt"] == prompt
    assert body["aspect_ratio"] == "auto"


def test_auto_aspect_ratio_with_a_reference(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "restyle @image_1", "-r", REF, "-a", "auto", "-p", "apiinone")
    assert result.exit_code == 0, result.stderr
    assert submitted_bodies(use_emulator)[0]["aspect_ratio"] == "auto"


def test_nine_images_are_one_request(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "9", "-p", "apiinone", "--json")
    assert result.exit_code == 0, result.stderr
    [body] = submitted_bodies(use_emulator)
    assert body["num_images"] == 9
    job = result.json()
    assert len(job["job"]["task_ids"]) == 1
    assert len({f["path"] for f in job["files"]}) == 9


def test_multi_shot_sends_its_task_type(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate", "@image_1 in three scenes", "-r", REF, "--mode", "multi-shot", "-p", "apiinone"
    )
    assert result.exit_code == 0, result.stderr
    [body] = submitted_bodies(use_emulator)
    assert body["type"] == "ai-multi-shot"
    assert body["images"] == [REF]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--mode", "multi-shot"], "multi-shot mode works from exactly one", id="0 refs"
        ),
        pytest.param(
            ["--mode", "multi-shot", "-r", REF, "-r", "https://example.com/b.png"],
            "exactly one reference image; 2 given",
            id="2 refs",
        ),
        pytest.param(["--negative-prompt", "blur"], "has no negative prompt", id="negative"),
        pytest.param(["-f", "webp"], "cannot choose the output format", id="format"),
    ],
)
def test_refused_before_the_network(
    run_cli, use_emulator: Emulator, args: list[str], message: str
) -> None:
    result = run_cli("generate", "a red fox", *args, "-p", "apiinone")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not api_requests(use_emulator)


def test_a_failed_task_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("apiinone", Fault(kind="task_failure", message="Content policy violation"))
    result = run_cli("generate", "a red fox", "-p", "apiinone", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Content policy violation" in body["error"]["message"]
    assert body["job"]["provider"] == "apiinone" and body["job"]["state"] == "failed"


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_APIINONE_API_KEY", "aio_wrong-key-0123456789")
    result = run_cli("generate", "a red fox", "-p", "apiinone")
    assert result.exit_code == 4
    assert "Invalid API key" in result.stderr
    assert "kling config set-key apiinone" in result.stderr
    assert "aio_wrong-key-0123456789" not in result.stdout + result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("apiinone", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "a red fox", "-p", "apiinone")
    assert result.exit_code == 6
    submits = [r for r in api_requests(use_emulator) if r.method == "POST"]
    assert len(submits) > 1, "a 429 with Retry-After is retried before giving up"


def test_status_finds_a_task_submitted_without_waiting(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-n", "2", "-p", "apiinone", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    time.sleep(0.4)
    status = run_cli("status", task_id, "-p", "apiinone")
    assert status.exit_code == 0, status.stderr
    assert "succeeded" in status.stdout
    assert status.stdout.count(use_emulator.image_origin) == 2


# The poll answer is not documented: the shapes below are the ones the adapter must read.

TASK = TaskHandle("apiinone", "n49xxxx_kio1", expected_images=2)
URL_A, URL_B = "https://cdn.example.com/0.png", "https://cdn.example.com/1.png"


def answer(body: object, status_code: int = 200) -> HttpResponse:
    return HttpResponse(status_code, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    "data",
    [
        {"status": "completed", "outputs": [URL_A, URL_B]},
        {"status": "COMPLETED", "output": {"image_urls": [URL_A, URL_B]}},
        {"status": "Succeeded", "output": {"images": [{"url": URL_A}, {"url": URL_B}]}},
        {"status": "success", "images": [URL_A, URL_B]},
        {"status": "completed", "results": [{"url": URL_A}, {"url": URL_B}]},
        {"status": "completed", "output": {"image_url": URL_A}, "result": [URL_A, URL_B]},
    ],
)
def test_image_urls_are_found_where_they_may_be(data: dict) -> None:
    status = ApiInOne().parse_poll(answer({"code": 200, "data": data}), TASK)
    assert status.state is TaskState.SUCCEEDED
    assert [o.url for o in status.outputs][:1] == [URL_A]


@pytest.mark.parametrize("word", ["failed", "ERROR", "Cancelled", "canceled", "timeout"])
def test_failure_words_in_any_case(word: str) -> None:
    body = {"code": 200, "data": {"status": word, "error": {"message": "NSFW content"}}}
    status = ApiInOne().parse_poll(answer(body), TASK)
    assert status.state is TaskState.FAILED and status.error == "NSFW content"


@pytest.mark.parametrize("word", ["IN_PROGRESS", "pending", "processing", "queued"])
def test_other_words_are_not_finished(word: str) -> None:
    status = ApiInOne().parse_poll(answer({"code": 200, "data": {"status": word}}), TASK)
    assert not status.state.is_terminal and status.provider_status == word


@pytest.mark.parametrize(
    "body",
    [
        {"code": 200, "data": {"status": "completed"}},
        {"code": 200, "data": {"status": "completed", "output": {"image": "inf://x"}}},
        {"code": 200, "data": {"task_id": "n49xxxx_kio1"}},
    ],
)
def test_an_answer_without_a_findable_image_says_how_to_look_again(body: dict) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        ApiInOne().parse_poll(answer(body), TASK)
    assert "may be finished" in caught.value.message
    assert caught.value.hint == "Look again with `kling status n49xxxx_kio1 --provider apiinone`."


def test_fewer_images_than_asked_for_is_reported() -> None:
    body = {"code": 200, "data": {"status": "completed", "outputs": [URL_A]}}
    status = ApiInOne().parse_poll(answer(body), TASK)
    assert status.state is TaskState.SUCCEEDED and len(status.outputs) == 1
    assert status.error == "1 of the 2 images asked for came back"
