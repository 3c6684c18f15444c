"""Kling AI's official API as documented: the Omni-Image API reference
(https://kling.ai/document-api/api/image/o1/image-generation) and the general docs
(as copied in github.com/inference-sh/grid `api/klingai/docs/00-general.md`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault

from .helpers import KLING_EXAMPLE, KlingCaller, kling_jwt, png_base64, wait_until


@pytest.fixture
def kling(emu: Emulator, http: httpx.Client) -> KlingCaller:
    return KlingCaller(emu, http)


def test_official_example_runs_end_to_end_with_a_2k_3_2_png(
    emu: Emulator, kling: KlingCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6  # "submitted" for the first 0.2 s: room for the first query
    submitted = kling.submit(KLING_EXAMPLE)
    assert submitted.status_code == 200
    body = submitted.json()
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    assert isinstance(body["request_id"], str) and body["request_id"]
    data = body["data"]
    assert data["task_status"] == "submitted"
    assert data["task_id"].isdigit()
    assert data["created_at"] == data["updated_at"]
    task_id = data["task_id"]

    first = kling.query(task_id).json()
    assert first["code"] == 0
    assert first["data"]["task_status"] == "submitted"
    assert "task_result" not in first["data"]
    wait_until(lambda: kling.query(task_id).json()["data"]["task_status"] == "processing")
    done = kling.wait_for_task(task_id)
    assert done["task_status"] == "succeed"  # sic
    assert done["task_status_msg"] == ""
    assert done["updated_at"] > done["created_at"]
    [image] = done["task_result"]["images"]
    assert done["task_result"]["result_type"] == "single"
    assert image["index"] == 0
    assert image["url"].startswith(emu.image_origin + "/") and image["url"].endswith(".png")

    download, picture = fetch_image(image["url"])
    assert (picture.format, picture.size) == ("PNG", (2496, 1664))
    assert download.headers["content-type"] == "image/png"


def test_n_gives_that_many_images_at_the_documented_size(
    kling: KlingCaller, fetch_image: Any
) -> None:
    task_id = kling.submit_fields(n=3, aspect_ratio="16:9", resolution="1k").json()["data"][
        "task_id"
    ]
    images = kling.wait_for_task(task_id)["task_result"]["images"]
    assert [image["index"] for image in images] == [0, 1, 2]
    assert len({image["url"] for image in images}) == 3
    for image in images:
        assert fetch_image(image["url"])[1].size == (1360, 768)


def test_defaults_are_one_image_auto_and_1k(kling: KlingCaller, fetch_image: Any) -> None:
    task_id = kling.submit({"prompt": "A lighthouse"}).json()["data"]["task_id"]
    [image] = kling.wait_for_task(task_id)["task_result"]["images"]
    assert fetch_image(image["url"])[1].size == (1024, 1024)


def test_external_task_id_is_echoed_and_usable_for_queries(kling: KlingCaller) -> None:
    data = kling.submit_fields(external_task_id="cli-20260101-0001").json()["data"]
    assert data["task_info"] == {"external_task_id": "cli-20260101-0001"}
    done = kling.wait_for_task("cli-20260101-0001")
    assert done["task_id"] == data["task_id"]
    assert done["task_info"] == {"external_task_id": "cli-20260101-0001"}

    again = kling.submit_fields(external_task_id="cli-20260101-0001")
    assert again.status_code == 400
    assert again.json()["code"] == 1201


def test_list_endpoint_pages_newest_first(kling: KlingCaller) -> None:
    ids = [kling.submit_fields().json()["data"]["task_id"] for _ in range(3)]
    url = f"{kling.url}/v1/images/omni-image"
    page = kling.http.get(url, params={"pageNum": 1, "pageSize": 2}, headers=kling.auth()).json()
    assert page["code"] == 0
    assert [task["task_id"] for task in page["data"]] == ids[::-1][:2]
    rest = kling.http.get(url, params={"pageNum": 2, "pageSize": 2}, headers=kling.auth()).json()
    assert [task["task_id"] for task in rest["data"]] == ids[:1]
    bad = kling.http.get(url, params={"pageSize": 501}, headers=kling.auth())
    assert (bad.status_code, bad.json()["code"]) == (400, 1201)


def test_watermark_adds_a_watermark_url_per_image(kling: KlingCaller) -> None:
    task_id = kling.submit_fields(watermark_info={"enabled": True}).json()["data"]["task_id"]
    done = kling.wait_for_task(task_id)
    assert done["watermark_info"] == {"enabled": True}
    [image] = done["task_result"]["images"]
    assert image["watermark_url"] != image["url"]


def test_raw_base64_references_are_checked_like_uploads(kling: KlingCaller) -> None:
    accepted = kling.submit_fields(image_list=[{"image": png_base64(300, 600)}])
    assert accepted.status_code == 200, accepted.text
    rejected = {
        "data: prefix": "data:image/png;base64," + png_base64(300, 300),
        "too small": png_base64(299, 400),
        "too narrow": png_base64(300, 800),
        "webp": png_base64(400, 400, "WEBP"),
        "not base64": "not an image!",
        "not an image": base64.b64encode(b"hello").decode(),
    }
    for reason, value in rejected.items():
        response = kling.submit_fields(image_list=[{"image": value}])
        assert response.status_code == 400, reason
        body = response.json()
        assert body["code"] == 1201, reason
        assert "image_list[0].image" in body["message"], reason


INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("prompt missing", {"prompt": None}, "prompt"),
    ("prompt empty", {"prompt": ""}, "prompt"),
    ("prompt long", {"prompt": "a" * 2501}, "prompt"),
    ("n zero", {"n": 0}, "n"),
    ("n ten", {"n": 10}, "n"),
    ("n text", {"n": "2"}, "n"),
    ("resolution upper case", {"resolution": "2K"}, "resolution"),
    ("resolution 4k", {"resolution": "4k"}, "4k"),
    ("aspect ratio", {"aspect_ratio": "5:4"}, "aspect_ratio"),
    ("series", {"result_type": "series"}, "series"),
    ("v3 omni", {"model_name": "kling-v3-omni"}, "model_name"),
    ("model", {"model_name": "kling-v2"}, "model_name"),
    ("eleven references", {"image_list": [{"image": "https://e.com/a.png"}] * 11}, "image_list"),
    (
        "ten images and an element",
        {
            "image_list": [{"image": "https://e.com/a.png"}] * 10,
            "element_list": [{"element_id": 1}],
        },
        "image_list",
    ),
    ("image item shape", {"image_list": ["https://e.com/a.png"]}, "image_list[0]"),
    ("empty image", {"image_list": [{"image": ""}]}, "image_list[0].image"),
    ("element id", {"element_list": [{"element_id": "x"}]}, "element_id"),
    ("negative prompt", {"negative_prompt": "blurry"}, "negative_prompt"),
    ("fal's count field", {"num_images": 2}, "num_images"),
    ("callback", {"callback_url": "nope"}, "callback_url"),
]


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [case[1:] for case in INVALID_BODIES],
    ids=[case[0] for case in INVALID_BODIES],
)
def test_invalid_parameters_are_400_code_1201(
    emu: Emulator, kling: KlingCaller, fields: dict[str, Any], mentions: str
) -> None:
    response = kling.submit_fields(**fields)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 1201
    assert mentions in body["message"]
    assert isinstance(body["request_id"], str)
    assert emu.events == []


def test_a_body_that_is_not_a_json_object_is_code_1200(kling: KlingCaller) -> None:
    for content in (b"{nope", b"[1, 2]"):
        response = kling.http.post(
            f"{kling.url}/v1/images/omni-image",
            content=content,
            headers={**kling.auth(), "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()["code"]) == (400, 1200)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Tokens are minted when the test runs: an nbf a minute ahead must still be ahead then.
AUTH_CASES: list[tuple[str, Callable[[], dict[str, str]], int]] = [
    ("missing", lambda: {}, 1001),
    ("not bearer", lambda: {"Authorization": f"Token {kling_jwt()}"}, 1002),
    ("raw api key", lambda: _bearer(EMULATOR_API_KEY), 1002),
    ("two spaces", lambda: {"Authorization": f"Bearer  {kling_jwt()}"}, 1002),
    ("alg none", lambda: _bearer(_unsigned({"iss": EMULATOR_API_KEY})), 1002),
    ("wrong secret", lambda: _bearer(kling_jwt(secret_key="other-secret")), 1000),
    ("wrong access key", lambda: _bearer(kling_jwt("other-ak", EMULATOR_API_KEY)), 1000),
    ("expired", lambda: _bearer(kling_jwt(ttl=-1)), 1004),
    ("not yet valid", lambda: _bearer(kling_jwt(not_before=60)), 1003),
]


@pytest.mark.parametrize(
    ("headers", "code"), [case[1:] for case in AUTH_CASES], ids=[case[0] for case in AUTH_CASES]
)
def test_bad_tokens_get_401_with_the_documented_code(
    emu: Emulator, kling: KlingCaller, headers: Callable[[], dict[str, str]], code: int
) -> None:
    submit = kling.submit({"prompt": "x"}, headers=headers())
    query = kling.query("123", headers=headers())
    for response in (submit, query):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == code
        assert isinstance(body["message"], str) and isinstance(body["request_id"], str)
    assert emu.events == []


def test_a_token_without_nbf_is_accepted(kling: KlingCaller) -> None:
    response = kling.submit({"prompt": "x"}, headers=_bearer(kling_jwt(not_before=None)))
    assert response.status_code == 200


def test_a_failed_task_is_still_code_0_with_the_reason(emu: Emulator, kling: KlingCaller) -> None:
    emu.inject("kling", Fault("task_failure", message="Failure to pass the risk control system"))
    response = kling.submit_fields()
    assert (response.status_code, response.json()["code"]) == (200, 0)
    task_id = response.json()["data"]["task_id"]
    done = kling.wait_for_task(task_id)
    assert done["task_status"] == "failed"
    assert done["task_status_msg"] == "Failure to pass the risk control system"
    assert done["task_result"] == {}
    assert [event[1] for event in emu.events] == ["created", "failed"]


def test_rate_limit_is_429_code_1302_not_a_billing_code(emu: Emulator, kling: KlingCaller) -> None:
    emu.inject("kling", Fault("rate_limit", retry_after=3))
    response = kling.submit_fields()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["code"] == 1302  # retryable; 1100-1102 would be billing (general docs)
    assert kling.submit_fields().status_code == 200


def test_rate_limit_without_retry_after_as_kling_documents(
    emu: Emulator, kling: KlingCaller
) -> None:
    emu.inject("kling", Fault.from_json({"kind": "rate_limit", "retry_after": None}))
    response = kling.submit_fields()
    assert response.status_code == 429
    assert "retry-after" not in response.headers  # undocumented by Kling
    assert response.json()["code"] == 1302


@pytest.mark.parametrize(("status", "code"), [(500, 5000), (503, 5001), (504, 5002)])
def test_server_errors_carry_the_5xxx_codes(
    emu: Emulator, kling: KlingCaller, status: int, code: int
) -> None:
    task_id = kling.submit_fields().json()["data"]["task_id"]
    emu.inject("kling", Fault("server_error", on="poll", status=status))
    response = kling.query(task_id)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert kling.query(task_id).status_code == 200


def test_unknown_task_and_route(kling: KlingCaller) -> None:
    missing = kling.query("999")
    assert (missing.status_code, missing.json()["code"]) == (404, 1203)
    route = kling.http.delete(f"{kling.url}/v1/images/omni-image/1", headers=kling.auth())
    assert (route.status_code, route.json()["code"]) == (404, 1202)
