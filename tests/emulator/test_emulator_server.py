"""The emulator as a server: addresses, recording, the image origin, control API, load."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, RecordedRequest

from .helpers import AUTH, LATENCY


def test_addresses_are_loopback_with_documented_paths(emu: Emulator) -> None:
    api = urlsplit(emu.base_url("runware"))
    images = urlsplit(emu.image_origin)
    assert api.hostname == images.hostname == "127.0.0.1"
    assert api.port != images.port  # images come from a different origin
    assert api.path == "/runware/v1"
    assert urlsplit(emu.base_url("unifically")).path == "/unifically"
    assert {"runware", "unifically"} <= set(emu.providers)


def test_binding_a_public_address_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Emulator(host="0.0.0.0")


def test_addresses_need_a_running_emulator() -> None:
    with pytest.raises(RuntimeError):
        Emulator().base_url("runware")


def test_requests_are_recorded_with_the_path_below_the_provider_prefix(
    emu: Emulator, runware: Any, unifically: Any
) -> None:
    task = runware.task(deliveryMethod="async")
    runware.post([task])
    unifically.poll("abc?x=1")  # the '?' starts the query string
    first, second = emu.requests
    assert isinstance(first, RecordedRequest)
    assert (first.server, first.provider, first.method, first.path) == (
        "api",
        "runware",
        "POST",
        "/v1",
    )
    assert first.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert first.json() == [task]
    assert (second.provider, second.method, second.path, second.query) == (
        "unifically",
        "GET",
        "/v1/tasks/abc",
        "x=1",
    )
    emu.clear_requests()
    assert emu.requests == []


def test_unknown_prefix_is_404_and_recorded_without_provider(
    emu: Emulator, http: httpx.Client
) -> None:
    response = http.get(f"{emu.api_origin}/falai/v1/queue")
    assert response.status_code == 404
    [recorded] = emu.requests
    assert (recorded.provider, recorded.path) == (None, "/falai/v1/queue")


def test_image_server_needs_no_auth_and_records_what_it_gets(
    emu: Emulator, runware: Any, http: httpx.Client
) -> None:
    url = runware.post([runware.task()]).json()["data"][0]["imageURL"]
    assert http.get(url).status_code == 200
    assert http.get(url, headers={"Authorization": "Bearer leaked"}).status_code == 200
    downloads = [r for r in emu.requests if r.server == "images"]
    assert [r.path for r in downloads] == [urlsplit(url).path] * 2
    assert all(r.provider == "runware" for r in downloads)
    assert "authorization" not in downloads[0].headers
    assert downloads[1].headers["authorization"] == "Bearer leaked"


def test_image_server_answers_404_for_unknown_images(emu: Emulator, http: httpx.Client) -> None:
    assert http.get(f"{emu.image_origin}/images/nothing.png").status_code == 404


def test_image_head_request_gives_the_length(
    emu: Emulator, runware: Any, http: httpx.Client
) -> None:
    url = runware.post([runware.task()]).json()["data"][0]["imageURL"]
    head = http.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(http.get(url).content)


def test_connections_are_kept_alive(emu: Emulator) -> None:
    connection = http.client.HTTPConnection(urlsplit(emu.api_origin).netloc, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/unifically/v1/tasks/none", headers=AUTH)
            response = connection.getresponse()
            response.read()
            assert response.status == 404
            assert response.version == 11
        assert connection.sock is not None  # still the same open socket
    finally:
        connection.close()


def test_events_follow_task_lifecycles(emu: Emulator, runware: Any) -> None:
    task = runware.task()
    runware.post([task])
    assert [(name, provider, task_id) for _, name, provider, task_id in emu.events] == [
        ("created", "runware", task["taskUUID"]),
        ("completed", "runware", task["taskUUID"]),
    ]
    created, completed = (event[0] for event in emu.events)
    assert completed - created == pytest.approx(LATENCY)


def test_control_api(emu: Emulator, runware: Any, http: httpx.Client) -> None:
    control = f"{emu.api_origin}/_emulator"
    fault = {"kind": "rate_limit", "retry_after": 4, "times": 1}
    injected = http.post(f"{control}/faults", params={"provider": "runware"}, json=fault)
    assert injected.status_code == 200
    assert [f["kind"] for f in http.get(f"{control}/faults").json()] == ["rate_limit"]

    response = runware.post([runware.task()])
    assert (response.status_code, response.headers["retry-after"]) == (429, "4")

    recorded = http.get(f"{control}/requests").json()
    assert [(r["server"], r["provider"], r["method"], r["path"]) for r in recorded] == [
        ("api", "runware", "POST", "/v1")
    ]
    assert recorded[0]["headers"]["authorization"] == f"Bearer {EMULATOR_API_KEY}"

    runware.post([runware.task()])
    assert [event[1] for event in http.get(f"{control}/events").json()] == [
        "created",
        "completed",
    ]
    assert http.post(f"{control}/reset").status_code == 200
    assert emu.requests == [] and emu.events == []
    assert http.get(f"{control}/requests").json() == []


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ({"provider": "nobody"}, {"kind": "slow"}),
        ({"provider": "runware"}, {"kind": "slow", "colour": "red"}),
        ({"provider": "runware"}, {"kind": "never"}),
        ({"provider": "images"}, {"kind": "slow", "on": "submit"}),
    ],
)
def test_control_api_refuses_bad_faults(
    emu: Emulator, http: httpx.Client, query: dict[str, str], body: dict[str, Any]
) -> None:
    response = http.post(f"{emu.api_origin}/_emulator/faults", params=query, json=body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert emu.pending_faults() == []


def test_latency_and_key_can_be_changed_while_running(emu: Emulator, runware: Any) -> None:
    emu.latency = 0.0
    emu.api_key = "another-key"
    response = runware.post([runware.task()], headers={"Authorization": "Bearer another-key"})
    assert response.status_code == 200
    assert runware.post([runware.task()]).status_code == 401


def test_concurrent_jobs_run_in_parallel(emu: Emulator, runware: Any, http: httpx.Client) -> None:
    """32 jobs of 4 images at 2K, as in the benchmark, finish in about one latency."""

    def job(_: int) -> list[tuple[int, str]]:
        items = runware.post([runware.task(width=2048, height=2048, numberResults=4)]).json()
        return [
            (len(http.get(item["imageURL"]).content), item["imageUUID"]) for item in items["data"]
        ]

    # The CPU the 32 jobs need whatever the latency (drawing, encoding, HTTP in this one
    # process), measured now: parallel workers and other programs on the cores slow it.
    emu.latency = 0
    started = time.monotonic()
    for n in range(4):
        job(n)
    cpu_bound = 8 * (time.monotonic() - started)
    emu.latency = 0.5
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = [item for items in pool.map(job, range(32)) for item in items]
    elapsed = time.monotonic() - started
    assert len({image_uuid for _, image_uuid in results}) == 128
    assert all(size > 100_000 for size, _ in results)
    # Far below 32 sequential latencies (16 s over the CPU's share); each image is drawn and
    # encoded for its own request (a few ms of CPU each, in this process shared with the 32
    # clients).
    assert elapsed < 0.5 * 8 + cpu_bound, (elapsed, cpu_bound)
    assert len(emu.events) == 64 + 8


def test_stop_closes_idle_keep_alive_connections() -> None:
    emulator = Emulator(latency=0).start()
    connection = http.client.HTTPConnection(urlsplit(emulator.api_origin).netloc, timeout=5)
    connection.request("GET", "/unifically/v1/tasks/none")
    connection.getresponse().read()
    emulator.stop()
    connection.request("GET", "/unifically/v1/tasks/none")
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        connection.getresponse()
    connection.close()


def test_serve_logs_the_addresses_and_stops_on_ctrl_c() -> None:
    script = (
        "import sys\n"
        "from kling_cli.emulator import serve\n"
        "serve(0, 0.1, lambda text: (print(text), print('END', flush=True)))\n"
        "print('STOPPED', flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            if line.strip() == "END":
                break
            lines.append(line)
        banner = "".join(lines)
        runware_url = re.search(r"http://127\.0\.0\.1:\d+/runware/v1", banner)
        assert runware_url is not None, banner
        assert re.search(r"http://127\.0\.0\.1:\d+/unifically\b", banner)
        assert re.search(r"images\s+http://127\.0\.0\.1:\d+", banner)

        response = httpx.post(
            runware_url.group(0), json=[{"taskType": "imageInference"}], headers=AUTH
        )
        assert response.status_code == 400

        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=5)
        assert "STOPPED" in remaining
        assert process.returncode == 0
    finally:
        process.kill()
