"""Comfy Router's `kling/kling-image-o1` as documented: the Router docs
(https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.emulator import comfy as comfy_module

from .helpers import COMFY_EXAMPLE, ComfyCaller, wait_until


@pytest.fixture
def comfy(emu: Emulator, http: httpx.Client) -> ComfyCaller:
    return ComfyCaller(emu, http)


def created(emu: Emulator) -> list[str]:
    return [event[3] for event in emu.events if event[1] == "created"]


def test_documented_example_holds_the_call_and_returns_klings_task_object(
    emu: Emulator, comfy: ComfyCaller, fetch_image: Any
) -> None:
    started = time.monotonic()
    response = comfy.run(COMFY_EXAMPLE, key=str(uuid.uuid4()))
    assert time.monotonic() - started >= emu.latency * 0.9
    assert response.status_code == 200
    assert response.headers["x-comfy-request-id"]
    assert "idempotent-replayed" not in response.headers
    body = response.json()
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    data = body["data"]
    assert data["task_status"] == "succeed"
    assert data["task_result"]["result_type"] == "single"
    [image] = data["task_result"]["images"]
    assert image["index"] == 0
    download, picture = fetch_image(image["url"])
    assert (picture.format, picture.size) == ("PNG", (1024, 1024))
    assert download.headers["content-type"] == "image/png"


def test_n_gives_that_many_images(comfy: ComfyCaller, fetch_image: Any) -> None:
    body = comfy.run({**COMFY_EXAMPLE, "n": 2, "aspect_ratio": "21:9"}).json()
    images = body["data"]["task_result"]["images"]
    assert [image["index"] for image in images] == [0, 1]
    assert all(fetch_image(image["url"])[1].size == (1552, 656) for image in images)


def test_same_key_and_body_replays_without_a_second_generation(
    emu: Emulator, comfy: ComfyCaller
) -> None:
    key = str(uuid.uuid4())
    first = comfy.run(COMFY_EXAMPLE, key=key)
    again = comfy.run(COMFY_EXAMPLE, key=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(created(emu)) == 1

    changed = comfy.run({**COMFY_EXAMPLE, "n": 2}, key=key)
    assert changed.status_code == 409
    assert changed.headers["x-comfy-error-type"] == "invalid_input"
    assert changed.json()["error_type"] == "invalid_input"
    assert len(created(emu)) == 1

    comfy.run(COMFY_EXAMPLE)  # no key: a new call every time
    comfy.run(COMFY_EXAMPLE)
    assert len(created(emu)) == 3


def test_same_key_while_the_original_still_runs_is_409_with_retry_after(
    emu: Emulator, comfy: ComfyCaller
) -> None:
    emu.latency = 0.5
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(1) as pool:
        original = pool.submit(comfy.run, COMFY_EXAMPLE, key)
        wait_until(lambda: created(emu))
        clash = comfy.run(COMFY_EXAMPLE, key=key)
        assert clash.status_code == 409
        assert clash.headers["x-comfy-error-type"] == "concurrency_limit_exceeded"
        assert int(clash.headers["retry-after"]) >= 1
        assert original.result().status_code == 200
    assert len(created(emu)) == 1


def test_deadline_then_collect_with_the_same_key(
    emu: Emulator, comfy: ComfyCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(comfy_module, "SYNC_DEADLINE_SECONDS", 0.05)
    emu.latency = 0.3
    key = str(uuid.uuid4())
    cut = comfy.run(COMFY_EXAMPLE, key=key)
    assert cut.status_code == 504
    assert cut.headers["x-comfy-error-type"] == "deadline_exceeded"
    assert int(cut.headers["retry-after"]) >= 1
    monkeypatch.setattr(comfy_module, "SYNC_DEADLINE_SECONDS", 5.0)
    collected = comfy.run(COMFY_EXAMPLE, key=key)
    assert collected.status_code == 200
    assert collected.headers["idempotent-replayed"] == "true"
    assert collected.json()["data"]["task_status"] == "succeed"
    assert len(created(emu)) == 1


def test_queued_delivery_submit_status_and_result(
    emu: Emulator, comfy: ComfyCaller, fetch_image: Any
) -> None:
    emu.latency = 0.6
    submitted = comfy.enqueue({**COMFY_EXAMPLE, "resolution": "2k", "aspect_ratio": "4:3"})
    assert submitted.status_code == 201
    body = submitted.json()
    base = f"{emu.base_url('comfy')}/v2/models/kling/kling-image-o1/requests/{body['request_id']}"
    assert body == {
        "request_id": body["request_id"],
        "status_url": f"{base}/status",
        "response_url": base,
        "cancel_url": f"{base}/cancel",
    }
    queued = comfy.get(body["status_url"])
    assert queued.json() == {"request_id": body["request_id"], "status": "IN_QUEUE"}
    assert int(queued.headers["retry-after"]) >= 1
    early = comfy.get(body["response_url"])
    assert early.status_code == 409
    assert early.headers["x-comfy-error-type"] == "concurrency_limit_exceeded"
    wait_until(lambda: comfy.get(body["status_url"]).json()["status"] == "IN_PROGRESS")
    done = comfy.wait_for_completion(body["status_url"])
    assert "error_type" not in done
    result = comfy.get(body["response_url"])
    assert result.status_code == 200
    [image] = result.json()["data"]["task_result"]["images"]
    assert fetch_image(image["url"])[1].size == (2336, 1760)


def test_queued_submit_is_idempotent_too(emu: Emulator, comfy: ComfyCaller) -> None:
    key = str(uuid.uuid4())
    first = comfy.enqueue(COMFY_EXAMPLE, key=key)
    again = comfy.enqueue(COMFY_EXAMPLE, key=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The key now belongs to a queued request: the sync route is a different request.
    assert comfy.run(COMFY_EXAMPLE, key=key).status_code == 409
    assert len(created(emu)) == 1


def test_missing_prompt_gives_the_documented_422_verbatim(
    emu: Emulator, comfy: ComfyCaller
) -> None:
    response = comfy.run({"aspect_ratio": "1:1"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]
    }
    assert response.headers["x-comfy-error-type"] == "invalid_input"
    assert emu.events == []


INVALID: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("n 10", {"n": 10}, ["body", "n"]),
    ("model name of another path", {"model_name": "kling-v3-omni"}, ["body", "model_name"]),
    ("watermark is not in the Router schema", {"watermark_info": {"enabled": True}},
     ["body", "watermark_info"]),
    ("image item", {"image_list": [{"url": "https://e.com/a.png"}]},
     ["body", "image_list", 0, "url"]),
    ("aspect ratio", {"aspect_ratio": "auto-ish"}, ["body", "aspect_ratio"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "loc"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_schema_violations_are_422(
    comfy: ComfyCaller, fields: dict[str, Any], loc: list[Any]
) -> None:
    response = comfy.run({**COMFY_EXAMPLE, **fields})
    assert response.status_code == 422
    assert loc in [detail["loc"] for detail in response.json()["detail"]]


@pytest.mark.parametrize(
    "fields", [{"resolution": "4k"}, {"result_type": "series"}], ids=["4k", "series"]
)
def test_schema_values_kling_image_o1_refuses_are_400_invalid_input(
    emu: Emulator, comfy: ComfyCaller, fields: dict[str, Any]
) -> None:
    response = comfy.run({**COMFY_EXAMPLE, **fields})
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_input"
    assert emu.events == []


def test_model_name_matching_the_path_or_null_is_fine(comfy: ComfyCaller) -> None:
    assert comfy.run({**COMFY_EXAMPLE, "model_name": "kling-image-o1"}).status_code == 200
    assert comfy.run({**COMFY_EXAMPLE, "model_name": None}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": "wrong", "Authorization": f"Bearer {EMULATOR_API_KEY}"},  # X-API-Key wins
    ],
    ids=["missing", "wrong", "wrong key beats right bearer"],
)
def test_bad_credentials_are_401_unauthorized(
    emu: Emulator, comfy: ComfyCaller, headers: dict[str, str]
) -> None:
    response = comfy.run(COMFY_EXAMPLE, headers=headers)
    assert response.status_code == 401
    assert response.headers["x-comfy-error-type"] == "unauthorized"
    assert response.json()["error_type"] == "unauthorized"
    assert response.headers["x-comfy-request-id"]
    assert emu.events == []


def test_the_key_also_works_as_a_bearer_token(comfy: ComfyCaller) -> None:
    response = comfy.run(COMFY_EXAMPLE, headers={"Authorization": f"Bearer {EMULATOR_API_KEY}"})
    assert response.status_code == 200


def test_a_failed_generation_is_a_router_error(emu: Emulator, comfy: ComfyCaller) -> None:
    emu.inject("comfy", Fault("task_failure", message="Failure to pass the risk control system"))
    sync = comfy.run(COMFY_EXAMPLE)
    assert sync.status_code == 400
    assert sync.json() == {
        "detail": "Failure to pass the risk control system",
        "error_type": "content_policy_violation",
    }
    assert sync.headers["x-comfy-error-type"] == "content_policy_violation"

    emu.inject("comfy", Fault("task_failure"))
    queued = comfy.enqueue(COMFY_EXAMPLE).json()
    done = comfy.wait_for_completion(queued["status_url"])
    assert done["error_type"] == "content_policy_violation"
    assert comfy.get(queued["response_url"]).status_code == 400


def test_cancel_a_queued_request(emu: Emulator, comfy: ComfyCaller) -> None:
    emu.latency = 5.0
    queued = comfy.enqueue(COMFY_EXAMPLE).json()
    cancel = comfy.http.put(queued["cancel_url"], headers={"X-API-Key": EMULATOR_API_KEY})
    assert cancel.status_code == 202
    assert cancel.json()["status"] == "CANCELLATION_REQUESTED"
    status = comfy.get(queued["status_url"]).json()
    assert status["status"] == "COMPLETED" and status["error_type"]
    again = comfy.http.put(queued["cancel_url"], headers={"X-API-Key": EMULATOR_API_KEY})
    assert (again.status_code, again.json()["status"]) == (409, "ALREADY_COMPLETED")
    assert [event[1] for event in emu.events] == ["created", "cancelled"]
    missing = comfy.http.put(
        queued["cancel_url"].replace(queued["request_id"], "nope"),
        headers={"X-API-Key": EMULATOR_API_KEY},
    )
    assert missing.status_code == 404


def test_rate_limit_and_server_errors_carry_buckets(emu: Emulator, comfy: ComfyCaller) -> None:
    emu.inject("comfy", Fault("rate_limit", retry_after=4))
    limited = comfy.run(COMFY_EXAMPLE)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")
    assert limited.headers["x-comfy-error-type"] == "rate_limited"
    assert limited.json()["error_type"] == "rate_limited"
    assert limited.headers["x-comfy-request-id"]

    emu.inject("comfy", Fault("server_error", status=503))
    unavailable = comfy.enqueue(COMFY_EXAMPLE)
    assert unavailable.status_code == 503
    assert unavailable.headers["x-comfy-error-type"] == "service_unavailable"


def test_other_models_are_not_found(comfy: ComfyCaller) -> None:
    response = comfy.http.post(
        f"{comfy.url}/v2/models/kling/kling-v3-omni",
        json=COMFY_EXAMPLE,
        headers={"X-API-Key": EMULATOR_API_KEY},
    )
    assert response.status_code == 404
    assert response.headers["x-comfy-error-type"] == "model_not_found"
