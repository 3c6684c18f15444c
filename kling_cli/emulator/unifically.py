"""Unifically's unified tasks API for `kuaishou/kling-o1-image`. Sources: the Kling O1 Image
page (https://unifically.com/models/kling-o1-image), the Unified Tasks API
(https://docs.unifically.com/api-reference/v1-tasks), the error-handling docs
(https://docs.unifically.com/api-reference/error-handling), the get-task docs
(https://docs.unifically.com/image-models/gpt-image-1/get-task) and the storage docs
(https://unifically.gitbook.io/unifically-docs/storage).

`POST /v1/tasks` submits, `GET /v1/tasks/{task_id}` polls. Every answer is wrapped as
`{"code": <int>, "data": {...}}` (Unified Tasks API, error-handling docs). The storage host
`files.storagecdn.online`, which takes the same key, is emulated below `/_storage`: `PUT /upload`
with a multipart `file` or JSON `{"base64": ...}` answers `{"success": true, "file_url": ...}`
(storage docs; the answer as third-party clients read it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from kling_cli.emulator.dimensions import ASPECT_RATIOS, Tier, pixels
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.images import ImageSpec, IssuedImage, caption_of
from kling_cli.emulator.media import MediaStore, form_file
from kling_cli.emulator.provider import ProviderApi, ProviderRequest
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Task, TaskPhase

MODEL_ID = "kuaishou/kling-o1-image"
TASKS_PATH = "/v1/tasks"
STORAGE_PATH = "/_storage"
UPLOAD_PATH = STORAGE_PATH + "/upload"
ASPECT_RATIO_CHOICES = ("auto", *ASPECT_RATIOS)  # model page FAQ: Auto plus eight named ratios
# Lower case as in the model page's curl example; the upper-case spelling is not documented.
RESOLUTIONS: dict[str, Tier] = {"1k": "1k", "2k": "2k"}
# Not documented; 1k is the tier the other seed providers default to.
DEFAULT_RESOLUTION = "1k"
# "auto" lets the model pick from the references, which the emulator does not fetch.
AUTO_ASPECT_RATIO = "1:1"
# Max prompt length undocumented; inferred: Kling's upstream limit is 2500.
MAX_PROMPT_LENGTH = 2500
MAX_IMAGE_URLS = 10

_TOP_LEVEL_FIELDS = frozenset({"model", "input", "callback_url", "dry_run"})
_INPUT_FIELDS = frozenset({"prompt", "image_urls", "aspect_ratio", "resolution"})
_HTTP_URL = re.compile(r"^https?://[^/\s]+", re.I)
_STATUS_BY_PHASE: dict[TaskPhase, str] = {
    "pending": "pending",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
}


@dataclass(frozen=True)
class UnificallyJob:
    image: IssuedImage  # one image per task (no count parameter documented)


class _Rejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_reply(status: int, message: str, code: str) -> Reply:
    """The documented error envelope (error-handling docs)."""
    return json_reply(status, {"code": status, "data": {"message": message, "code": code}})


class UnificallyApi(ProviderApi[UnificallyJob]):
    provider_id = "unifically"
    base_path = ""  # paths below the base are the documented /v1/tasks...
    service_paths: ClassVar[dict[str, str]] = {"storage": STORAGE_PATH}

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.method == "POST" and request.path == TASKS_PATH:
            return "submit"
        if request.method == "GET" and _task_id_in(request.path) is not None:
            return "poll"
        if request.path == UPLOAD_PATH:
            return "upload"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        return error_reply(
            429, "Rate limit exceeded. Please try again later", "rate_limit_exceeded"
        )

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        return error_reply(status, "Internal server error", "internal_error")

    def handle(self, request: ProviderRequest) -> Reply:
        if request.bearer_token() != self.api_key:
            if request.path == UPLOAD_PATH:  # the storage host's own failure shape
                return _storage_refusal("Invalid API key provided", 401)
            return error_reply(401, "Invalid API key provided", "authentication_failed")
        if request.method == "POST" and request.path == TASKS_PATH:
            return self._submit(request)
        if request.method == "PUT" and request.path == UPLOAD_PATH:
            return self._upload(request)
        task_id = _task_id_in(request.path)
        if request.method == "GET" and task_id is not None:
            return self._poll(task_id)
        return error_reply(404, f"No route for {request.method} {request.path}", "not_found")

    def _submit(self, request: ProviderRequest) -> Reply:
        try:
            payload = json.loads(request.body)
            spec, dry_run = _validated_submission(payload)
        except ValueError:
            return error_reply(422, "Request body must be a JSON object", "validation_error")
        except _Rejected as rejected:
            return error_reply(422, rejected.message, "validation_error")
        if dry_run:
            # Unified Tasks API: "validated ... without actually creating a task"; response shape
            # undocumented.
            return json_reply(200, {"code": 200, "success": True, "data": {"dry_run": True}})
        missing = self.context.media.first_missing(payload["input"].get("image_urls"))
        if missing is not None:  # inferred: a reference the model cannot fetch is refused
            return error_reply(
                422, f"Invalid parameter: cannot fetch {missing}", "validation_error"
            )
        caption = caption_of(payload)
        job = UnificallyJob(image=self.context.images.issue(spec, self.provider_id, caption))
        task_id = _new_task_id()
        task = self.tasks.create(
            task_id, self.context.settings.latency, self.claim_task_failure(), job
        )
        self.notify_when_done(payload.get("callback_url"), task, lambda: [self._callback(task)])
        # Verbatim shape from the Unified Tasks API.
        return json_reply(
            200, {"code": 200, "success": True, "data": {"task_id": task_id, "status": "pending"}}
        )

    def _upload(self, request: ProviderRequest) -> Reply:
        """Methods 1 and 2 of the storage docs; the response shape is the one third-party clients
        read."""
        upload = form_file(request.headers, request.body)
        if upload is None:
            try:
                encoded = json.loads(request.body).get("base64")
                content = base64.b64decode(encoded.partition("base64,")[2] or encoded)
            except (ValueError, AttributeError, TypeError, binascii.Error):
                return _storage_refusal("Send a multipart file or JSON with base64")
            upload = ("upload.png", "image/png", content)
        name, content_type, content = upload
        if not content:
            return _storage_refusal("The file is empty")
        file = self.context.media.put(self.provider_id, name, content_type, content)
        mount_url = self.mount_url(request)
        return json_reply(200, {"success": True, "file_url": MediaStore.url(file, mount_url)})

    def _poll(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            # Not documented; a third-party client treats 400/404 as "not found".
            return error_reply(404, f"Task not found: {task_id}", "task_not_found")
        return json_reply(200, {"code": 200, "data": self._task_view(task)})

    def _task_view(self, task: Task[UnificallyJob]) -> dict[str, Any]:
        """Shape of the legacy status example (get-task docs), which /v1/tasks pollers read."""
        phase = task.phase()
        output: dict[str, Any] = {}
        error: dict[str, Any] = {}
        if phase == "succeeded":
            output["image_url"] = self.context.images.url(task.details.image)
        elif phase == "failed":
            error = {"message": task.failure_message, "code": "generation_failed"}
        return {
            "task_id": task.task_id,
            "status": _STATUS_BY_PHASE[phase],
            "output": output,
            "error": error,
        }

    def _callback(self, task: Task[UnificallyJob]) -> dict[str, Any]:
        """The callback body (docs.unifically.com/api-reference/callbacks): the output in
        `data.*`, not in `data.output.*` as a poll has it; a failure is flat."""
        if task.phase() == "failed":
            return {
                "status": "failed",
                "task_id": task.task_id,
                "error_message": task.failure_message,
            }
        image_url = self.context.images.url(task.details.image)
        return {"task_id": task.task_id, "status": "completed", "data": {"image_url": image_url}}


def _task_id_in(path: str) -> str | None:
    prefix = TASKS_PATH + "/"
    if not path.startswith(prefix):
        return None
    task_id = path[len(prefix) :]
    return task_id if task_id and "/" not in task_id else None


def _new_task_id() -> str:
    return uuid.uuid4().hex[:16]  # server-made id; the documented example is "abc123def456"


def _validated_submission(payload: Any) -> tuple[ImageSpec, bool]:
    """The model page's fields. Messages mimic the documented
    "Missing required parameter: prompt"."""
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    for name in payload:
        if name not in _TOP_LEVEL_FIELDS:
            raise _Rejected(f"Unknown parameter: {name}")
    model = payload.get("model")
    if model is None:
        raise _Rejected("Missing required parameter: model")
    if model != MODEL_ID:
        raise _Rejected(f"Unsupported model: {model}")
    _check_url(payload, "callback_url")
    dry_run = payload.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise _Rejected("Invalid parameter: dry_run must be a boolean")
    task_input = payload.get("input")
    if task_input is None:
        raise _Rejected("Missing required parameter: input")
    if not isinstance(task_input, dict):
        raise _Rejected("Invalid parameter: input must be an object")
    return _validated_input(task_input), dry_run


def _validated_input(task_input: dict[str, Any]) -> ImageSpec:
    for name in task_input:
        if name not in _INPUT_FIELDS:
            raise _Rejected(f"Unknown parameter: {name}")
    prompt = task_input.get("prompt")
    if prompt is None or prompt == "":
        raise _Rejected("Missing required parameter: prompt")
    if not isinstance(prompt, str):
        raise _Rejected("Invalid parameter: prompt must be a string")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise _Rejected(f"Invalid parameter: prompt must be at most {MAX_PROMPT_LENGTH} characters")
    _check_image_urls(task_input.get("image_urls"))
    aspect_ratio = task_input.get("aspect_ratio", "auto")
    if aspect_ratio not in ASPECT_RATIO_CHOICES:
        raise _Rejected(
            f"Invalid parameter: aspect_ratio must be one of {', '.join(ASPECT_RATIO_CHOICES)}"
        )
    resolution = task_input.get("resolution", DEFAULT_RESOLUTION)
    if resolution not in RESOLUTIONS:
        raise _Rejected(f"Invalid parameter: resolution must be one of {', '.join(RESOLUTIONS)}")
    ratio = AUTO_ASPECT_RATIO if aspect_ratio == "auto" else aspect_ratio
    width, height = pixels(RESOLUTIONS[resolution], ratio)
    # Output format is not documented; the documented example URLs end in .png.
    return ImageSpec(width, height, "PNG")


def _check_image_urls(image_urls: Any) -> None:
    if image_urls is None:
        return
    if not isinstance(image_urls, list):
        raise _Rejected("Invalid parameter: image_urls must be an array of URLs")
    if len(image_urls) > MAX_IMAGE_URLS:
        raise _Rejected(f"Invalid parameter: image_urls accepts at most {MAX_IMAGE_URLS} URLs")
    for url in image_urls:
        if not isinstance(url, str) or not _HTTP_URL.match(url):
            raise _Rejected("Invalid parameter: every image_urls entry must be an http(s) URL")


def _storage_refusal(message: str, status: int = 400) -> Reply:
    # inferred: `success != true` plus `message` (third-party clients); the status code is not
    # documented.
    return json_reply(status, {"success": False, "message": message})


def _check_url(payload: dict[str, Any], name: str) -> None:
    value = payload.get(name)
    if value is not None and (not isinstance(value, str) or not _HTTP_URL.match(value)):
        raise _Rejected(f"Invalid parameter: {name} must be an http(s) URL")
