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

Headers = dict[str, str] | None


def with_fields(example: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A documented example with fields changed; a field set to None is removed."""
    body = {**example, **fields}
    return {name: value for name, value in body.items() if value is not None}


class Caller:
    """A thin client of one emulated provider: its base URL, and the credentials it sends
    unless a test passes headers of its own."""

    provider: str

    def __init__(self, emulator: Emulator, http: httpx.Client) -> None:
        self.url = emulator.base_url(self.provider)
        self.http = http

    def auth(self) -> dict[str, str]:
        return AUTH

    def send(
        self,
        method: str,
        path_or_url: str,
        body: Any = None,
        headers: Headers = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = path_or_url if path_or_url.startswith("http") else f"{self.url}{path_or_url}"
        return self.http.request(
            method,
            url,
            json=body,
            params=params,
            headers=self.auth() if headers is None else headers,
        )

    @staticmethod
    def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
        """Fetch until `done` holds for the answer; that answer."""

        def finished() -> Any:
            answer = fetch()
            return answer if done(answer) else None

        return wait_until(finished)


# Runware's model page (https://runware.ai/docs/models/klingai-image-o1), example
# "Velvet Canopy Duelists (Text to Image)" (prompt shortened).
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


class RunwareCaller(Caller):
    provider = "runware"

    def task(self, **fields: Any) -> dict[str, Any]:
        """The model page's example with a fresh taskUUID; a field set to None is removed."""
        return with_fields({**RUNWARE_EXAMPLE, "taskUUID": str(uuid.uuid4())}, fields)

    def post(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "", body, headers)

    def get_response(self, task_uuid: str) -> httpx.Response:
        return self.post([{"taskType": "getResponse", "taskUUID": task_uuid}])

    def wait_for_results(self, task_uuid: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.wait_for(
            lambda: self.get_response(task_uuid).json()["data"],
            lambda items: not any(item["status"] == "processing" for item in items),
        )
        return items


class UnificallyCaller(Caller):
    provider = "unifically"

    def submit(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "/v1/tasks", body, headers)

    def submit_input(self, **task_input: Any) -> httpx.Response:
        return self.submit({"model": "kuaishou/kling-o1-image", "input": task_input})

    def poll(self, task_id: str, headers: Headers = None) -> httpx.Response:
        return self.send("GET", f"/v1/tasks/{task_id}", headers=headers)

    def wait_for_task(self, task_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.wait_for(
            lambda: self.poll(task_id).json()["data"],
            lambda data: data["status"] in ("completed", "failed"),
        )
        return data


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


# API in One's model page (https://apiin.one/models/kling-image-o1): its example request,
# verbatim.
APIINONE_EXAMPLE = {
    "model": "kling-image-o1",
    "prompt": "A cyberpunk cityscape at night with neon signs, inspired by the reference image",
    "images": ["https://example.com/reference.jpg"],
    "aspect_ratio": "16:9",
    "resolution": "1k",
}


class ApiInOneCaller(Caller):
    provider = "apiinone"

    def submit(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "/images/generations", body, headers)

    def submit_fields(self, **fields: Any) -> httpx.Response:
        """The model page's example with fields changed; a field set to None is removed."""
        return self.submit(with_fields(APIINONE_EXAMPLE, fields))

    def poll(self, task_id: str, headers: Headers = None) -> httpx.Response:
        return self.send("GET", f"/tasks/{task_id}", headers=headers)

    def wait_for_task(self, task_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.wait_for(
            lambda: self.poll(task_id).json()["data"],
            lambda data: data["status"] in ("completed", "failed"),
        )
        return data


INFERENCESH_APP = "klingai/image-o1"
INFERENCESH_TERMINAL = (10, 11, 12)  # COMPLETED, FAILED, CANCELLED (current numbering)


class InferenceShCaller(Caller):
    provider = "inferencesh"

    def run(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "/apps/run", body, headers)

    def run_input(self, **task_input: Any) -> httpx.Response:
        return self.run({"app": INFERENCESH_APP, "input": task_input})

    def get(self, path: str, headers: Headers = None) -> httpx.Response:
        return self.send("GET", path, headers=headers)

    def post(self, path: str, body: Any = None, headers: Headers = None) -> httpx.Response:
        return self.send("POST", path, body, headers)

    def stream(self, task_id: str) -> httpx.Response:
        return self.get(f"/tasks/{task_id}/stream", headers={**AUTH, **NDJSON})

    def wait_for_task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.wait_for(
            lambda: self.get(f"/tasks/{task_id}").json()["data"],
            lambda task: task["status"] in INFERENCESH_TERMINAL,
        )
        return task


# The headers the SDK streams with (PyPI inferencesh 0.36, `_stream_updates`).
NDJSON = {"Accept": "application/x-ndjson", "Cache-Control": "no-cache"}


# -- Kling official, fal, WaveSpeed, Comfy Router, AIML ----------------------------------------


def kling_jwt(
    access_key: str = EMULATOR_API_KEY,
    secret_key: str | None = None,
    *,
    ttl: int = 1800,
    not_before: int | None = -5,
    **claims: Any,
) -> str:
    """A token as Kling's official sample builds it (general docs,
    inference-sh/grid `api/klingai/docs/00-general.md`), with PyJWT: an independent encoder."""
    import warnings

    import jwt  # PyJWT; imported here so that only the Kling tests need it

    now = int(time.time())
    payload = {"iss": access_key, "exp": now + ttl, **claims}
    if not_before is not None:
        payload["nbf"] = now + not_before
    key = access_key if secret_key is None else secret_key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the emulator's short test key is no secret
        return jwt.encode(payload, key, algorithm="HS256", headers={"typ": "JWT"})


def png_base64(width: int, height: int, image_format: str = "PNG") -> str:
    """Raw Base64 of a small image, as Kling's image_list accepts it (general docs)."""
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, image_format)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# Kling's API reference (https://kling.ai/document-api/api/image/o1/image-generation), the official
# example request (verbatim apart from whitespace).
KLING_EXAMPLE: dict[str, Any] = {
    "model_name": "kling-image-o1",
    "prompt": "Merge all the people in the images into the <<<object_1>>> image",
    "element_list": [{"element_id": 829836802793406551}],
    "image_list": [
        {"image": "https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-4.png"},
        {
            "image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/"
            "video_effects/1.png"
        },
        {
            "image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/"
            "video_effects/4.png"
        },
    ],
    "resolution": "2k",
    "n": 1,
    "aspect_ratio": "3:2",
}


class KlingCaller(Caller):
    provider = "kling"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {kling_jwt()}"}

    def submit(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "/v1/images/omni-image", body, headers)

    def submit_fields(self, **fields: Any) -> httpx.Response:
        """A minimal text-to-image body (inferred: only `prompt` is required) with fields changed;
        None removes one."""
        minimal = {"model_name": "kling-image-o1", "prompt": "A lighthouse at dusk"}
        return self.submit(with_fields(minimal, fields))

    def query(self, task_ref: str, headers: Headers = None) -> httpx.Response:
        return self.send("GET", f"/v1/images/omni-image/{task_ref}", headers=headers)

    def wait_for_task(self, task_ref: str) -> dict[str, Any]:
        data: dict[str, Any] = self.wait_for(
            lambda: self.query(task_ref).json()["data"],
            lambda data: data["task_status"] in ("succeed", "failed"),
        )
        return data


FAL_AUTH = {"Authorization": f"Key {EMULATOR_API_KEY}"}
# fal's queue docs, the submit example (reference URLs made concrete).
FAL_EXAMPLE: dict[str, Any] = {
    "prompt": "Put @Image1 in the back seat of the car in @Image2",
    "image_urls": ["https://example.com/a.png", "https://example.com/b.png"],
    "num_images": 1,
    "resolution": "2K",
    "aspect_ratio": "auto",
    "output_format": "png",
}


class FalCaller(Caller):
    provider = "fal"

    def auth(self) -> dict[str, str]:
        return FAL_AUTH

    def submit(
        self, body: Any, headers: Headers = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.send("POST", "/fal-ai/kling-image/o1", body, headers, params)

    def submit_fields(self, **fields: Any) -> httpx.Response:
        return self.submit(with_fields(FAL_EXAMPLE, fields))

    def get(self, url: str, headers: Headers = None, **params: str) -> httpx.Response:
        """GET one of the URLs the submit returned, verbatim."""
        return self.send("GET", url, headers=headers, params=params)

    def wait_for_completion(self, status_url: str) -> dict[str, Any]:
        status: dict[str, Any] = self.wait_for(
            lambda: self.get(status_url).json(), lambda status: status["status"] == "COMPLETED"
        )
        return status


# A submit with the model page's fields (https://wavespeed.ai/models/kwaivgi/kling-image-o1;
# reference URLs made concrete).
WAVESPEED_EXAMPLE: dict[str, Any] = {
    "prompt": "The woman in <<<image_2>>> wears the jacket from <<<image_1>>>",
    "images": ["https://example.com/jacket.png", "https://example.com/woman.png"],
    "aspect_ratio": "auto",
    "resolution": "2k",
    "num_images": 2,
}


class WaveSpeedCaller(Caller):
    provider = "wavespeed"

    def submit(
        self, body: Any, headers: Headers = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.send("POST", "/api/v3/kwaivgi/kling-image-o1", body, headers, params)

    def submit_fields(self, **fields: Any) -> httpx.Response:
        return self.submit(with_fields(WAVESPEED_EXAMPLE, fields))

    def result(self, prediction_id: str, headers: Headers = None) -> httpx.Response:
        return self.send("GET", f"/api/v3/predictions/{prediction_id}/result", headers=headers)

    def wait_for_prediction(self, prediction_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.wait_for(
            lambda: self.result(prediction_id).json()["data"],
            lambda data: data["status"] in ("completed", "failed"),
        )
        return data


COMFY_AUTH = {"X-API-Key": EMULATOR_API_KEY}
# Comfy Router's kling-image-o1 page (docs.comfy.org): the documented example input, verbatim.
COMFY_EXAMPLE: dict[str, Any] = {
    "aspect_ratio": "1:1",
    "n": 1,
    "prompt": "A watercolour koi pond at dawn, soft light.",
    "resolution": "1k",
}


class ComfyCaller(Caller):
    provider = "comfy"

    def auth(self) -> dict[str, str]:
        return COMFY_AUTH

    def _headers(self, key: str | None, headers: Headers) -> dict[str, str]:
        chosen = dict(COMFY_AUTH if headers is None else headers)
        if key is not None:
            chosen["Idempotency-Key"] = key
        return chosen

    def run(self, body: Any, key: str | None = None, headers: Headers = None) -> httpx.Response:
        return self.send(
            "POST", "/v2/models/kling/kling-image-o1", body, self._headers(key, headers)
        )

    def enqueue(self, body: Any, key: str | None = None, headers: Headers = None) -> httpx.Response:
        path = "/v2/models/kling/kling-image-o1/requests"
        return self.send("POST", path, body, self._headers(key, headers))

    def get(self, url: str) -> httpx.Response:
        return self.send("GET", url)

    def wait_for_completion(self, status_url: str) -> dict[str, Any]:
        status: dict[str, Any] = self.wait_for(
            lambda: self.get(status_url).json(), lambda status: status["status"] == "COMPLETED"
        )
        return status


# AIML's image-o1 API reference has no example request; this one follows its schema.
AIML_EXAMPLE: dict[str, Any] = {
    "model": "klingai/image-o1",
    "prompt": "Put @Image1 on a beach at sunset",
    "image_urls": ["https://example.com/reference.png"],
}


class AimlCaller(Caller):
    provider = "aimlapi"

    def generate(self, body: Any, headers: Headers = None) -> httpx.Response:
        return self.send("POST", "/v1/images/generations", body, headers)

    def generate_fields(self, **fields: Any) -> httpx.Response:
        return self.generate(with_fields(AIML_EXAMPLE, fields))
