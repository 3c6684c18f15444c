"""AIML API's `klingai/image-o1` as documented: AIML's image-o1 API reference
(https://docs.aimlapi.com/api-references/image-models/kling-ai/image-o1)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from kling_cli.emulator import Emulator, Fault

from .helpers import AIML_EXAMPLE, AimlCaller, png_base64


@pytest.fixture
def aiml(emu: Emulator, http: httpx.Client) -> AimlCaller:
    return AimlCaller(emu, http)


def test_a_call_is_synchronous_and_returns_urls_and_usage(
    emu: Emulator, aiml: AimlCaller, fetch_image: Any
) -> None:
    started = time.monotonic()
    response = aiml.generate(AIML_EXAMPLE)
    assert time.monotonic() - started >= emu.latency * 0.9
    assert response.status_code == 200
    body = response.json()
    [item] = body["data"]
    assert set(body) == {"data", "meta"}
    assert body["meta"]["usage"]["credits_used"] > 0
    assert item["url"].startswith(emu.image_origin + "/")
    download, picture = fetch_image(item["url"])
    # Defaults: 16:9 (no auto), 1K, png.
    assert (picture.format, picture.size) == ("PNG", (1360, 768))
    assert download.headers["content-type"] == "image/png"
    assert [event[1] for event in emu.events] == ["created", "completed"]


def test_num_images_resolution_aspect_ratio_and_output_format(
    aiml: AimlCaller, fetch_image: Any
) -> None:
    body = aiml.generate_fields(
        num_images=3, resolution="2K", aspect_ratio="2:3", output_format="jpeg"
    ).json()
    assert len(body["data"]) == 3
    assert len({item["url"] for item in body["data"]}) == 3
    assert body["meta"]["usage"]["credits_used"] == 3 * 58800
    for item in body["data"]:
        _, picture = fetch_image(item["url"])
        assert (picture.format, picture.size) == ("JPEG", (1664, 2496))


def test_references_may_be_urls_or_base64(aiml: AimlCaller) -> None:
    raw = png_base64(320, 320)
    response = aiml.generate_fields(
        image_urls=["https://example.com/a.png", f"data:image/png;base64,{raw}", raw]
    )
    assert response.status_code == 200, response.text


URL = "https://example.com/a.png"
INVALID: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("model missing", {"model": None}, ["model"]),
    ("other model", {"model": "flux/dev"}, ["model"]),
    ("prompt missing", {"prompt": None}, ["prompt"]),
    ("prompt over 4000", {"prompt": "a" * 4001}, ["prompt"]),
    ("image_urls missing", {"image_urls": None}, ["image_urls"]),
    ("image_urls empty", {"image_urls": []}, ["image_urls"]),
    ("eleven image_urls", {"image_urls": [URL] * 11}, ["image_urls"]),
    ("not an image reference", {"image_urls": ["ftp://e.com/a"]}, ["image_urls", 0]),
    ("auto is not offered", {"aspect_ratio": "auto"}, ["aspect_ratio"]),
    ("lower-case 1k", {"resolution": "1k"}, ["resolution"]),
    ("num_images 10", {"num_images": 10}, ["num_images"]),
    ("output format", {"output_format": "gif"}, ["output_format"]),
    ("kling's count field", {"n": 2}, ["n"]),
]


@pytest.mark.parametrize(
    ("fields", "path"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_bodies_are_the_documented_body_validation_error(
    emu: Emulator, aiml: AimlCaller, fields: dict[str, Any], path: list[Any]
) -> None:
    response = aiml.generate_fields(**fields)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Body validation error!"
    assert body["statusCode"] == 400
    assert [detail["path"] for detail in body["details"]] == [path]
    assert emu.events == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "emulator-key"}],
    ids=["missing", "wrong", "not bearer"],
)
def test_a_bad_key_is_401(emu: Emulator, aiml: AimlCaller, headers: dict[str, str]) -> None:
    response = aiml.generate(AIML_EXAMPLE, headers=headers)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert emu.events == []


def test_a_failed_generation_is_an_error_answer(emu: Emulator, aiml: AimlCaller) -> None:
    emu.inject("aimlapi", Fault("task_failure", message="content flagged"))
    response = aiml.generate(AIML_EXAMPLE)
    assert response.status_code == 400
    assert response.json()["message"] == "content flagged"
    assert [event[1] for event in emu.events] == ["created", "failed"]


def test_rate_limit_and_server_error(emu: Emulator, aiml: AimlCaller) -> None:
    emu.inject("aimlapi", Fault("rate_limit", retry_after=6))
    limited = aiml.generate(AIML_EXAMPLE)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "6")
    assert limited.json()["statusCode"] == 429
    emu.inject("aimlapi", Fault("server_error", status=502))
    failed = aiml.generate(AIML_EXAMPLE)
    assert (failed.status_code, failed.json()["statusCode"]) == (502, 502)
    assert emu.events == []  # neither created a generation


def test_there_is_nothing_to_poll(aiml: AimlCaller) -> None:
    response = aiml.http.get(
        f"{aiml.url}/v1/images/generations", headers={"Authorization": "Bearer emulator-key"}
    )
    assert response.status_code == 405
