"""Injected faults: each kind, their targeting, counting and order."""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kling_cli.emulator import Fault


def submit_async(runware: Any) -> tuple[dict[str, Any], httpx.Response]:
    task = runware.task(deliveryMethod="async")
    return task, runware.post([task])


def finished_image_url(runware: Any) -> str:
    url: str = runware.post([runware.task()]).json()["data"][0]["imageURL"]
    return url


def test_rate_limit_on_runware_submit(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("rate_limit", retry_after=7))
    task, response = submit_async(runware)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    [error] = response.json()["errors"]
    assert error["code"] == "rateLimitExceeded"
    assert error["taskUUID"] == task["taskUUID"]
    assert submit_async(runware)[1].status_code == 200  # used up after one request


def test_rate_limit_on_unifically_poll_only(emu: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("rate_limit", on="poll", retry_after=2))
    task_id = unifically.submit_input(prompt="x").json()["data"]["task_id"]  # not a poll
    response = unifically.poll(task_id)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json() == {
        "code": 429,
        "data": {
            "message": "Rate limit exceeded. Please try again later",
            "code": "rate_limit_exceeded",
        },
    }
    assert unifically.poll(task_id).status_code == 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_uses_each_provider_error_body(
    emu: Any, runware: Any, unifically: Any, status: int
) -> None:
    emu.inject("runware", Fault("server_error", status=status))
    emu.inject("unifically", Fault("server_error", status=status))
    response = submit_async(runware)[1]
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] in ("internalServerError", "serviceUnavailable")
    response = unifically.submit_input(prompt="x")
    assert response.status_code == status
    assert response.json() == {
        "code": status,
        "data": {"message": "Internal server error", "code": "internal_error"},
    }


def test_times_counts_matching_requests(emu: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("server_error", times=2))
    statuses = [unifically.submit_input(prompt="x").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_faults_apply_in_injection_order(emu: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("server_error", status=502))
    emu.inject("unifically", Fault("rate_limit"))
    statuses = [unifically.submit_input(prompt="x").status_code for _ in range(3)]
    assert statuses == [502, 429, 200]


def test_faults_only_hit_their_provider(emu: Any, runware: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("server_error"))
    assert submit_async(runware)[1].status_code == 200
    assert unifically.submit_input(prompt="x").status_code == 500


def test_task_failure_on_runware_async(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("task_failure", message="unsafe prompt"))
    task, ack = submit_async(runware)
    assert ack.status_code == 200  # the submit itself succeeds
    [item] = runware.wait_for_results(task["taskUUID"])
    assert item == {
        "taskType": "imageInference",
        "taskUUID": task["taskUUID"],
        "status": "error",
        "error": {"code": "providerContentPolicyViolation", "message": "unsafe prompt"},
    }
    assert [event[1] for event in emu.events] == ["created", "failed"]
    # Only the next created task fails.
    task, _ = submit_async(runware)
    assert runware.wait_for_results(task["taskUUID"])[0]["status"] == "success"


def test_task_failure_is_not_used_up_by_a_rejected_submit(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("task_failure"))
    assert runware.post([runware.task(numberResults=0)]).status_code == 400
    task, _ = submit_async(runware)
    assert runware.wait_for_results(task["taskUUID"])[0]["status"] == "error"


def test_slow_delays_the_answer(emu: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("slow", delay=0.3))
    started = time.monotonic()
    response = unifically.submit_input(prompt="x")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_slow_download(emu: Any, runware: Any, http: httpx.Client) -> None:
    url = finished_image_url(runware)
    emu.inject("images", Fault("slow", on="download", delay=0.3))
    started = time.monotonic()
    assert http.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_connection_on_submit(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("drop_connection"))
    with pytest.raises(httpx.RemoteProtocolError):
        submit_async(runware)
    assert emu.events == []  # nothing was created
    assert submit_async(runware)[1].status_code == 200


def test_drop_connection_on_download(emu: Any, runware: Any, http: httpx.Client) -> None:
    url = finished_image_url(runware)
    emu.inject("images", Fault("drop_connection", on="download"))
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).status_code == 200


def test_truncated_download_declares_the_full_length_and_sends_half(emu: Any, runware: Any) -> None:
    url = urlsplit(finished_image_url(runware))
    emu.inject("images", Fault("truncated_download"))
    connection = http.client.HTTPConnection(url.netloc, timeout=5)
    try:
        connection.request("GET", url.path)
        response = connection.getresponse()
        declared = int(response.headers["Content-Length"])
        with pytest.raises(http.client.IncompleteRead) as incomplete:
            response.read()
        assert len(incomplete.value.partial) == declared // 2
    finally:
        connection.close()


def test_truncated_download_through_httpx(emu: Any, runware: Any, http: httpx.Client) -> None:
    url = finished_image_url(runware)
    emu.inject("images", Fault("truncated_download"))
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).status_code == 200


def test_download_faults_can_target_one_provider_images(
    emu: Any, runware: Any, unifically: Any, http: httpx.Client
) -> None:
    runware_url = finished_image_url(runware)
    task_id = unifically.submit_input(prompt="x").json()["data"]["task_id"]
    unifically_url = unifically.wait_for_task(task_id)["output"]["image_url"]
    emu.inject("unifically", Fault("server_error", on="download", status=503))
    assert http.get(runware_url).status_code == 200
    assert http.get(unifically_url).status_code == 503


def test_image_server_rate_limit(emu: Any, runware: Any, http: httpx.Client) -> None:
    url = finished_image_url(runware)
    emu.inject("images", Fault("rate_limit", on="download", retry_after=3))
    response = http.get(url)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "slow", "on": "later"}, "phase"),
        ({"kind": "task_failure", "on": "poll"}, "submit"),
        ({"kind": "truncated_download", "on": "submit"}, "download"),
        ({"kind": "slow", "times": 0}, "times"),
        ({"kind": "server_error", "status": 404}, "5xx"),
    ],
)
def test_nonsensical_faults_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**arguments)


def test_inject_checks_the_target(emu: Any) -> None:
    with pytest.raises(ValueError, match="provider"):
        emu.inject("nobody", Fault("slow"))
    with pytest.raises(ValueError, match="download"):
        emu.inject("images", Fault("slow", on="poll"))


def test_faults_do_not_touch_requests_of_another_phase(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("server_error", on="poll"))
    task, ack = submit_async(runware)
    assert ack.status_code == 200
    assert runware.get_response(task["taskUUID"]).status_code == 500
    assert runware.get_response(task["taskUUID"]).status_code == 200
