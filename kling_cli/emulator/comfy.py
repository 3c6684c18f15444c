"""Comfy Router's `kling/kling-image-o1`, per the Comfy Router docs
(https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code; and its api,
errors, reference and queue pages).

Base `https://api.comfy.org` maps to the mount itself (base_path ""). Routes:

- `POST /v2/models/kling/kling-image-o1`: synchronous; holds the connection until the
  generation ends (deadline 10 min, then `504 deadline_exceeded`) and answers with Kling's
  own task object (Kling's Omni-Image API reference,
  https://kling.ai/document-api/api/image/o1/image-generation).
- `POST /v2/models/kling/kling-image-o1/requests`: queued; `201` with `request_id` and the
  `status_url`, `response_url` and `cancel_url` under `.../requests/{request_id}`.
- `GET .../requests/{id}/status`, `GET .../requests/{id}`, `PUT .../requests/{id}/cancel`.

Auth is `X-API-Key` (or the same key as `Authorization: Bearer`; X-API-Key wins).
`Idempotency-Key` makes a retry safe: the same key and request give the same generation,
replayed with `Idempotent-Replayed: true` and no second task. Errors are
`{"detail", "error_type"}` with `X-Comfy-Error-Type`; validation errors are 422
`{"detail": [{"loc", "msg", "type"}]}`. Every answer carries `X-Comfy-Request-Id`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kling_cli.emulator.body_fields import Invalid, parse_json
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.kling_native import (
    KLING_FIELDS,
    MODEL_NAME,
    KlingJob,
    KlingOrder,
    Refused,
    envelope,
    new_task_id,
    read_order,
    task_data,
)
from kling_cli.emulator.provider import ProviderApi, ProviderContext, ProviderRequest
from kling_cli.emulator.provider_kit import (
    Cancellations,
    issue_images,
    retry_after_seconds,
    wait_until_finished,
)
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Event, Task

MODELS_PREFIX = "/v2/models/"
MODEL_ID = "kling/" + MODEL_NAME
MODEL_PATH = MODELS_PREFIX + MODEL_ID
QUEUE_PATH = MODEL_PATH + "/requests"

# The Router schema for this model (model page): Kling's body without watermark_info.
COMFY_FIELDS = KLING_FIELDS - {"watermark_info"}
# "One Router call may hold the connection for 10 minutes by default" (errors page). Read on
# every call, so a test can shorten it.
SYNC_DEADLINE_SECONDS = 600.0
MAX_IDEMPOTENCY_KEY_LENGTH = 255  # reference: Idempotency-Key 1-255 characters

# The reference's closed set of buckets; the ones this emulation answers with.
INVALID_INPUT = "invalid_input"
CONTENT_POLICY_VIOLATION = "content_policy_violation"
MODEL_NOT_FOUND = "model_not_found"
UNAUTHORIZED = "unauthorized"
CONCURRENCY_LIMIT_EXCEEDED = "concurrency_limit_exceeded"
CLIENT_DISCONNECTED = "client_disconnected"
DEADLINE_EXCEEDED = "deadline_exceeded"
RATE_LIMITED = "rate_limited"

# inferred: the emulated task failure stands for Kling's risk-control refusal (Kling's
# API reference), which
# Router reports in the content_policy_violation bucket; the status code is inferred (the
# reference's catch-all 400 for request-level buckets).
FAILURE_STATUS = 400
# inferred: no bucket names a cancellation; this is the closest (the caller gave up on it).
CANCELLED_BUCKET = CLIENT_DISCONNECTED


def router_error(
    status: int, error_type: str, detail: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """RouterErrorResponse: `{"detail", "error_type"}` + `X-Comfy-Error-Type` (reference)."""
    return json_reply(
        status,
        {"detail": detail, "error_type": error_type},
        {**(headers or {}), "X-Comfy-Error-Type": error_type},
    )


def validation_error(details: list[dict[str, Any]]) -> Reply:
    """422 RouterValidationErrorResponse; the bucket is only in the header (errors page)."""
    return json_reply(422, {"detail": details}, {"X-Comfy-Error-Type": INVALID_INPUT})


@dataclass
class _KeyRecord:
    """What an Idempotency-Key is bound to. Router keeps it 24 h; the emulator until reset."""

    fingerprint: tuple[str, str, str, Any]  # method, path, query, body: compared on reuse
    task_id: str
    queued: bool
    holders: int = 0  # synchronous calls holding a connection for the task right now
    replay: tuple[int, bytes] | None = field(default=None)  # first terminal answer


class ComfyApi(ProviderApi[KlingJob]):
    provider_id = "comfy"
    base_path = ""  # https://api.comfy.org -> the mount; paths are /v2/models/...

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.cancellations = Cancellations(self.provider_id)
        self._lock = threading.Lock()
        self._keys: dict[str, _KeyRecord] = {}

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.method == "POST" and request.path in (MODEL_PATH, QUEUE_PATH):
            return "submit"
        route = _queue_route(request.path)
        if request.method == "GET" and route is not None and route[1] in ("", "status"):
            return "poll"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        return _with_request_id(
            router_error(429, RATE_LIMITED, "The request allowance is exhausted; retry later.")
        )

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        # reference buckets: service_unavailable (503), provider_timeout (the provider's
        # deadline, 504 inferred), internal_error otherwise.
        error_type, detail = {
            503: ("service_unavailable", "A service Router depends on is unavailable."),
            504: ("provider_timeout", "The provider did not answer within its deadline."),
        }.get(status, ("internal_error", "Router failed."))
        return _with_request_id(router_error(status, error_type, detail))

    def events(self) -> list[Event]:
        return self.cancellations.adjust(self.tasks.events())

    def reset(self) -> None:
        super().reset()
        self.cancellations.clear()
        with self._lock:
            self._keys.clear()

    def handle(self, request: ProviderRequest) -> Reply:
        return _with_request_id(self._route(request))

    # -- routing -----------------------------------------------------------------------------

    def _route(self, request: ProviderRequest) -> Reply:
        if not self._authenticated(request):
            return router_error(401, UNAUTHORIZED, "Missing or invalid credentials.")
        if not request.path.startswith(MODELS_PREFIX):
            return router_error(404, MODEL_NOT_FOUND, f"No route for {request.path}")
        if not (request.path + "/").startswith(MODEL_PATH + "/"):
            model_id = request.path[len(MODELS_PREFIX) :]
            return router_error(
                404, MODEL_NOT_FOUND, f"No model {model_id!r}; this emulator runs {MODEL_ID}"
            )
        if request.method == "POST" and request.path == MODEL_PATH:
            return self._run(request, queued=False)
        if request.method == "POST" and request.path == QUEUE_PATH:
            return self._run(request, queued=True)
        route = _queue_route(request.path)
        if route is not None:
            request_id, action = route
            task = self.tasks.get(request_id)
            if task is None:
                # "404 for an id that names no request" (cancel reference); bucket inferred.
                return router_error(404, INVALID_INPUT, f"No request {request_id!r}")
            if (request.method, action) == ("GET", "status"):
                return self._status(task)
            if (request.method, action) == ("GET", ""):
                return self._terminal_reply(task)
            if (request.method, action) == ("PUT", "cancel"):
                return self._cancel(task)
        return router_error(405, INVALID_INPUT, f"{request.method} is not allowed here")

    def _authenticated(self, request: ProviderRequest) -> bool:
        # "X-API-Key takes precedence when both credential headers are supplied" (reference).
        key = request.headers.get("x-api-key")
        if key is None:
            key = request.bearer_token()
        return key == self.api_key

    # -- submitting --------------------------------------------------------------------------

    def _run(self, request: ProviderRequest, queued: bool) -> Reply:
        try:
            payload = parse_json(request.body)
            order = read_order(payload, allowed=COMFY_FIELDS, model_names=(MODEL_NAME,))
        except Invalid as invalid:
            return validation_error(invalid.details())
        except Refused as refused:
            # Valid for the Router schema, refused by Kling for O1 (docs.comfy.org
            # KlingOmniProImageNode);
            # relayed as a request-level invalid_input (inferred status 400).
            return router_error(400, INVALID_INPUT, refused.message)
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            return router_error(400, INVALID_INPUT, "Idempotency-Key must be 1-255 characters")
        fingerprint = (request.method, request.path, request.query, payload)
        with self._lock:
            record = self._keys.get(key) if key is not None else None
            if record is not None and record.fingerprint != fingerprint:
                return router_error(
                    409,
                    INVALID_INPUT,
                    "This Idempotency-Key was used for a different request.",
                )
            replayed = record is not None
            if record is None:
                task = self._create(order)
                record = _KeyRecord(fingerprint, task.task_id, queued)
                if key is not None:
                    self._keys[key] = record
            existing = self.tasks.get(record.task_id)
            assert existing is not None  # tasks and keys are cleared together
            task = existing
            if queued:
                return self._queued_reply(request, task, replayed)
            if record.replay is None and record.holders > 0:
                # "The original call for that key is still running" (retry outcomes table).
                return router_error(
                    409,
                    CONCURRENCY_LIMIT_EXCEEDED,
                    "The original call for this Idempotency-Key is still running.",
                    {"Retry-After": retry_after_seconds(task)},
                )
            record.holders += 1
        try:
            return self._hold(task, record, replayed)
        finally:
            with self._lock:
                record.holders -= 1

    def _create(self, order: KlingOrder) -> Task[KlingJob]:
        job = KlingJob(
            order=order,
            images=issue_images(
                self.context.images, order.spec, order.n, self.provider_id, order.caption
            ),
            watermarked=(),
        )
        return self.tasks.create(
            new_task_id(), self.context.settings.latency, self.claim_task_failure(), job
        )

    def _hold(self, task: Task[KlingJob], record: _KeyRecord, replayed: bool) -> Reply:
        """The synchronous route: wait for the end, or give up at the deadline."""
        if record.replay is None and not wait_until_finished(task, SYNC_DEADLINE_SECONDS):
            # Router keeps a handle; the same request and key collect it later (errors page).
            return router_error(
                504,
                DEADLINE_EXCEEDED,
                "Router stopped waiting at its deadline; resend with the same key to collect.",
                {"Retry-After": retry_after_seconds(task)},
            )
        with self._lock:
            if record.replay is None:
                reply = self._terminal_reply(task)
                record.replay = (reply.status, reply.body)
        status, body = record.replay
        reply = self._json_bytes_reply(status, body)
        if replayed:
            reply = dataclasses.replace(
                reply, headers={**reply.headers, "Idempotent-Replayed": "true"}
            )
        return reply

    def _json_bytes_reply(self, status: int, body: bytes) -> Reply:
        headers: dict[str, str] = {}
        if status >= 400:
            headers["X-Comfy-Error-Type"] = json.loads(body)["error_type"]
        return Reply(status, body, headers=headers)

    def _queued_reply(
        self, request: ProviderRequest, task: Task[KlingJob], replayed: bool
    ) -> Reply:
        base = f"{self.mount_url(request)}{self.base_path}{QUEUE_PATH}"
        response_url = f"{base}/{task.task_id}"
        body = {
            "request_id": task.task_id,
            "status_url": f"{response_url}/status",
            "response_url": response_url,
            "cancel_url": f"{response_url}/cancel",
        }
        return json_reply(201, body, {"Idempotent-Replayed": "true"} if replayed else None)

    # -- the queue ---------------------------------------------------------------------------

    def _status(self, task: Task[KlingJob]) -> Reply:
        """Exactly three states; a failure or a cancellation is COMPLETED + error_type."""
        body: dict[str, Any] = {"request_id": task.task_id}
        phase = task.phase()
        if task.task_id in self.cancellations:
            body.update(status="COMPLETED", error_type=CANCELLED_BUCKET)
        elif phase in ("pending", "processing"):
            body["status"] = "IN_QUEUE" if phase == "pending" else "IN_PROGRESS"
            # "Retry-After hints how long to wait before polling again."
            return json_reply(200, body, {"Retry-After": retry_after_seconds(task)})
        else:
            body["status"] = "COMPLETED"
            if phase == "failed":
                body["error_type"] = CONTENT_POLICY_VIOLATION
        return json_reply(200, body)

    def _terminal_reply(self, task: Task[KlingJob]) -> Reply:
        """The result: Kling's task object, or the failure in Router's error envelope."""
        if task.task_id in self.cancellations:
            return router_error(FAILURE_STATUS, CANCELLED_BUCKET, "The request was cancelled.")
        phase = task.phase()
        if phase in ("pending", "processing"):
            # Read before COMPLETED: not documented (inferred: the "still running" answer).
            return router_error(
                409,
                CONCURRENCY_LIMIT_EXCEEDED,
                "The request is still running; read its status first.",
                {"Retry-After": retry_after_seconds(task)},
            )
        if phase == "failed":
            return router_error(
                FAILURE_STATUS, CONTENT_POLICY_VIOLATION, task.failure_message or "Task failed."
            )
        return json_reply(200, envelope(task_data(task, self.context.images)))

    def _cancel(self, task: Task[KlingJob]) -> Reply:
        """202 CANCELLATION_REQUESTED or 409 ALREADY_COMPLETED (cancel reference). A run
        already at the partner may complete anyway, and here it does."""
        body: dict[str, Any] = {"request_id": task.task_id}
        if task.task_id not in self.cancellations and (
            self.cancellations.cancel_if_queued(task) or not task.is_finished()
        ):
            return json_reply(202, {**body, "status": "CANCELLATION_REQUESTED"})
        return json_reply(409, {**body, "status": "ALREADY_COMPLETED"})


def _queue_route(path: str) -> tuple[str, str] | None:
    """(request id, "" | "status" | "cancel") for a path under .../requests/."""
    prefix = QUEUE_PATH + "/"
    if not path.startswith(prefix):
        return None
    request_id, _, action = path[len(prefix) :].partition("/")
    if not request_id or action not in ("", "status", "cancel"):
        return None
    return request_id, action


def _with_request_id(reply: Reply) -> Reply:
    """ "X-Comfy-Request-Id ... present on EVERY Router response" (reference)."""
    return dataclasses.replace(
        reply, headers={**reply.headers, "X-Comfy-Request-Id": str(uuid.uuid4())}
    )
