"""fal.ai's queue API for `fal-ai/kling-image/o1`. Sources: the model API page
(https://fal.ai/models/fal-ai/kling-image/o1/api; schema in @fal-ai/client 1.10.1
`src/types/endpoints.d.ts`), fal's queue and error docs (docs.fal.ai) and the official client
(PyPI fal-client 1.0.3, `client.py`, `auth.py`).

The queue base `https://queue.fal.run` maps to the mount itself (base_path ""):
`POST /fal-ai/kling-image/o1` submits and answers with `status_url`, `response_url` and
`cancel_url`, absolute URLs back into this mount that use only owner/app
(`/fal-ai/kling-image/requests/{id}...`, queue docs). Auth is `Authorization: Key <key>`
(fal-client `auth.py`).
Validation errors are FastAPI-style `{"detail": [{"loc", "msg", "type"}]}` (fal's
"Model Errors" docs).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

from kling_cli.emulator.body_fields import Invalid, parse_json
from kling_cli.emulator.fal_validation import validated
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.images import (
    CONTENT_TYPES,
    EXTENSIONS,
    IssuedImage,
    encoded,
)
from kling_cli.emulator.media import MediaStore
from kling_cli.emulator.provider import ProviderApi, ProviderContext, ProviderRequest
from kling_cli.emulator.provider_kit import (
    Cancellations,
    is_http_url,
    iso_time,
    issue_images,
)
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Event, Task

APP_PATH = "/fal-ai/kling-image"  # owner/app: status, result and cancel live here (queue docs)
SUBMIT_PATH = APP_PATH + "/o1"
REQUESTS_PREFIX = APP_PATH + "/requests/"
# The REST host `rest.fal.ai`, emulated below the mount; its storage upload (fal-client).
REST_PATH = "/_rest"
INITIATE_UPLOAD_PATH = REST_PATH + "/storage/upload/initiate"

# inferred (the queue docs give COMPLETED + error/error_type but not the values): the emulated
# failure stands for a refusal by Kling's moderation, which fal reports with this type.
FAILURE_ERROR_TYPE = "content_policy_violation"
CANCELLED_MESSAGE = "Request was cancelled"


@dataclass(frozen=True)
class FalJob:
    images: tuple[IssuedImage, ...]
    sync_mode: bool  # outputs as data URIs (model page)


def detail_reply(
    status: int, detail: Any, error_type: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """fal's error body: `{"detail": ...}`, plus `error_type` and `X-Fal-Error-Type` for
    infrastructure errors (fal's error docs)."""
    body: dict[str, Any] = {"detail": detail}
    all_headers = dict(headers or {})
    if error_type is not None:
        body["error_type"] = error_type
        all_headers["X-Fal-Error-Type"] = error_type
    return json_reply(status, body, all_headers)


class FalApi(ProviderApi[FalJob]):
    provider_id = "fal"
    # fal's queue documents IN_QUEUE, IN_PROGRESS and COMPLETED only, and its client raises
    # "Unknown status" on anything else (fal-client, `_parse_status`); a status schema
    # published for the queue also lists these two, so they are the unknowns emulated.
    final_states = ("FAILED", "CANCELED")
    base_path = ""  # https://queue.fal.run -> the mount; paths are /fal-ai/kling-image/...
    service_paths: ClassVar[dict[str, str]] = {"rest": REST_PATH}

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.cancellations = Cancellations(self.provider_id)

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.method == "POST" and request.path == SUBMIT_PATH:
            return "submit"
        route = _request_route(request.path)
        if request.method == "GET" and route is not None and route[1] in ("status", ""):
            return "poll"
        if request.path == INITIATE_UPLOAD_PATH:
            return "upload"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        # fal documents 429 among the retried codes but no body (inferred shape).
        return detail_reply(429, "Too many requests, retry later", "rate_limited")

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        # fal's "Request Error Types" docs: request_timeout (504, its documented detail text) and
        # runner_scheduling_failure (503); "internal_error" for the rest (inferred).
        detail, error_type = {
            503: ("Runner scheduling failure", "runner_scheduling_failure"),
            504: ("Request timed out", "request_timeout"),
        }.get(status, ("Internal server error", "internal_error"))
        return detail_reply(status, detail, error_type)

    def events(self) -> list[Event]:
        return self.cancellations.adjust(self.tasks.events())

    def reset(self) -> None:
        super().reset()
        self.cancellations.clear()

    def handle(self, request: ProviderRequest) -> Reply:
        unauthorized = self._unauthorized(request)
        if unauthorized is not None:
            return unauthorized
        if request.path == SUBMIT_PATH and request.method == "POST":
            return self._submit(request)
        if request.path == INITIATE_UPLOAD_PATH and request.method == "POST":
            return self._initiate_upload(request)
        route = _request_route(request.path)
        if route is not None:
            request_id, action = route
            task = self.tasks.get(request_id)
            if (request.method, action) == ("GET", "status"):
                return self._status(request, task)
            if (request.method, action) == ("GET", ""):
                return self._result(task)
            if (request.method, action) == ("PUT", "cancel"):
                return self._cancel(task)
        return detail_reply(404, f"No route for {request.method} {request.path}")

    # -- auth (fal-client) --------------------------------------------------------------------

    def _unauthorized(self, request: ProviderRequest) -> Reply | None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "key" and key.strip() == self.api_key:
            return None
        # 401 for a missing or wrong key; the exact bodies are not documented (inferred).
        if not header:
            return detail_reply(401, "Authentication is required to access this application.")
        return detail_reply(401, "No user found for Key ID and Secret")

    # -- routes ------------------------------------------------------------------------------

    def _initiate_upload(self, request: ProviderRequest) -> Reply:
        """The SDK's GCS upload (fal-client): `{file_name, content_type}` in, a signed `upload_url`
        for the bytes and the `file_url` to use out."""
        if parse_qs(request.query).get("storage_type") != ["gcs"]:
            return detail_reply(422, "storage_type must be gcs")  # inferred: others untested
        try:
            payload = json.loads(request.body)
            name, content_type = payload["file_name"], payload["content_type"]
        except (ValueError, KeyError, TypeError):
            return detail_reply(422, "file_name and content_type are required")
        if not isinstance(name, str) or not isinstance(content_type, str) or not name:
            return detail_reply(422, "file_name and content_type must be strings")
        file = self.context.media.reserve(self.provider_id, name, content_type)
        mount_url = self.mount_url(request)
        return json_reply(
            200,
            {
                "upload_url": MediaStore.signed_url(file, mount_url),
                "file_url": MediaStore.url(file, mount_url),
            },
        )

    def _submit(self, request: ProviderRequest) -> Reply:
        webhook = parse_qs(request.query).get("fal_webhook", [None])[0]
        if webhook is not None and not is_http_url(webhook):
            problem = {
                "loc": ["query", "fal_webhook"],
                "msg": "Input should be a valid URL",
                "type": "url_parsing",
            }
            return detail_reply(422, [problem])
        try:
            payload = parse_json(request.body)
            spec, count, sync_mode = validated(payload)
        except Invalid as invalid:
            return detail_reply(422, invalid.details())
        missing = self.context.media.first_missing(payload.get("image_urls"))
        if missing is not None:
            # inferred: fal's answer to an input file it cannot download (fal's error docs).
            problem = {
                "loc": ["body", "image_urls"],
                "msg": f"Failed to download the file: {missing}",
                "type": "file_download_error",
            }
            return detail_reply(422, [problem])
        images = issue_images(self.context.images, spec, count, self.provider_id, payload)
        job = FalJob(images, sync_mode)
        request_id = str(uuid.uuid4())
        failure = self.claim_failure()
        task = self.tasks.create(
            request_id,
            self.context.settings.latency,
            failure.message if failure else None,
            job,
            final_state=failure.final_state if failure else None,
        )
        self.notify_when_done(webhook, task, lambda: [self._webhook_body(task)])
        urls = self._urls(request, request_id)
        body: dict[str, Any] = {"request_id": request_id, **urls}
        if webhook is not None:
            body["gateway_request_id"] = request_id  # "with a webhook the submit also carries"
        return json_reply(200, body)

    def _urls(self, request: ProviderRequest, request_id: str) -> dict[str, str]:
        base = f"{self.mount_url(request)}{self.base_path}"
        response_url = f"{base}{REQUESTS_PREFIX}{request_id}"
        return {
            "response_url": response_url,
            "status_url": f"{response_url}/status",
            "cancel_url": f"{response_url}/cancel",
        }

    def _status(self, request: ProviderRequest, task: Task[FalJob] | None) -> Reply:
        if task is None:
            return detail_reply(404, "Request not found")  # inferred: undocumented
        urls = self._urls(request, task.task_id)
        with_logs = parse_qs(request.query).get("logs", ["0"])[0] == "1"
        phase = task.phase()
        body: dict[str, Any] = {"request_id": task.task_id, "response_url": urls["response_url"]}
        if task.task_id in self.cancellations:
            body.update(status="COMPLETED", logs=None, metrics={})
            body.update(error=CANCELLED_MESSAGE, error_type="request_cancelled")  # inferred
            return json_reply(200, body)
        if phase == "pending":
            # Only this emulated request is ahead of itself: position 0 (0-indexed, queue docs).
            body.update(status="IN_QUEUE", queue_position=0)
            return json_reply(202, body)  # 202 while queued or running, 200 when done (queue docs)
        logs = self._logs(task) if with_logs else None
        if phase == "failed" and task.final_state is not None:
            body.update(status=task.final_state, logs=logs)  # inferred: no error fields
            return json_reply(200, body)
        if phase == "processing":
            body.update(status="IN_PROGRESS", logs=logs)
            return json_reply(202, body)
        body.update(status="COMPLETED", logs=logs, metrics={"inference_time": task.latency})
        if phase == "failed":
            body.update(error=task.failure_message, error_type=FAILURE_ERROR_TYPE)
        return json_reply(200, body)

    @staticmethod
    def _logs(task: Task[FalJob]) -> list[dict[str, str]]:
        return [
            {
                "timestamp": iso_time(task.created_wall),
                "level": "INFO",
                "message": "Generating with Kling Image O1 (emulated)",
            }
        ]

    def _result(self, task: Task[FalJob] | None) -> Reply:
        if task is None:
            return detail_reply(404, "Request not found")  # inferred: undocumented
        if task.task_id in self.cancellations:
            return detail_reply(400, CANCELLED_MESSAGE)  # inferred: undocumented
        phase = task.phase()
        if phase in ("pending", "processing"):
            return detail_reply(400, "Request is still in progress")  # inferred
        if phase == "failed":
            # "If the model returned an error, this operation returns the same error" (queue
            # docs), in the documented model-error shape; 422 and the loc are inferred.
            error = {
                "loc": ["body", "prompt"],
                "msg": task.failure_message,
                "type": FAILURE_ERROR_TYPE,
            }
            return detail_reply(422, [error], headers={"X-Fal-Retryable": "false"})
        return json_reply(
            200, {"images": [self._image(image, task) for image in task.details.images]}
        )

    def _webhook_body(self, task: Task[FalJob]) -> dict[str, Any]:
        """fal docs, "Webhooks": `status` OK with the result as `payload`, or ERROR with the
        message in `error` and the model's error detail as `payload`."""
        body: dict[str, Any] = {"request_id": task.task_id, "gateway_request_id": task.task_id}
        if task.phase() == "failed":
            detail = [{"loc": ["body", "prompt"], "msg": task.failure_message}]
            return {
                **body,
                "status": "ERROR",
                "error": task.failure_message,
                "payload": {"detail": detail},
            }
        images = [self._image(image, task) for image in task.details.images]
        return {**body, "status": "OK", "payload": {"images": images}, "error": None}

    def _image(self, image: IssuedImage, task: Task[FalJob]) -> dict[str, Any]:
        """`Image` of the model page: url plus content_type, file_name, file_size, width, height."""
        content = encoded(image)
        content_type = CONTENT_TYPES[image.spec.format]
        if task.details.sync_mode:
            url = f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"
        else:
            url = self.context.images.url(image)
        return {
            "url": url,
            "content_type": content_type,
            "file_name": f"{image.image_id}.{EXTENSIONS[image.spec.format]}",
            "file_size": len(content),
            "width": image.spec.width,
            "height": image.spec.height,
        }

    def _cancel(self, task: Task[FalJob] | None) -> Reply:
        # The four documented outcomes (fal cancel page): NOT_FOUND, CANCELLATION_REQUESTED,
        # ALREADY_COMPLETED (and OK); the HTTP codes are inferred. A running request gets a
        # cancellation signal that this model does not act on, so it still completes.
        if task is None:
            return json_reply(404, {"status": "NOT_FOUND"})
        if self.cancellations.cancel_if_queued(task) or not task.is_finished():
            return json_reply(202, {"status": "CANCELLATION_REQUESTED"})
        return json_reply(400, {"status": "ALREADY_COMPLETED"})


def _request_route(path: str) -> tuple[str, str] | None:
    """(request id, "" | "status" | "cancel") for a path under /fal-ai/kling-image/requests/."""
    if not path.startswith(REQUESTS_PREFIX):
        return None
    request_id, _, action = path[len(REQUESTS_PREFIX) :].partition("/")
    if not request_id or action not in ("", "status", "cancel"):
        return None
    return request_id, action
