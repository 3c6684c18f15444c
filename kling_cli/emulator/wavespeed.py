"""WaveSpeed's API for `kwaivgi/kling-image-o1`. Sources: the model page
(https://wavespeed.ai/models/kwaivgi/kling-image-o1, and its `llms.txt`), the submit-task and
get-result docs (https://wavespeed.ai/docs/submit-task, https://wavespeed.ai/docs/get-result),
the media-upload docs (https://wavespeed.ai/docs-common-api/media-upload), the troubleshooting
guide (https://wavespeed.ai/docs/troubleshooting-guide) and the SDK (PyPI wavespeed 2.0.5).

Base `https://api.wavespeed.ai` maps to the mount itself (base_path ""):
`POST /api/v3/kwaivgi/kling-image-o1` submits, `GET /api/v3/predictions/{id}/result` polls
(the general docs' `GET /api/v3/predictions/{id}` answers the same). Auth is
`Authorization: Bearer <key>`. Every answer is `{"code", "message"[, "data"]}` (get-result docs).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from kling_cli.emulator.body_fields import Fields, Invalid, parse_json
from kling_cli.emulator.dimensions import Tier
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.images import ImageFormat, ImageSpec, IssuedImage
from kling_cli.emulator.media import MediaStore, form_file
from kling_cli.emulator.provider import ProviderApi, ProviderRequest
from kling_cli.emulator.provider_kit import (
    is_http_url,
    iso_time,
    issue_images,
    output_spec,
    wait_until_finished,
)
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Task, TaskPhase

MODEL_ID = "kwaivgi/kling-image-o1"
SUBMIT_PATH = "/api/v3/" + MODEL_ID
PREDICTIONS_PREFIX = "/api/v3/predictions/"
UPLOAD_PATH = "/api/v3/media/upload/binary"  # media-upload docs

# Model page; `output_format` (sent by third-party code, inferred) and the common flags
# (SDK, webhook docs).
INPUT_FIELDS = frozenset(
    {
        "prompt",
        "images",
        "aspect_ratio",
        "resolution",
        "num_images",
        "output_format",
        "enable_sync_mode",
        "webhook_url",
    }
)
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "auto")
RESOLUTIONS: dict[str, Tier] = {"1k": "1k", "2k": "2k"}
# inferred: the values fal and AIML document for the same model; png by default.
OUTPUT_FORMATS: dict[str, ImageFormat] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_PROMPT_LENGTH = 2500  # not documented for WaveSpeed; Kling's own limit (inferred)
MAX_IMAGES_IN = 10
MAX_IMAGES_OUT = 9  # inferred (from resellers)

_STATUS_BY_PHASE: dict[TaskPhase, str] = {
    "pending": "created",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
}


@dataclass(frozen=True)
class WaveSpeedJob:
    images: tuple[IssuedImage, ...]


def error_reply(status: int, message: str) -> Reply:
    # The error body is not documented; inferred to mirror the success envelope.
    return json_reply(status, {"code": status, "message": message})


class WaveSpeedApi(ProviderApi[WaveSpeedJob]):
    provider_id = "wavespeed"
    # The official SDK's wait loop ends on these too (wavespeed 2.0.5, api/client.py `_wait`:
    # `if status in ("failed", "cancelled", "timeout", "deleted")`); the REST docs name none.
    final_states = ("cancelled", "timeout", "deleted")
    base_path = ""  # https://api.wavespeed.ai -> the mount; paths are /api/v3/...

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.method == "POST" and request.path == SUBMIT_PATH:
            return "submit"
        if request.method == "GET" and _prediction_id_in(request.path) is not None:
            return "poll"
        if request.path == UPLOAD_PATH:
            return "upload"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        return error_reply(429, "Too Many Requests")  # account-levels docs' wording; body inferred

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        return error_reply(status, "Internal Server Error")  # inferred: undocumented

    def handle(self, request: ProviderRequest) -> Reply:
        if request.bearer_token() != self.api_key:
            # Troubleshooting guide: 401 for a wrong header or key; the message is inferred.
            return error_reply(401, "Unauthorized: invalid or missing API key")
        if request.method == "POST" and request.path == SUBMIT_PATH:
            return self._submit(request)
        if request.method == "POST" and request.path == UPLOAD_PATH:
            return self._upload(request)
        prediction_id = _prediction_id_in(request.path)
        if request.method == "GET" and prediction_id is not None:
            task = self.tasks.get(prediction_id)
            if task is None:
                return error_reply(404, f"prediction {prediction_id} not found")  # inferred
            return self._prediction_reply(request, task)
        return error_reply(404, f"No route for {request.method} {request.path}")

    def _upload(self, request: ProviderRequest) -> Reply:
        """Multipart field `file` in; the documented envelope with `download_url` out
        (media-upload docs)."""
        upload = form_file(request.headers, request.body)
        if upload is None or not upload[2]:
            return error_reply(400, "multipart/form-data field 'file' is required")  # inferred
        name, content_type, content = upload
        file = self.context.media.put(self.provider_id, name, content_type, content)
        url = MediaStore.url(file, self.mount_url(request))
        data = {"type": "image", "download_url": url, "filename": name, "size": len(content)}
        return json_reply(200, {"code": 200, "message": "success", "data": data})

    def _submit(self, request: ProviderRequest) -> Reply:
        webhook = parse_qs(request.query).get("webhook", [None])[0]
        if webhook is not None and not is_http_url(webhook):
            return error_reply(400, "webhook must be an http(s) URL")
        try:
            payload = parse_json(request.body)
            spec, count, sync = _validated(payload)
        except Invalid as invalid:
            return error_reply(400, invalid.problems[0].sentence())
        missing = self.context.media.first_missing(payload.get("images"))
        if missing is not None:
            return error_reply(400, f"images: cannot download {missing}")  # inferred wording
        images = issue_images(self.context.images, spec, count, self.provider_id, payload)
        job = WaveSpeedJob(images)
        failure = self.claim_failure()
        task = self.tasks.create(
            uuid.uuid4().hex,
            self.context.settings.latency,
            failure.message if failure else None,
            job,
            final_state=failure.final_state if failure else None,
        )
        # wavespeed.ai/docs/how-to-use-webhooks: the prediction itself, with its `input`.
        self.notify_when_done(
            webhook, task, lambda: [{**self._prediction(request, task), "input": payload}]
        )
        if sync:
            # enable_sync_mode: the POST answers with the final prediction (SDK). WaveSpeed's
            # sync timeout (code 5004) is not documented in seconds, so it is not emulated.
            wait_until_finished(task)
        return self._prediction_reply(request, task)

    def _prediction_reply(self, request: ProviderRequest, task: Task[WaveSpeedJob]) -> Reply:
        """The documented prediction shapes (get-result docs); a failed task is still HTTP 200."""
        data = self._prediction(request, task)
        return json_reply(200, {"code": 200, "message": "success", "data": data})

    def _prediction(self, request: ProviderRequest, task: Task[WaveSpeedJob]) -> dict[str, Any]:
        phase = task.phase()
        data: dict[str, Any] = {
            "id": task.task_id,
            "model": MODEL_ID,
            "status": (phase == "failed" and task.final_state) or _STATUS_BY_PHASE[phase],
            "urls": {"get": self._result_url(request, task.task_id)},
            "outputs": [],
            "has_nsfw_contents": [],
            "created_at": iso_time(task.created_wall),
            "error": "",
        }
        if phase == "succeeded":
            data["outputs"] = [self.context.images.url(image) for image in task.details.images]
            data["has_nsfw_contents"] = [False] * len(task.details.images)
            data["timings"] = {"inference": round(task.latency * 1000)}  # ms
        elif phase == "failed" and task.final_state is None:
            # inferred: what `error` holds for the SDK-only endings is not documented: empty.
            data["error"] = task.failure_message or "generation failed"
        return data

    def _result_url(self, request: ProviderRequest, prediction_id: str) -> str:
        base = f"{self.mount_url(request)}{self.base_path}"
        return f"{base}{PREDICTIONS_PREFIX}{prediction_id}/result"


def _prediction_id_in(path: str) -> str | None:
    """`/api/v3/predictions/{id}/result` (preferred: model page, SDK) or
    `/api/v3/predictions/{id}`."""
    if not path.startswith(PREDICTIONS_PREFIX):
        return None
    prediction_id, _, rest = path[len(PREDICTIONS_PREFIX) :].partition("/")
    return prediction_id if prediction_id and rest in ("", "result") else None


def _validated(payload: Any) -> tuple[ImageSpec, int, bool]:
    fields = Fields(payload, INPUT_FIELDS)
    # inferred (undocumented): unknown fields are refused, so that a mistyped
    # field is not silently dropped
    fields.text("prompt", required=True, min_length=1, max_length=MAX_PROMPT_LENGTH)
    for index, url in enumerate(fields.items("images", max_items=MAX_IMAGES_IN)):
        # URLs; base64 is not documented, local files go through the upload API.
        if not is_http_url(url):
            fields.add(("images", index), "Input should be a valid http(s) URL", "url_parsing")
    aspect_ratio = fields.choice("aspect_ratio", ASPECT_RATIOS, default="1:1")  # model page default
    resolution = fields.choice("resolution", tuple(RESOLUTIONS), default="1k")
    count = fields.integer("num_images", default=1, ge=1, le=MAX_IMAGES_OUT)
    output_format = fields.choice("output_format", tuple(OUTPUT_FORMATS), default="png")
    sync = fields.boolean("enable_sync_mode", default=False)
    webhook_url = fields.text("webhook_url")
    if webhook_url is not None and not is_http_url(webhook_url):
        fields.add(("webhook_url",), "Input should be a valid http(s) URL", "url_parsing")
    fields.finish()
    spec = output_spec(RESOLUTIONS[resolution], aspect_ratio, OUTPUT_FORMATS[output_format])
    return spec, count, sync
