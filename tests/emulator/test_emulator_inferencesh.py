"""inference.sh running `klingai/image-o1` as documented: the app page
(https://inference.sh/apps/klingai/image-o1), its source and the inferencesh SDK 0.36."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault

from .helpers import AUTH, INFERENCESH_APP, InferenceShCaller, wait_until

# The curl example of https://inference.sh/docs/api/running-apps.
RUN_EXAMPLE = {
    "app": "klingai/image-o1",
    "input": {
        "prompt": "A serene mountain landscape at sunset",
        "image": "https://example.com/ref.png",
        "aspect_ratio": "16:9",
        "resolution": "2k",
        "n": 1,
    },
    "webhook": "https://your-server.com/webhook",
}
QUEUED, RUNNING, UPLOADING, COMPLETED, FAILED, CANCELLED = 2, 7, 9, 10, 11, 12
PROGRESSION = [QUEUED, RUNNING, UPLOADING, COMPLETED]
SIZES = {
    ("16:9", "1k"): (1360, 768), ("1:1", "1k"): (1024, 1024), ("9:16", "1k"): (768, 1360),
    ("4:3", "1k"): (1168, 880), ("2:3", "1k"): (832, 1248),
    ("21:9", "2k"): (3104, 1312), ("3:4", "2k"): (1760, 2336), ("3:2", "2k"): (2496, 1664),
    ("1:1", "2k"): (2048, 2048), ("9:16", "2k"): (1536, 2720),
}  # fmt: skip

# Most tests only need a finished task.
FAST_LATENCY = 0.05


@pytest.fixture
def inferencesh(emu: Emulator, http: httpx.Client) -> InferenceShCaller:
    emu.latency = FAST_LATENCY  # tests that watch the timeline set their own
    return InferenceShCaller(emu, http)


def is_subsequence(items: list[int], of: list[int]) -> bool:
    remaining = iter(of)
    return all(item in remaining for item in items)


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The RFC 9457 body the SDK parses (`_request`), checked for its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith(f"/errors/{code}")
    assert problem["status"] == status
    assert isinstance(problem["title"], str) and isinstance(problem["detail"], str)
    return problem


def ndjson_lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def test_the_base_url_is_the_documented_root(emu: Emulator) -> None:
    assert emu.base_url("inferencesh") == f"{emu.api_origin}/inferencesh"


def test_the_documented_run_example_completes_with_one_png(
    emu: Emulator, inferencesh: InferenceShCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6  # room for polls while queued and running
    ran = inferencesh.run(RUN_EXAMPLE)
    assert ran.status_code == 200
    body = ran.json()
    assert body["messages"] == []
    created = body["data"]
    assert created["status"] == 1  # RECEIVED (inferred)
    assert (created["input"], created["output"], created["error"]) == (
        RUN_EXAMPLE["input"],
        None,
        None,
    )
    assert created["webhook"] == RUN_EXAMPLE["webhook"]
    task_id = created["id"]

    seen: list[int] = []

    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = inferencesh.get(f"/tasks/{task_id}").json()["data"]
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        return task if task["status"] == COMPLETED else None

    done = wait_until(finished)
    assert seen[0] == QUEUED and seen[-1] == COMPLETED
    assert is_subsequence(seen, PROGRESSION), seen
    assert done["error"] is None
    url = done["output"]["image"]
    assert url.startswith(emu.image_origin + "/") and url.endswith(".png")
    assert done["output"]["output_meta"]["outputs"] == [
        {
            "type": "image",
            "count": 1,
            "extra": {"model": "kling-image-o1", "mode": "image-to-image", "resolution": "2k"},
        }
    ]
    download, image = fetch_image(url)
    assert (image.format, image.size) == ("PNG", (2720, 1536))
    assert download.headers["content-type"] == "image/png"


def test_the_seed_example_without_a_prompt_is_refused(inferencesh: InferenceShCaller) -> None:
    # The app page shows `"input": {}`; the app's schema requires `prompt` (app source).
    problem = problem_of(
        inferencesh.run({"app": INFERENCESH_APP, "input": {}}), 422, "validation_error"
    )
    assert "prompt" in problem["detail"]


def test_aspect_ratios_and_resolutions_give_their_documented_sizes(
    inferencesh: InferenceShCaller, fetch_image: Any
) -> None:
    task_ids = {
        key: inferencesh.run_input(
            prompt="a lighthouse", aspect_ratio=key[0], resolution=key[1]
        ).json()["data"]["id"]
        for key in SIZES
    }
    for key, task_id in task_ids.items():
        done = inferencesh.wait_for_task(task_id)
        _, image = fetch_image(done["output"]["image"])
        assert (image.format, image.size) == ("PNG", SIZES[key]), key


def test_defaults_are_16_9_at_1k_text_to_image(
    inferencesh: InferenceShCaller, fetch_image: Any
) -> None:
    task_id = inferencesh.run_input(prompt="a lighthouse").json()["data"]["id"]
    output = inferencesh.wait_for_task(task_id)["output"]
    assert output["output_meta"]["outputs"][0]["extra"]["mode"] == "text-to-image"
    assert fetch_image(output["image"])[1].size == (1360, 768)


def test_n_above_one_still_returns_one_image_and_reports_the_count(
    inferencesh: InferenceShCaller,
) -> None:
    task_id = inferencesh.run_input(prompt="a lighthouse", n=4).json()["data"]["id"]
    output = inferencesh.wait_for_task(task_id)["output"]
    assert isinstance(output["image"], str)  # one file, not a list (app source)
    assert output["output_meta"]["outputs"][0]["count"] == 4


def test_optional_fields_and_unknown_ones_are_accepted(inferencesh: InferenceShCaller) -> None:
    response = inferencesh.run(
        {
            "app": "klingai/image-o1@abc123",
            "input": {"prompt": "x", "negative_prompt": "blur", "image": None, "extra": 1},
            "infra": "cloud",
        }
    )
    assert response.status_code == 200


INVALID_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("prompt missing", {"prompt": None}, "prompt"),
    ("prompt empty", {"prompt": ""}, "prompt"),
    ("prompt not a string", {"prompt": 3}, "prompt"),
    ("two images", {"image": ["https://e.com/a.png", "https://e.com/b.png"]}, "image"),
    ("image data uri", {"image": "data:image/png;base64,AAAA"}, "image"),
    ("image local path", {"image": "/tmp/ref.png"}, "image"),
    ("negative prompt", {"negative_prompt": 5}, "negative_prompt"),
    ("aspect ratio auto", {"aspect_ratio": "auto"}, "aspect_ratio"),
    ("aspect ratio", {"aspect_ratio": "5:4"}, "aspect_ratio"),
    ("resolution", {"resolution": "4k"}, "resolution"),
    ("resolution upper case", {"resolution": "2K"}, "resolution"),
    ("n zero", {"n": 0}, "n"),
    ("n ten", {"n": 10}, "n"),
    ("n string", {"n": "2"}, "n"),
    ("unknown file", {"image": "inf://files/nothing/ref.png"}, "image"),
]


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [case[1:] for case in INVALID_INPUTS],
    ids=[case[0] for case in INVALID_INPUTS],
)
def test_invalid_input_is_a_422_problem(
    emu: Emulator, inferencesh: InferenceShCaller, fields: dict[str, Any], mentions: str
) -> None:
    task_input = {"prompt": "a lighthouse", **fields}
    problem = problem_of(inferencesh.run_input(**task_input), 422, "validation_error")
    assert f"input.{mentions}" in problem["detail"]
    assert emu.events == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([1], 400, "invalid_request"),
        ({"input": {"prompt": "x"}}, 400, "invalid_request"),
        ({"app": "klingai/image-o2", "input": {"prompt": "x"}}, 404, "not_found"),
        ({"app": INFERENCESH_APP, "input": "x"}, 422, "validation_error"),
        ({"app": INFERENCESH_APP, "input": {"prompt": "x"}, "webhook": "nope"}, 422,
         "validation_error"),
    ],
    ids=["not an object", "app missing", "other app", "input not an object", "bad webhook"],
)  # fmt: skip
def test_invalid_run_bodies_are_problems(
    inferencesh: InferenceShCaller, body: Any, status: int, code: str
) -> None:
    problem_of(inferencesh.run(body), status, code)


def test_a_prompt_over_2500_characters_fails_the_task(inferencesh: InferenceShCaller) -> None:
    # The app's schema has no maxLength (app source): the run is accepted and the task fails.
    ran = inferencesh.run_input(prompt="a" * 2501)
    assert ran.status_code == 200
    done = inferencesh.wait_for_task(ran.json()["data"]["id"])
    assert done["status"] == FAILED
    assert "2500" in done["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic emulator-key"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_a_bad_key_gets_a_401_problem(
    inferencesh: InferenceShCaller, headers: dict[str, str]
) -> None:
    calls = [
        inferencesh.run(RUN_EXAMPLE, headers),
        inferencesh.get("/tasks/some-task", headers),
        inferencesh.get("/tasks/some-task/stream", headers),
        inferencesh.post("/tasks/some-task/cancel", headers=headers),
        inferencesh.post("/files", {"files": [{"filename": "a.png"}]}, headers),
    ]
    for response in calls:
        assert problem_of(response, 401, "unauthorized")["title"] == "Unauthorized"


def test_task_failure_fault_ends_in_status_11_with_the_message(
    emu: Emulator, inferencesh: InferenceShCaller
) -> None:
    emu.inject("inferencesh", Fault("task_failure", message="No image URL: policy"))
    ran = inferencesh.run(RUN_EXAMPLE)
    assert ran.status_code == 200  # the run itself is accepted
    done = inferencesh.wait_for_task(ran.json()["data"]["id"])
    assert (done["status"], done["output"], done["error"]) == (FAILED, None, "No image URL: policy")
    assert [event[1] for event in emu.events] == ["created", "failed"]


@pytest.mark.parametrize("phase", ["submit", "poll"])
def test_rate_limit_is_a_429_problem(
    emu: Emulator, inferencesh: InferenceShCaller, phase: Any
) -> None:
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    emu.inject("inferencesh", Fault("rate_limit", on=phase, retry_after=2))
    response = (
        inferencesh.run(RUN_EXAMPLE) if phase == "submit" else inferencesh.get(f"/tasks/{task_id}")
    )
    problem_of(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "2"
    assert inferencesh.get(f"/tasks/{task_id}").status_code == 200


def test_server_error_is_a_problem_and_files_are_not_a_fault_phase(
    emu: Emulator, inferencesh: InferenceShCaller
) -> None:
    emu.inject("inferencesh", Fault("server_error", status=502))
    files = inferencesh.post("/files", {"files": [{"filename": "a.png"}]})
    assert files.status_code == 200  # neither a submit nor a poll
    problem_of(inferencesh.run(RUN_EXAMPLE), 502, "internal_error")


def test_stream_sends_snapshots_until_a_terminal_one(
    emu: Emulator, inferencesh: InferenceShCaller
) -> None:
    emu.latency = 0.4
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    lines = ndjson_lines(inferencesh.stream(task_id))
    assert lines[0] == {"type": "heartbeat"}
    snapshots = [line for line in lines if line.get("type") != "heartbeat"]
    statuses = [snapshot["status"] for snapshot in snapshots]
    assert len(statuses) >= 2 and statuses[-1] == COMPLETED
    assert is_subsequence(statuses, PROGRESSION), statuses
    assert all(snapshot["id"] == task_id for snapshot in snapshots)
    assert snapshots[-1]["output"]["image"].startswith(emu.image_origin)
    # A stream opened on a finished task gives its final snapshot at once.
    [_, final] = ndjson_lines(inferencesh.stream(task_id))
    assert final == inferencesh.get(f"/tasks/{task_id}").json()["data"]


def test_stream_of_a_failing_task_ends_with_status_11(
    emu: Emulator, inferencesh: InferenceShCaller
) -> None:
    emu.inject("inferencesh", Fault("task_failure"))
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    lines = ndjson_lines(inferencesh.stream(task_id))
    assert (lines[-1]["status"], lines[-1]["output"]) == (FAILED, None)
    assert UPLOADING not in [line.get("status") for line in lines]  # no output to upload


def test_cancel_stops_a_running_task(emu: Emulator, inferencesh: InferenceShCaller) -> None:
    emu.latency = 5.0
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    cancelled = inferencesh.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["data"]["status"] == CANCELLED
    assert inferencesh.get(f"/tasks/{task_id}").json()["data"]["status"] == CANCELLED
    assert ndjson_lines(inferencesh.stream(task_id))[-1]["status"] == CANCELLED
    assert [event[1] for event in emu.events] == ["created", "cancelled"]


def test_cancel_of_a_finished_task_changes_nothing(inferencesh: InferenceShCaller) -> None:
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    inferencesh.wait_for_task(task_id)
    response = inferencesh.post(f"/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == COMPLETED


@pytest.mark.parametrize("method_path", ["GET ", "GET /stream", "POST /cancel"])
def test_an_unknown_task_is_a_404_problem(inferencesh: InferenceShCaller, method_path: str) -> None:
    method, suffix = method_path.split(" ")
    response = inferencesh.http.request(
        method, f"{inferencesh.url}/tasks/nothing{suffix}", headers=AUTH
    )
    problem_of(response, 404, "not_found")


def test_unknown_routes_are_404_problems(inferencesh: InferenceShCaller) -> None:
    problem_of(inferencesh.get("/apps"), 404, "not_found")
    problem_of(inferencesh.post("/tasks/x/retry"), 404, "not_found")


def test_upload_flow_round_trips_the_bytes_into_a_run(
    emu: Emulator, inferencesh: InferenceShCaller, http: httpx.Client
) -> None:
    content = b"\x89PNG\r\n\x1a\n reference bytes"
    registered = inferencesh.post(
        "/files",
        {
            "files": [
                {
                    "uri": "",
                    "filename": "my ref.png",
                    "content_type": "image/png",
                    "path": None,
                    "size": len(content),
                    "public": None,
                }
            ]
        },
    )
    assert registered.status_code == 200
    [file] = registered.json()["data"]
    assert file["uri"] == f"inf://files/{file['id']}/my ref.png"
    assert (file["filename"], file["content_type"], file["size"]) == (
        "my ref.png",
        "image/png",
        len(content),
    )
    upload_url = file["upload_url"]
    assert upload_url.startswith(emu.api_origin + "/inferencesh/")

    # Referencing the file before its bytes arrive is refused.
    problem_of(inferencesh.run_input(prompt="x", image=file["uri"]), 422, "validation_error")

    put = http.put(upload_url, content=content, headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    [recorded] = [r for r in emu.requests if r.method == "PUT"]
    assert "authorization" not in recorded.headers  # a signed URL, no Bearer (SDK `upload_file`)
    stored = http.get(upload_url)
    assert (stored.content, stored.headers["content-type"]) == (content, "image/png")

    ran = inferencesh.run_input(prompt="use the reference", image=file["uri"])
    assert ran.status_code == 200
    done = inferencesh.wait_for_task(ran.json()["data"]["id"])
    assert done["input"]["image"] == file["uri"]
    assert done["output"]["output_meta"]["outputs"][0]["extra"]["mode"] == "image-to-image"


def test_upload_url_needs_its_signature(inferencesh: InferenceShCaller, http: httpx.Client) -> None:
    [file] = inferencesh.post("/files", {"files": [{"filename": "a.png"}]}).json()["data"]
    unsigned = file["upload_url"].split("?")[0]
    assert http.put(unsigned, content=b"x").status_code == 403
    assert http.put(unsigned + "?signature=forged", content=b"x").status_code == 403
    assert http.put(file["upload_url"], content=b"x").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"files": []}, {"files": ["a.png"]}, {"files": [{"filename": "a/b.png"}]},
     {"files": [{"filename": "a.png", "size": -1}]}],
    ids=["no files", "empty", "not objects", "slash in name", "negative size"],
)  # fmt: skip
def test_invalid_file_registrations_are_422_problems(
    inferencesh: InferenceShCaller, body: Any
) -> None:
    problem_of(inferencesh.post("/files", body), 422, "validation_error")


def test_reset_forgets_tasks_files_and_cancellations(
    emu: Emulator, inferencesh: InferenceShCaller
) -> None:
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    inferencesh.post(f"/tasks/{task_id}/cancel")
    emu.reset()
    assert inferencesh.get(f"/tasks/{task_id}").status_code == 404
    assert emu.events == []


def test_transport_faults_reach_run_stream_and_download(
    emu: Emulator, inferencesh: InferenceShCaller, http: httpx.Client
) -> None:
    emu.inject("inferencesh", Fault("drop_connection"))
    with pytest.raises(httpx.RemoteProtocolError):
        inferencesh.run(RUN_EXAMPLE)
    assert emu.events == []  # nothing was created
    task_id = inferencesh.run(RUN_EXAMPLE).json()["data"]["id"]
    emu.inject("inferencesh", Fault("server_error", on="poll", status=503))
    problem_of(inferencesh.stream(task_id), 503, "internal_error")  # the stream is a poll
    url = inferencesh.wait_for_task(task_id)["output"]["image"]
    emu.inject("inferencesh", Fault("truncated_download"))
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).status_code == 200
