"""WaveSpeed's `kwaivgi/kling-image-o1` as documented: the model page
(https://wavespeed.ai/models/kwaivgi/kling-image-o1) and WaveSpeed's API docs."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault

from .helpers import AUTH, WAVESPEED_EXAMPLE, WaveSpeedCaller, wait_until


@pytest.fixture
def wavespeed(emu: Emulator, http: httpx.Client) -> WaveSpeedCaller:
    return WaveSpeedCaller(emu, http)


def test_documented_example_runs_end_to_end_with_two_2k_pngs(
    emu: Emulator, wavespeed: WaveSpeedCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6  # "created" for the first 0.2 s: room for the first poll
    submitted = wavespeed.submit(WAVESPEED_EXAMPLE)
    assert submitted.status_code == 200
    body = submitted.json()
    assert (body["code"], body["message"]) == (200, "success")
    data = body["data"]
    prediction_id = data["id"]
    assert data["model"] == "kwaivgi/kling-image-o1"
    assert data["status"] == "created"
    assert data["outputs"] == [] and data["error"] == ""
    result_url = f"{emu.base_url('wavespeed')}/api/v3/predictions/{prediction_id}/result"
    assert data["urls"] == {"get": result_url}
    assert data["created_at"].endswith("Z")

    assert wavespeed.http.get(result_url, headers=AUTH).json()["data"]["status"] == "created"
    wait_until(lambda: wavespeed.result(prediction_id).json()["data"]["status"] == "processing")
    done = wavespeed.wait_for_prediction(prediction_id)
    assert done["status"] == "completed"
    assert done["has_nsfw_contents"] == [False, False]
    assert done["timings"]["inference"] == 600
    assert len(done["outputs"]) == 2 and len(set(done["outputs"])) == 2
    for url in done["outputs"]:
        assert isinstance(url, str) and url.startswith(emu.image_origin + "/")
        _, picture = fetch_image(url)
        assert (picture.format, picture.size) == ("PNG", (2048, 2048))


def test_sync_mode_answers_with_the_finished_prediction(
    emu: Emulator, wavespeed: WaveSpeedCaller, fetch_image: Any
) -> None:
    started = time.monotonic()
    body = wavespeed.submit_fields(
        enable_sync_mode=True, num_images=1, resolution="1k", aspect_ratio="9:16"
    ).json()
    assert time.monotonic() - started >= emu.latency * 0.9
    assert body["data"]["status"] == "completed"
    [url] = body["data"]["outputs"]
    assert fetch_image(url)[1].size == (768, 1360)


def test_defaults_are_one_image_1_1_and_1k(wavespeed: WaveSpeedCaller, fetch_image: Any) -> None:
    prediction_id = wavespeed.submit({"prompt": "a lighthouse"}).json()["data"]["id"]
    [url] = wavespeed.wait_for_prediction(prediction_id)["outputs"]
    assert fetch_image(url)[1].size == (1024, 1024)


def test_output_format_and_the_plain_prediction_route(
    wavespeed: WaveSpeedCaller, fetch_image: Any
) -> None:
    prediction_id = wavespeed.submit_fields(
        output_format="jpeg", resolution="1k", num_images=1
    ).json()["data"]["id"]
    wavespeed.wait_for_prediction(prediction_id)
    plain = wavespeed.http.get(f"{wavespeed.url}/api/v3/predictions/{prediction_id}", headers=AUTH)
    [url] = plain.json()["data"]["outputs"]
    assert fetch_image(url)[1].format == "JPEG"


URL = "https://example.com/a.png"
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("prompt missing", {"prompt": None}, "prompt"),
    ("upper-case resolution", {"resolution": "2K"}, "resolution"),
    ("num_images 0", {"num_images": 0}, "num_images"),
    ("num_images 10", {"num_images": 10}, "num_images"),
    ("eleven images", {"images": [URL] * 11}, "images"),
    ("not a url", {"images": ["data:image/png;base64,AAAA"]}, "images[0]"),
    ("aspect ratio", {"aspect_ratio": "5:4"}, "aspect_ratio"),
    ("fal's reference field", {"image_urls": [URL]}, "image_urls"),
]


@pytest.mark.parametrize(
    ("fields", "mentions"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_is_400_in_the_code_message_envelope(
    emu: Emulator, wavespeed: WaveSpeedCaller, fields: dict[str, Any], mentions: str
) -> None:
    response = wavespeed.submit_fields(**fields)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert mentions in body["message"]
    assert emu.events == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Key emulator-key"}],
    ids=["missing", "wrong", "not bearer"],
)
def test_a_bad_key_is_401(wavespeed: WaveSpeedCaller, headers: dict[str, str]) -> None:
    for response in (
        wavespeed.submit(WAVESPEED_EXAMPLE, headers=headers),
        wavespeed.result("abc", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == 401


def test_a_failed_prediction_is_http_200_with_status_failed(
    emu: Emulator, wavespeed: WaveSpeedCaller
) -> None:
    emu.inject("wavespeed", Fault("task_failure", message="Error message here"))
    prediction_id = wavespeed.submit_fields().json()["data"]["id"]
    response = wavespeed.result(prediction_id)
    done = wavespeed.wait_for_prediction(prediction_id)
    assert response.status_code == 200
    assert (done["status"], done["error"], done["outputs"]) == ("failed", "Error message here", [])
    assert [event[1] for event in emu.events] == ["created", "failed"]


def test_rate_limit_on_poll(emu: Emulator, wavespeed: WaveSpeedCaller) -> None:
    prediction_id = wavespeed.submit_fields().json()["data"]["id"]
    emu.inject("wavespeed", Fault("rate_limit", on="poll", retry_after=5))
    limited = wavespeed.result(prediction_id)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "5")
    assert limited.json()["code"] == 429
    assert wavespeed.result(prediction_id).status_code == 200


def test_webhook_query_is_accepted_and_checked(wavespeed: WaveSpeedCaller) -> None:
    ok = wavespeed.submit(WAVESPEED_EXAMPLE, params={"webhook": "https://example.com/hook"})
    assert ok.status_code == 200
    assert wavespeed.submit(WAVESPEED_EXAMPLE, params={"webhook": "nope"}).status_code == 400


def test_unknown_prediction_is_404(wavespeed: WaveSpeedCaller) -> None:
    response = wavespeed.result("nope")
    assert (response.status_code, response.json()["code"]) == (404, 404)
