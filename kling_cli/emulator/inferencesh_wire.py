"""inference.sh wire pieces shared by the task and file routes: the V3 envelope, problem+json
errors and the run-request validation for the app `klingai/image-o1`.

Sources: the official SDK (PyPI inferencesh 0.36.0, github.com/inference-sh/sdk), the app's
source (github.com/inference-sh/grid, `api/klingai/video/image-o1/`) and the SDK files docs
(https://inference.sh/docs/api/sdk/files)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kling_cli.emulator.dimensions import ASPECT_RATIOS, Tier, pixels
from kling_cli.emulator.images import ImageSpec
from kling_cli.emulator.server import Reply, json_reply

APP = "klingai/image-o1"
# SDK ApiAppRunRequest: `app` is "namespace/name" or "namespace/name@shortid"; the emulator has one
# version.
_APP_PATTERN = re.compile(rf"^{re.escape(APP)}(@[A-Za-z0-9_-]+)?$")

# The app's input schema (app source, input_schema.json).
ASPECT_RATIO_CHOICES = ASPECT_RATIOS  # the eight ratios, no "auto"
DEFAULT_ASPECT_RATIO = "16:9"
RESOLUTIONS: dict[str, Tier] = {"1k": "1k", "2k": "2k"}
DEFAULT_RESOLUTION = "1k"
IMAGE_COUNT = (1, 9)  # `n`
# "Max 2500 chars." is only the field's description: the schema has no maxLength (app source).
MAX_PROMPT_LENGTH = 2500

INPUT_FILE_SCHEME = "inf://files/"  # uploaded-file URIs (SDK files docs)
_HTTP_URL = re.compile(r"^https?://[^/\s]+", re.I)

PROBLEM_TYPE_PREFIX = "https://api.inference.sh/errors/"  # host illustrative (inferred)
# Codes from the SDK's ErrorCode; the titles are inferred.
_PROBLEM_TITLES = {
    "invalid_request": "Invalid Request",
    "validation_error": "Validation Error",
    "unauthorized": "Unauthorized",
    "not_found": "Not Found",
    "rate_limited": "Too Many Requests",
    "internal_error": "Internal Server Error",
}


class Problem(Exception):
    """A request the API refuses, answered as problem+json."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    def reply(self) -> Reply:
        return problem_reply(self.status, self.code, self.detail)


def problem_reply(status: int, code: str, detail: str) -> Reply:
    """RFC 9457 problem+json, the shape the SDK parses (`_request`)."""
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": _PROBLEM_TITLES[code],
        "status": status,
        "detail": detail,
    }
    return Reply(status, json.dumps(body).encode(), content_type="application/problem+json")


def envelope_reply(data: Any) -> Reply:
    """The current ("V3") success envelope (SDK `_request`)."""
    return json_reply(200, {"data": data, "messages": []})


def invalid_input(detail: str) -> Problem:
    # inferred: the HTTP status of a schema violation is undocumented; the SDK's ErrorCode has
    # validation_error, and 422 is the usual status for it.
    return Problem(422, "validation_error", detail)


@dataclass(frozen=True)
class RunRequest:
    """A validated `POST /apps/run` body."""

    input: dict[str, Any]  # as submitted, echoed in the task
    prompt: str
    image: str | None  # an http(s) URL or an inf://files/ URI
    aspect_ratio: str
    resolution: Tier
    count: int
    webhook: str | None

    @property
    def spec(self) -> ImageSpec:
        width, height = pixels(self.resolution, self.aspect_ratio)
        # The app saves the Kling output with a .png suffix (app source).
        return ImageSpec(width, height, "PNG")

    @property
    def uploaded_image(self) -> str | None:
        """The inf:// URI of an uploaded reference file, if that is what `image` is."""
        if self.image is not None and self.image.startswith(INPUT_FILE_SCHEME):
            return self.image
        return None

    @property
    def mode(self) -> str:
        # The app's inference.py: the mode reported in output_meta.
        return "image-to-image" if self.image else "text-to-image"


def validated_run(payload: Any) -> RunRequest:
    if not isinstance(payload, dict):
        raise Problem(400, "invalid_request", "the request body must be a JSON object")
    app = payload.get("app")
    if app is None:
        raise Problem(400, "invalid_request", "app is required")
    if not isinstance(app, str) or not _APP_PATTERN.match(app):
        # inferred: the emulator hosts one app; any other is "not found".
        raise Problem(404, "not_found", f"app not found: {app}")
    webhook = payload.get("webhook")
    if webhook is not None and not is_http_url(webhook):
        raise invalid_input("webhook must be an http(s) URL")
    # inferred: the other ApiAppRunRequest fields (SDK types.py) and unknown ones are ignored, as a
    # JSON decoder without strict mode does.
    task_input = payload.get("input", {})
    if not isinstance(task_input, dict):
        raise invalid_input("input must be an object")
    # inferred: unknown input fields are ignored: the schema does not forbid extra properties
    # and pydantic models ignore them by default (app source).
    prompt = _prompt(task_input)
    image = _image(task_input)
    negative_prompt = task_input.get("negative_prompt")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise invalid_input("input.negative_prompt must be a string or null")
    # negative_prompt is then dropped: the app does not forward it to Kling (app source).
    aspect_ratio = _choice(task_input, "aspect_ratio", ASPECT_RATIO_CHOICES, DEFAULT_ASPECT_RATIO)
    resolution = _choice(task_input, "resolution", RESOLUTIONS, DEFAULT_RESOLUTION)
    return RunRequest(
        input=task_input,
        prompt=prompt,
        image=image,
        aspect_ratio=aspect_ratio,
        resolution=RESOLUTIONS[resolution],
        count=_count(task_input),
        webhook=webhook,
    )


def _prompt(task_input: dict[str, Any]) -> str:
    prompt = task_input.get("prompt")
    if prompt is None:
        raise invalid_input("input.prompt is required")
    if not isinstance(prompt, str):
        raise invalid_input("input.prompt must be a string")
    if not prompt.strip():
        raise invalid_input("input.prompt must not be empty")  # inferred: Kling needs a prompt
    return prompt


def _image(task_input: dict[str, Any]) -> str | None:
    image = task_input.get("image")
    if image is None:
        return None
    if not isinstance(image, str):
        raise invalid_input("input.image must be one file: a URL or an inf:// URI")  # app source
    if not (is_http_url(image) or image.startswith(INPUT_FILE_SCHEME)):
        # inferred: the SDK uploads local paths, data URIs and base64 itself before running
        # (SDK `_process_input_data`), so the API itself is sent only URLs and inf:// URIs.
        raise invalid_input("input.image must be an http(s) URL or an inf://files/ URI")
    return image


def _choice(task_input: dict[str, Any], name: str, allowed: Any, default: str) -> str:
    value = task_input.get(name, default)
    if not isinstance(value, str) or value not in allowed:
        raise invalid_input(f"input.{name} must be one of {', '.join(allowed)}")
    return value


def _count(task_input: dict[str, Any]) -> int:
    count = task_input.get("n", IMAGE_COUNT[0])
    low, high = IMAGE_COUNT
    if not isinstance(count, int) or isinstance(count, bool) or not low <= count <= high:
        raise invalid_input(f"input.n must be an integer from {low} to {high}")
    return count


def is_http_url(value: Any) -> bool:
    return isinstance(value, str) and _HTTP_URL.match(value) is not None
