"""fal.ai's queue API for `fal-ai/kling-image/o1` as documented: the model API page
(https://fal.ai/models/fal-ai/kling-image/o1/api) and fal's queue docs."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault

from .helpers import FAL_EXAMPLE, FalCaller, decode_image, wait_until


@pytest.fixture
def fal(emu: Emulator, http: httpx.Client) -> FalCaller:
    return FalCaller(emu, http)


def test_documented_example_runs_through_the_queue_to_a_2k_png(
    emu: Emulator, fal: FalCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6  # queued for the first 0.2 s: room for the first status read
    submitted = fal.submit(FAL_EXAMPLE)
    assert submitted.status_code == 200
    body = submitted.json()
    request_id = body["request_id"]
    # Owner/app only, without /o1, and pointing back at this emulator (queue docs).
    base = f"{emu.base_url('fal')}/fal-ai/kling-image/requests/{request_id}"
    assert body == {
        "request_id": request_id,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
    }

    queued = fal.get(body["status_url"])
    assert queued.status_code == 202
    assert queued.json()["status"] == "IN_QUEUE"
    assert queued.json()["queue_position"] == 0
    assert queued.json()["response_url"] == base
    wait_until(lambda: fal.get(body["status_url"]).json()["status"] == "IN_PROGRESS")
    assert fal.get(body["status_url"]).status_code == 202
    done = fal.wait_for_completion(body["status_url"])
    assert "error" not in done
    assert done["metrics"]["inference_time"] == pytest.approx(0.6)
    assert fal.get(body["status_url"]).status_code == 200

    result = fal.get(body["response_url"])
    assert result.status_code == 200
    [image] = result.json()["images"]
    download, picture = fetch_image(image["url"])
    assert (picture.format, picture.size) == ("PNG", (2048, 2048))  # auto -> square, 2K
    assert image["content_type"] == "image/png" == download.headers["content-type"]
    assert (image["width"], image["height"]) == (2048, 2048)
    assert image["file_size"] == len(download.content)
    assert image["file_name"].endswith(".png")


def test_num_images_output_format_and_aspect_ratio(fal: FalCaller, fetch_image: Any) -> None:
    body = fal.submit_fields(
        num_images=3, output_format="jpeg", resolution="1K", aspect_ratio="16:9"
    ).json()
    fal.wait_for_completion(body["status_url"])
    images = fal.get(body["response_url"]).json()["images"]
    assert len(images) == 3
    assert len({image["url"] for image in images}) == 3
    for image in images:
        _, picture = fetch_image(image["url"])
        assert (picture.format, picture.size) == ("JPEG", (1360, 768))
        assert image["content_type"] == "image/jpeg"


def test_defaults_are_one_png_auto_1k(fal: FalCaller, fetch_image: Any) -> None:
    body = fal.submit({"prompt": "x", "image_urls": ["https://example.com/a.png"]}).json()
    fal.wait_for_completion(body["status_url"])
    [image] = fal.get(body["response_url"]).json()["images"]
    _, picture = fetch_image(image["url"])
    assert (picture.format, picture.size) == ("PNG", (1024, 1024))


def test_sync_mode_returns_data_uris(fal: FalCaller) -> None:
    body = fal.submit_fields(sync_mode=True, resolution="1K", output_format="webp").json()
    fal.wait_for_completion(body["status_url"])
    [image] = fal.get(body["response_url"]).json()["images"]
    prefix, _, data = image["url"].partition(",")
    assert prefix == "data:image/webp;base64"
    assert decode_image(base64.b64decode(data)).size == (1024, 1024)


def test_logs_only_when_asked(fal: FalCaller) -> None:
    body = fal.submit_fields(resolution="1K").json()
    fal.wait_for_completion(body["status_url"])
    assert fal.get(body["status_url"]).json()["logs"] is None
    logs = fal.get(body["status_url"], logs="1").json()["logs"]
    assert isinstance(logs, list) and {"timestamp", "level", "message"} <= set(logs[0])


def test_data_uri_references_and_elements_are_accepted(fal: FalCaller) -> None:
    response = fal.submit_fields(
        image_urls=["data:image/png;base64,iVBORw0KGgo="],
        elements=[
            {
                "frontal_image_url": "https://example.com/face.png",
                "reference_image_urls": ["https://example.com/side.png"],
            }
        ],
    )
    assert response.status_code == 200, response.text


def test_webhook_submit_carries_a_gateway_request_id(fal: FalCaller) -> None:
    body = fal.submit(FAL_EXAMPLE, params={"fal_webhook": "https://example.com/hook"}).json()
    assert body["gateway_request_id"] == body["request_id"]
    bad = fal.submit(FAL_EXAMPLE, params={"fal_webhook": "nope"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


URL = "https://example.com/a.png"
INVALID: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("image_urls missing", {"image_urls": None}, ["body", "image_urls"], "missing"),
    ("image_urls empty", {"image_urls": []}, ["body", "image_urls"], "too_short"),
    ("eleven image_urls", {"image_urls": [URL] * 11}, ["body", "image_urls"], "too_long"),
    ("not a url", {"image_urls": [URL, "a.png"]}, ["body", "image_urls", 1], "url_parsing"),
    ("prompt missing", {"prompt": None}, ["body", "prompt"], "missing"),
    ("prompt long", {"prompt": "a" * 2501}, ["body", "prompt"], "string_too_long"),
    ("num_images 10", {"num_images": 10}, ["body", "num_images"], "less_than_equal"),
    ("num_images 0", {"num_images": 0}, ["body", "num_images"], "greater_than_equal"),
    ("lower-case 2k", {"resolution": "2k"}, ["body", "resolution"], "literal_error"),
    ("aspect ratio", {"aspect_ratio": "5:4"}, ["body", "aspect_ratio"], "literal_error"),
    ("output format", {"output_format": "gif"}, ["body", "output_format"], "literal_error"),
    ("kling's count field", {"n": 2}, ["body", "n"], "extra_forbidden"),
    (
        "element references",
        {"elements": [{"reference_image_urls": [URL] * 4}]},
        ["body", "elements", 0, "reference_image_urls"],
        "too_long",
    ),
    (
        "images plus elements",
        {"image_urls": [URL] * 10, "elements": [{"frontal_image_url": URL}]},
        ["body", "elements"],
        "too_long",
    ),
]


@pytest.mark.parametrize(
    ("fields", "loc", "kind"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_is_422_with_fastapi_details(
    emu: Emulator, fal: FalCaller, fields: dict[str, Any], loc: list[Any], kind: str
) -> None:
    response = fal.submit_fields(**fields)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (loc, kind)
    assert isinstance(detail["msg"], str)
    assert emu.events == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Key wrong"}, {"Authorization": "Bearer emulator-key"}],
    ids=["missing", "wrong key", "bearer"],
)
def test_a_bad_key_is_401(fal: FalCaller, headers: dict[str, str]) -> None:
    submit = fal.submit(FAL_EXAMPLE, headers=headers)
    assert submit.status_code == 401
    assert isinstance(submit.json()["detail"], str)
    status_url = fal.submit(FAL_EXAMPLE).json()["status_url"]
    assert fal.get(status_url, headers=headers).status_code == 401


def test_a_failed_request_is_completed_with_an_error(emu: Emulator, fal: FalCaller) -> None:
    emu.inject("fal", Fault("task_failure", message="content flagged"))
    body = fal.submit_fields().json()
    done = fal.wait_for_completion(body["status_url"])
    assert done["status"] == "COMPLETED"
    assert done["error"] == "content flagged"
    assert done["error_type"] == "content_policy_violation"
    result = fal.get(body["response_url"])
    assert result.status_code == 422
    [detail] = result.json()["detail"]
    assert detail["msg"] == "content flagged"
    assert [event[1] for event in emu.events] == ["created", "failed"]


def test_result_before_completion_is_refused(emu: Emulator, fal: FalCaller) -> None:
    emu.latency = 5.0
    body = fal.submit_fields().json()
    assert fal.get(body["response_url"]).status_code == 400


def test_cancel_while_queued_then_after_completion(emu: Emulator, fal: FalCaller) -> None:
    emu.latency = 5.0
    body = fal.submit_fields().json()
    cancel = fal.http.put(body["cancel_url"], headers={"Authorization": "Key emulator-key"})
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = fal.get(body["status_url"])
    assert status.status_code == 200
    assert status.json()["status"] == "COMPLETED" and status.json()["error"]
    assert [event[1] for event in emu.events] == ["created", "cancelled"]

    emu.latency = 0.0
    done = fal.submit_fields().json()
    fal.wait_for_completion(done["status_url"])
    late = fal.http.put(done["cancel_url"], headers={"Authorization": "Key emulator-key"})
    assert (late.status_code, late.json()) == (400, {"status": "ALREADY_COMPLETED"})
    missing = fal.http.put(
        done["cancel_url"].replace(done["request_id"], "nope"),
        headers={"Authorization": "Key emulator-key"},
    )
    assert missing.status_code == 404


def test_rate_limit_and_server_errors_use_fal_error_bodies(emu: Emulator, fal: FalCaller) -> None:
    emu.inject("fal", Fault("rate_limit", retry_after=2))
    limited = fal.submit_fields()
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert isinstance(limited.json()["detail"], str)

    status_url = fal.submit_fields().json()["status_url"]
    emu.inject("fal", Fault("server_error", on="poll", status=504))
    timeout = fal.get(status_url)
    assert timeout.status_code == 504
    assert timeout.json() == {"detail": "Request timed out", "error_type": "request_timeout"}
    assert timeout.headers["x-fal-error-type"] == "request_timeout"


def test_urls_follow_the_host_the_client_used(fal: FalCaller) -> None:
    response = fal.submit(
        FAL_EXAMPLE, headers={"Authorization": "Key emulator-key", "Host": "proxy.test:8443"}
    )
    assert response.json()["status_url"].startswith("http://proxy.test:8443/fal/fal-ai/")


def test_unknown_request_and_route(fal: FalCaller) -> None:
    assert fal.get(f"{fal.url}/fal-ai/kling-image/requests/nope/status").status_code == 404
    other = fal.http.post(
        f"{fal.url}/fal-ai/flux/dev", json={}, headers={"Authorization": "Key emulator-key"}
    )
    assert other.status_code == 404
