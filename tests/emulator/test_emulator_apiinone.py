"""API in One as documented: the Kling Image O1 API page (https://apiin.one/models/kling-image-o1)
and the API docs (https://apiin.one/docs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault

from .helpers import APIINONE_EXAMPLE, ApiInOneCaller, wait_until

INVALID_API_KEY = {
    "error": {"code": 401, "message": "Invalid API key", "type": "authentication_error"}
}
SIZES = {
    ("16:9", "1k"): (1360, 768), ("auto", "1k"): (1024, 1024), ("9:16", "1k"): (768, 1360),
    ("21:9", "1k"): (1552, 656), ("3:2", "1k"): (1248, 832),
    ("1:1", "2k"): (2048, 2048), ("auto", "2k"): (2048, 2048), ("4:3", "2k"): (2336, 1760),
    ("2:3", "2k"): (1664, 2496), ("16:9", "2k"): (2720, 1536),
}  # fmt: skip

# Most tests only need a finished task.
FAST_LATENCY = 0.05


@pytest.fixture
def apiinone(emu: Emulator, http: httpx.Client) -> ApiInOneCaller:
    emu.latency = FAST_LATENCY  # tests that watch the timeline set their own
    return ApiInOneCaller(emu, http)


def test_the_base_url_ends_in_the_documented_api_v1(emu: Emulator) -> None:
    assert urlsplit(emu.base_url("apiinone")).path == "/apiinone/api/v1"


def test_seed_example_is_accepted_and_completes_with_a_png(
    emu: Emulator, apiinone: ApiInOneCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6  # room for a first poll while the task still runs
    submitted = apiinone.submit(APIINONE_EXAMPLE)
    assert submitted.status_code == 200
    task_id = submitted.json()["data"]["task_id"]
    assert task_id.endswith("_kio1")
    assert submitted.json() == {
        "code": 200,
        "message": "success",
        "data": {"task_id": task_id, "status": "IN_PROGRESS"},
    }

    first = apiinone.poll(task_id)
    assert first.status_code == 200
    assert first.json() == {
        "code": 200,
        "message": "success",
        "data": {"task_id": task_id, "status": "IN_PROGRESS"},
    }
    done = apiinone.wait_for_task(task_id)
    assert done["status"] == "completed"
    [url] = done["outputs"]
    assert url.startswith(emu.image_origin + "/") and url.endswith(".png")

    download, image = fetch_image(url)
    assert (image.format, image.size) == ("PNG", (1360, 768))
    assert download.headers["content-type"] == "image/png"


def test_aspect_ratios_and_resolutions_give_their_documented_sizes(
    apiinone: ApiInOneCaller, fetch_image: Any
) -> None:
    task_ids = {
        key: apiinone.submit_fields(aspect_ratio=key[0], resolution=key[1]).json()["data"][
            "task_id"
        ]
        for key in SIZES
    }
    for key, task_id in task_ids.items():
        [url] = apiinone.wait_for_task(task_id)["outputs"]
        _, image = fetch_image(url)
        assert (image.format, image.size) == ("PNG", SIZES[key]), key


def test_defaults_are_one_square_1k_image_and_text_only_is_accepted(
    apiinone: ApiInOneCaller, fetch_image: Any
) -> None:
    response = apiinone.submit({"model": "kling-image-o1", "prompt": "a lighthouse"})
    assert response.status_code == 200
    [url] = apiinone.wait_for_task(response.json()["data"]["task_id"])["outputs"]
    assert fetch_image(url)[1].size == (1024, 1024)


@pytest.mark.parametrize("count", [2, 9])
def test_num_images_gives_that_many_distinct_images(
    apiinone: ApiInOneCaller, fetch_image: Any, count: int
) -> None:
    task_id = apiinone.submit_fields(num_images=count).json()["data"]["task_id"]
    outputs = apiinone.wait_for_task(task_id)["outputs"]
    assert len(outputs) == len(set(outputs)) == count
    assert {fetch_image(url)[1].size for url in outputs} == {(1360, 768)}


def test_multi_shot_takes_one_reference_and_ten_references_are_allowed(
    apiinone: ApiInOneCaller,
) -> None:
    assert apiinone.submit_fields(type="ai-multi-shot").status_code == 200
    urls = [f"https://example.com/ref{index}.png" for index in range(10)]
    assert apiinone.submit_fields(type="image-to-image", images=urls).status_code == 200
    callback = apiinone.submit_fields(callback_url="https://example.com/hook")
    assert callback.status_code == 200


URL = "https://example.com/a.png"
INVALID_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("model missing", {"model": None}, "model"),
    ("model wrong", {"model": "flux-2"}, "model"),
    ("prompt missing", {"prompt": None}, "prompt"),
    ("prompt empty", {"prompt": "  "}, "prompt"),
    ("prompt not a string", {"prompt": 7}, "prompt"),
    ("type unknown", {"type": "text-to-image"}, "type"),
    ("multi-shot without reference", {"type": "ai-multi-shot", "images": []}, "ai-multi-shot"),
    ("multi-shot two references", {"type": "ai-multi-shot", "images": [URL, URL]},
     "ai-multi-shot"),
    ("images not a list", {"images": URL}, "images"),
    ("eleven images", {"images": [URL] * 11}, "images"),
    ("image not http", {"images": ["ftp://example.com/a.png"]}, "images"),
    ("image data uri", {"images": ["data:image/png;base64,AAAA"]}, "images"),
    ("aspect ratio", {"aspect_ratio": "5:4"}, "aspect_ratio"),
    ("resolution", {"resolution": "4k"}, "resolution"),
    ("resolution upper case", {"resolution": "2K"}, "resolution"),
    ("zero images", {"num_images": 0}, "num_images"),
    ("ten images", {"num_images": 10}, "num_images"),
    ("fractional count", {"num_images": 1.5}, "num_images"),
    ("boolean count", {"num_images": True}, "num_images"),
    ("callback not a url", {"callback_url": "nope"}, "callback_url"),
    ("generic docs field", {"negative_prompt": "blur"}, "negative_prompt"),
    ("generic docs references", {"input_urls": [URL]}, "input_urls"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [case[1:] for case in INVALID_FIELDS],
    ids=[case[0] for case in INVALID_FIELDS],
)
def test_invalid_submission_is_a_documented_400(
    emu: Emulator, apiinone: ApiInOneCaller, fields: dict[str, Any], mentions: str
) -> None:
    response = apiinone.submit_fields(**fields)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (400, "invalid_request")
    assert error["message"].startswith("Invalid parameters")  # model page "Error Codes"
    assert mentions in error["message"]
    assert emu.events == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"], ids=["not json", "not an object"])
def test_a_body_that_is_not_a_json_object_is_a_400(
    apiinone: ApiInOneCaller, http: httpx.Client, body: bytes
) -> None:
    response = http.post(
        f"{apiinone.url}/images/generations",
        content=body,
        headers={"Authorization": "Bearer emulator-key", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic emulator-key"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_a_bad_key_gets_the_documented_401(
    apiinone: ApiInOneCaller, headers: dict[str, str]
) -> None:
    submit = apiinone.submit(APIINONE_EXAMPLE, headers)
    assert (submit.status_code, submit.json()) == (401, INVALID_API_KEY)
    poll = apiinone.poll("abc_kio1", headers)
    assert (poll.status_code, poll.json()) == (401, INVALID_API_KEY)


def test_task_failure_fault_fails_the_task_with_its_message(
    emu: Emulator, apiinone: ApiInOneCaller
) -> None:
    emu.inject("apiinone", Fault("task_failure", message="content policy"))
    submitted = apiinone.submit(APIINONE_EXAMPLE)
    assert submitted.json()["data"]["status"] == "IN_PROGRESS"  # the submit itself succeeds
    task_id = submitted.json()["data"]["task_id"]
    assert apiinone.wait_for_task(task_id) == {
        "task_id": task_id,
        "status": "failed",
        "error": "content policy",
    }
    assert [event[1] for event in emu.events] == ["created", "failed"]


@pytest.mark.parametrize("phase", ["submit", "poll"])
def test_rate_limit_uses_the_error_envelope(
    emu: Emulator, apiinone: ApiInOneCaller, phase: Any
) -> None:
    task_id = apiinone.submit(APIINONE_EXAMPLE).json()["data"]["task_id"]
    emu.inject("apiinone", Fault("rate_limit", on=phase, retry_after=3))
    response = apiinone.submit(APIINONE_EXAMPLE) if phase == "submit" else apiinone.poll(task_id)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (429, "rate_limit_error")
    assert apiinone.poll(task_id).status_code == 200


def test_server_error_uses_the_error_envelope(emu: Emulator, apiinone: ApiInOneCaller) -> None:
    emu.inject("apiinone", Fault("server_error", status=503))
    response = apiinone.submit(APIINONE_EXAMPLE)
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": 503, "message": "Internal server error", "type": "server_error"}
    }
    assert emu.events == []


def test_an_unknown_task_and_an_unknown_route_are_404(apiinone: ApiInOneCaller) -> None:
    response = apiinone.poll("nothing_kio1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404
    other = apiinone.http.get(f"{apiinone.url}/models", headers={"Authorization": "Bearer x"})
    assert other.status_code == 401  # the key is checked first
    assert apiinone.poll("a/b").status_code == 404


def test_the_task_stays_in_progress_until_the_latency_is_over(
    emu: Emulator, apiinone: ApiInOneCaller
) -> None:
    task_id = apiinone.submit(APIINONE_EXAMPLE).json()["data"]["task_id"]
    statuses = []

    def finished() -> bool:
        statuses.append(apiinone.poll(task_id).json()["data"]["status"])
        return statuses[-1] == "completed"

    wait_until(finished)
    assert set(statuses) <= {"IN_PROGRESS", "completed"}
    assert [event[1] for event in emu.events] == ["created", "completed"]


def test_transport_faults_reach_submit_poll_and_download(
    emu: Emulator, apiinone: ApiInOneCaller, http: httpx.Client
) -> None:
    emu.inject("apiinone", Fault("drop_connection"))
    with pytest.raises(httpx.RemoteProtocolError):
        apiinone.submit(APIINONE_EXAMPLE)
    assert emu.events == []  # nothing was created
    task_id = apiinone.submit(APIINONE_EXAMPLE).json()["data"]["task_id"]
    emu.inject("apiinone", Fault("server_error", on="poll"))
    assert apiinone.poll(task_id).status_code == 500
    [url] = apiinone.wait_for_task(task_id)["outputs"]
    emu.inject("apiinone", Fault("truncated_download"))
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).status_code == 200
