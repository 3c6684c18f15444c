"""Shared pieces of the emulator tests: constants and thin per-provider callers.

The callers only build documented requests; every assertion lives in the tests."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator

LATENCY = 0.2
AUTH = {"Authorization": f"Bearer {EMULATOR_API_KEY}"}

# Seed 002, example "Velvet Canopy Duelists (Text to Image)" (prompt shortened).
RUNWARE_EXAMPLE = {
    "taskType": "imageInference",
    "taskUUID": "26b68be0-a535-4153-b459-e3d94edbcb4c",
    "model": "klingai:kling-image@o1",
    "positivePrompt": (
        "Two rival duelists facing each other on a narrow suspended walkway woven through "
        "colossal crimson tree canopies, dynamic low-angle cinematic composition."
    ),
    "width": 1360,
    "height": 768,
}


class RunwareCaller:
    def __init__(self, emulator: Emulator, http: httpx.Client) -> None:
        self.url = emulator.base_url("runware")
        self.http = http

    def task(self, **fields: Any) -> dict[str, Any]:
        """The seed example with a fresh taskUUID; a field set to None is removed."""
        task = {**RUNWARE_EXAMPLE, "taskUUID": str(uuid.uuid4()), **fields}
        return {name: value for name, value in task.items() if value is not None}

    def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(self.url, json=body, headers=AUTH if headers is None else headers)

    def get_response(self, task_uuid: str) -> httpx.Response:
        return self.post([{"taskType": "getResponse", "taskUUID": task_uuid}])

    def wait_for_results(self, task_uuid: str) -> list[dict[str, Any]]:
        def finished() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = self.get_response(task_uuid).json()["data"]
            return None if any(item["status"] == "processing" for item in items) else items

        result: list[dict[str, Any]] = wait_until(finished)
        return result


class UnificallyCaller:
    def __init__(self, emulator: Emulator, http: httpx.Client) -> None:
        self.url = emulator.base_url("unifically")
        self.http = http

    def submit(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(
            f"{self.url}/v1/tasks", json=body, headers=AUTH if headers is None else headers
        )

    def submit_input(self, **task_input: Any) -> httpx.Response:
        return self.submit({"model": "kuaishou/kling-o1-image", "input": task_input})

    def poll(self, task_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(
            f"{self.url}/v1/tasks/{task_id}", headers=AUTH if headers is None else headers
        )

    def wait_for_task(self, task_id: str) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            data: dict[str, Any] = self.poll(task_id).json()["data"]
            return data if data["status"] in ("completed", "failed") else None

        result: dict[str, Any] = wait_until(finished)
        return result


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def decode_image(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image
