"""inference.sh end to end against the emulator: `POST /apps/run` for the app
`klingai/image-o1` (https://inference.sh/apps/klingai/image-o1; running-apps docs), `GET
/tasks/{id}` until the task is completed with its image, then the image; and the status table of
the inferencesh SDK 0.36 (`types.TaskStatus`)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.errors import AuthError, OutOfCreditsError, ProviderRequestError
from kling_cli.limits import ASPECT_RATIOS, OUTPUT_DIMENSIONS
from kling_cli.providers.base import HttpResponse, TaskHandle, TaskState
from kling_cli.providers.inferencesh import InferenceSh

# The running-apps docs' run example (https://inference.sh/docs/api/running-apps), without
# its webhook (kling-cli polls).
DOCUMENTED_PROMPT = "A serene mountain landscape at sunset"
DOCUMENTED_REF = "https://example.com/ref.png"
DOCUMENTED_EXAMPLE = {
    "app": "klingai/image-o1",
    "input": {
        "prompt": DOCUMENTED_PROMPT,
        "image": DOCUMENTED_REF,
        "aspect_ratio": "16:9",
        "resolution": "2k",
        "n": 1,
    },
}
NAMED_ASPECT_RATIOS = [a for a in ASPECT_RATIOS if a != "auto"]


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submitted_inputs(emu: Emulator) -> list[dict]:
    return [r.json()["input"] for r in api_requests(emu) if r.method == "POST"]


def test_the_documented_example_goes_out_field_for_field(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate",
        DOCUMENTED_PROMPT,
        "-r",
        DOCUMENTED_REF,
        "-a",
        "16:9",
        "-R",
        "2k",
        "-p",
        "inferencesh",
    )
    assert result.exit_code == 0, result.stderr

    submit, *polls = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", "/apps/run")
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    assert submit.json() == DOCUMENTED_EXAMPLE
    assert polls, "the task is polled until it is completed"
    task_ids = set()
    for poll in polls:
        assert poll.method == "GET" and poll.path.startswith("/tasks/")
        assert poll.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
        task_ids.add(poll.path.removeprefix("/tasks/").split("/")[0])
    assert len(task_ids) == 1

    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.size == OUTPUT_DIMENSIONS[("2k", "16:9")]
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert downloads and all("authorization" not in r.headers for r in downloads)


def test_text_only_sends_no_image(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a red fox in the snow", "-p", "inferencesh")
    assert result.exit_code == 0, result.stderr
    assert submitted_inputs(use_emulator) == [
        {"prompt": "a red fox in the snow", "aspect_ratio": "1:1", "resolution": "1k", "n": 1}
    ]


def test_nine_images_are_nine_runs_of_one(run_cli, use_emulator: Emulator) -> None:
    # The app bills for `n` but returns one image (app source): always n=1, fanned out.
    result = run_cli("generate", "a red fox", "-n", "9", "-p", "inferencesh", "--json")
    assert result.exit_code == 0, result.stderr
    inputs = submitted_inputs(use_emulator)
    assert len(inputs) == 9 and all(i["n"] == 1 for i in inputs)
    body = result.json()
    assert len(set(body["job"]["task_ids"])) == 9
    assert len({f["path"] for f in body["files"]}) == 9


def test_negative_prompt_is_sent(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate", "a red fox", "--negative-prompt", "blurry, text", "-p", "inferencesh"
    )
    assert result.exit_code == 0, result.stderr
    assert submitted_inputs(use_emulator)[0]["negative_prompt"] == "blurry, text"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["-a", "1:1", "-r", "https://example.com/a.png", "-r", "https://example.com/b.png"],
            "accepts at most 1 reference image; 2 given",
            id="2 refs",
        ),
        pytest.param(
            ["-r", "https://example.com/a.png", "-r", "https://example.com/b.png"],
            "accepts at most 1 reference image; 2 given",
            id="2 refs before auto",
        ),
        pytest.param(["-a", "auto"], "does not support aspect ratio auto", id="-a auto"),
        pytest.param(["-f", "png"], "cannot choose the output format", id="format"),
        pytest.param(["--mode", "multi-shot"], "does not offer --mode multi-shot", id="mode"),
    ],
)
def test_refused_before_the_network(
    run_cli, use_emulator: Emulator, args: list[str], message: str
) -> None:
    result = run_cli("generate", "a red fox", *args, "-p", "inferencesh")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not api_requests(use_emulator)


def test_a_failed_task_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject(
        "inferencesh", Fault(kind="task_failure", message="Content policy violation")
    )
    result = run_cli("generate", "a red fox", "-p", "inferencesh", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Content policy violation" in body["error"]["message"]
    assert body["job"]["provider"] == "inferencesh" and body["job"]["state"] == "failed"


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_INFERENCESH_API_KEY", "inf_wrong-key-0123456789")
    result = run_cli("generate", "a red fox", "-p", "inferencesh")
    assert result.exit_code == 4
    assert "kling config set-key inferencesh" in result.stderr
    assert "inf_wrong-key-0123456789" not in result.stdout + result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject(
        "inferencesh", Fault(kind="rate_limit", on="submit", retry_after=0, times=50)
    )
    result = run_cli("generate", "a red fox", "-p", "inferencesh")
    assert result.exit_code == 6
    submits = [r for r in api_requests(use_emulator) if r.method == "POST"]
    assert len(submits) > 1, "a 429 with Retry-After is retried before giving up"


# The status table (SDK `types.TaskStatus`): current numbering, string names too, success only with
# an image.

TASK = TaskHandle("inferencesh", "task_abc123", expected_images=1)
IMAGE_URL = "https://cdn.example.com/task_abc123/output.png"


def answer(task: dict, status_code: int = 200) -> HttpResponse:
    body = {"data": {"id": "task_abc123", **task}, "messages": []}
    return HttpResponse(status_code, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (0, TaskState.PENDING),
        (2, TaskState.PENDING),
        (7, TaskState.RUNNING),
        (9, TaskState.RUNNING),  # UPLOADING now; COMPLETED in the legacy numbering
        ("queued", TaskState.PENDING),
        ("RUNNING", TaskState.RUNNING),
        ("setting_up", TaskState.RUNNING),
    ],
)
def test_unfinished_statuses(status: object, state: TaskState) -> None:
    assert InferenceSh().parse_poll(answer({"status": status}), TASK).state is state


@pytest.mark.parametrize(
    "output", [{"image": IMAGE_URL}, {"image": {"uri": IMAGE_URL}}, {"image": {"url": IMAGE_URL}}]
)
@pytest.mark.parametrize("status", [10, "completed", "COMPLETED"])
def test_completed_with_an_image(status: object, output: dict) -> None:
    result = InferenceSh().parse_poll(answer({"status": status, "output": output}), TASK)
    assert result.state is TaskState.SUCCEEDED
    assert [o.url for o in result.outputs] == [IMAGE_URL]


@pytest.mark.parametrize("output", [None, {}, {"image": "inf://files/abc/output.png"}])
def test_completed_without_an_image_is_not_success(output: object) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        InferenceSh().parse_poll(answer({"status": 10, "output": output, "error": ""}), TASK)
    assert caught.value.hint == "Look again with `kling status task_abc123 --provider inferencesh`."


def test_completed_without_an_image_but_with_an_error_is_a_failure() -> None:
    result = InferenceSh().parse_poll(answer({"status": 10, "error": "No image URL"}), TASK)
    assert result.state is TaskState.FAILED and result.error == "No image URL"


@pytest.mark.parametrize(("status", "reason"), [(11, "No image URL: x"), ("cancelled", None)])
def test_failed_and_cancelled(status: object, reason: str | None) -> None:
    result = InferenceSh().parse_poll(answer({"status": status, "error": reason}), TASK)
    assert result.state is TaskState.FAILED and result.error


@pytest.mark.parametrize("status", [13, "rejected"])
def test_rejected_is_out_of_credits(status: object) -> None:
    with pytest.raises(OutOfCreditsError):
        InferenceSh().parse_poll(answer({"status": status, "error": "no balance"}), TASK)


def test_problem_details_are_the_message() -> None:
    problem = {"type": "https://api.inference.sh/errors/unauthorized", "title": "Unauthorized"}
    response = HttpResponse(401, {}, json.dumps({**problem, "detail": "invalid api key"}).encode())
    with pytest.raises(AuthError, match="invalid api key"):
        InferenceSh().parse_poll(response, TASK)


def test_waiting_follows_the_status_stream_instead_of_polling(
    run_cli, use_emulator: Emulator
) -> None:
    result = run_cli("generate", "a red fox", "-p", "inferencesh", "-a", "16:9", "--json")
    assert result.exit_code == 0, result.stderr
    gets = [r for r in use_emulator.requests if r.server == "api" and r.method == "GET"]
    stream, final = gets  # one stream until the end, then one GET for the outputs
    assert stream.path.endswith("/stream")
    assert stream.headers["accept"] == "application/x-ndjson"
    assert not final.path.endswith("/stream")
    assert len(result.json()["files"]) == 1


def test_a_broken_stream_falls_back_to_polling(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("inferencesh", Fault(kind="drop_connection", on="poll"))
    result = run_cli("generate", "a red fox", "-p", "inferencesh", "-a", "16:9")
    assert result.exit_code == 0, result.stderr
    gets = [r for r in use_emulator.requests if r.server == "api" and r.method == "GET"]
    assert gets[0].path.endswith("/stream") and len(gets) >= 2
