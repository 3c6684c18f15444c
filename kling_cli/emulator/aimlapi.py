"""AIML API's image generation for `klingai/image-o1`, per AIML's image-o1 API reference
(https://docs.aimlapi.com/api-references/image-models/kling-ai/image-o1).

Base `https://api.aimlapi.com` maps to the mount itself (base_path ""), so the route is the
documented `POST /v1/images/generations`. Auth is `Authorization: Bearer <key>`. The call is
synchronous: it holds the connection for the generation and answers
`{"data": [{"url"}], "meta": {"usage": {"credits_used"}}}`; there is no task id to poll.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from kling_cli.emulator.body_fields import Fields, Invalid, Problem, parse_json
from kling_cli.emulator.dimensions import Tier
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.images import ImageFormat, ImageSpec, IssuedImage
from kling_cli.emulator.provider import ProviderApi, ProviderRequest
from kling_cli.emulator.provider_kit import (
    data_uri_payload,
    decode_base64,
    is_http_url,
    issue_images,
    output_spec,
    wait_until_finished,
)
from kling_cli.emulator.server import Reply, json_reply

GENERATIONS_PATH = "/v1/images/generations"
MODEL_ID = "klingai/image-o1"

INPUT_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "image_urls",
        "aspect_ratio",
        "resolution",
        "output_format",
        "num_images",
    }
)
# API reference: no "auto"; 16:9 by default.
ASPECT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16")
RESOLUTIONS: dict[str, Tier] = {"1K": "1k", "2K": "2k"}
OUTPUT_FORMATS: dict[str, ImageFormat] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MAX_PROMPT_LENGTH = 4000  # the schema's maxLength (API reference)
MAX_REFERENCES = 10
MAX_IMAGES = 9
# The documented example charges 58800 credits for one image; per-image pricing is inferred.
CREDITS_PER_IMAGE = 58800
# The documented 400 message for a body that does not match the schema (AIML errors page).
BODY_VALIDATION_ERROR = "Body validation error!"


@dataclass(frozen=True)
class AimlJob:
    images: tuple[IssuedImage, ...]


def error_reply(status: int, message: str, details: list[Problem] | None = None) -> Reply:
    """AIML's error body is not documented for this model; inferred as
    `{"statusCode", "message", "error"}`, with the rejected fields under `details`."""
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": HTTPStatus(status).phrase,
    }
    if details:
        body["details"] = [{"path": list(p.loc), "message": p.msg} for p in details]
    return json_reply(status, body)


class AimlApi(ProviderApi[AimlJob]):
    provider_id = "aimlapi"
    base_path = ""  # https://api.aimlapi.com -> the mount; the route is /v1/images/generations

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        # Synchronous: the only call is the submit (API reference).
        if request.method == "POST" and request.path == GENERATIONS_PATH:
            return "submit"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        return error_reply(429, "Too many requests, rate limit exceeded")  # inferred

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        return error_reply(status, "Internal server error")  # inferred: undocumented

    def handle(self, request: ProviderRequest) -> Reply:
        if request.bearer_token() != self.api_key:
            return error_reply(401, "Invalid API key")  # inferred text: undocumented
        if request.path != GENERATIONS_PATH:
            return error_reply(404, f"Cannot {request.method} {request.path}")
        if request.method != "POST":
            return error_reply(405, f"Cannot {request.method} {request.path}")  # inferred
        try:
            payload = parse_json(request.body)
            spec, count = _validated(payload)
        except Invalid as invalid:
            return error_reply(400, BODY_VALIDATION_ERROR, invalid.problems)
        job = AimlJob(issue_images(self.context.images, spec, count, self.provider_id, payload))
        task = self.tasks.create(
            uuid.uuid4().hex, self.context.settings.latency, self.claim_task_failure(), job
        )
        wait_until_finished(task)
        if task.failure_message is not None:
            # A failed generation is not documented; inferred: a 400 carrying the reason.
            return error_reply(400, task.failure_message)
        return json_reply(
            200,
            {
                "data": [{"url": self.context.images.url(image)} for image in job.images],
                "meta": {"usage": {"credits_used": CREDITS_PER_IMAGE * count}},
            },
        )


def _validated(payload: Any) -> tuple[ImageSpec, int]:
    fields = Fields(payload, INPUT_FIELDS)
    # inferred (undocumented): unknown fields are refused, so that a mistyped
    # field is not silently dropped
    model = fields.text("model", required=True)
    if model is not None and model != MODEL_ID:
        fields.add(("model",), f"Input should be '{MODEL_ID}'", "literal_error")
    fields.text("prompt", required=True, min_length=1, max_length=MAX_PROMPT_LENGTH)
    urls = fields.items("image_urls", required=True, min_items=1, max_items=MAX_REFERENCES)
    for index, value in enumerate(urls):
        if not _is_image_reference(value):
            fields.add(
                ("image_urls", index),
                "Input should be an image URL or Base64-encoded image",
                "url_parsing",
            )
    aspect_ratio = fields.choice("aspect_ratio", ASPECT_RATIOS, default="16:9")
    resolution = fields.choice("resolution", tuple(RESOLUTIONS), default="1K")
    output_format = fields.choice("output_format", tuple(OUTPUT_FORMATS), default="png")
    count = fields.integer("num_images", default=1, ge=1, le=MAX_IMAGES)
    fields.finish()
    spec = output_spec(RESOLUTIONS[resolution], aspect_ratio, OUTPUT_FORMATS[output_format])
    return spec, count


def _is_image_reference(value: Any) -> bool:
    """ "URLs or local Base64 encoded images" (API reference): an http(s) URL, a base64 data URI, or
    bare base64 (which form of base64 is meant is not documented; both are accepted)."""
    if not isinstance(value, str):
        return False
    if is_http_url(value):
        return True
    payload = data_uri_payload(value)
    return bool(decode_base64(payload if payload is not None else value))
