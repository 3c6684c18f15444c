"""inference.sh's REST API running the app `klingai/image-o1`. Sources: the app page
(https://inference.sh/apps/klingai/image-o1), the app's source (github.com/inference-sh/grid,
`api/klingai/video/image-o1/`), the official SDK (PyPI inferencesh 0.36.0) and the docs
(https://inference.sh/docs/api/running-apps).

`POST /apps/run` creates a task, `GET /tasks/{id}` polls it, `GET /tasks/{id}/stream` streams
NDJSON snapshots until it ends, `POST /tasks/{id}/cancel` cancels it, and `POST /files` plus a
`PUT` to a signed URL uploads a reference image (inferencesh_files.py). Successes use the V3
envelope `{"data": ..., "messages": []}` (SDK `_request`), errors RFC 9457 problem+json (same).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from kling_cli.emulator.faults import Fault, Phase
from kling_cli.emulator.images import Caption, IssuedImage
from kling_cli.emulator.inferencesh_files import FileStore
from kling_cli.emulator.inferencesh_wire import (
    MAX_PROMPT_LENGTH,
    Problem,
    RunRequest,
    envelope_reply,
    invalid_input,
    problem_reply,
    validated_run,
)
from kling_cli.emulator.provider import ProviderApi, ProviderContext, ProviderRequest
from kling_cli.emulator.server import Reply
from kling_cli.emulator.tasks import Event, Task

RUN_PATH = "/apps/run"
TASKS_PREFIX = "/tasks/"
FILES_PATH = "/files"
KLING_MODEL = "kling-image-o1"  # output_meta.outputs[].extra.model (app's functions_schema.json)
APP_ID = "app_klingai_image_o1"  # made up: no example shows TaskDTO.app_id

# inferred: the last fifth of a successful run is spent uploading the output (status 9).
_UPLOADING_SHARE = 0.8
# inferred: the heartbeat interval is undocumented; the SDK gives up after 30 s of them.
_HEARTBEAT_SECONDS = 1.0
_HEARTBEAT = {"type": "heartbeat"}
# inferred: a stream that outlives this ends without a terminal snapshot, and the SDK then
# reconciles with GET /tasks/{id} (SDK `TaskStream`); it stays under the SDK's 60 s stream timeout.
_MAX_STREAM_SECONDS = 25.0
_STREAM_TICK = 0.01


class TaskStatus(IntEnum):
    """The current numbering (SDK 0.36 types.TaskStatus), not the legacy one."""

    RECEIVED = 1
    QUEUED = 2
    RUNNING = 7
    UPLOADING = 9
    COMPLETED = 10
    FAILED = 11
    CANCELLED = 12


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@dataclass(frozen=True)
class InferenceJob:
    request: RunRequest
    # One image whatever `n` is: the app returns only Kling's images[0] (app source).
    image: IssuedImage


@dataclass(frozen=True)
class _Cancellation:
    monotonic: float
    wall: float


InferenceTask = Task[InferenceJob]


class InferenceShApi(ProviderApi[InferenceJob]):
    provider_id = "inferencesh"
    # CANCELLED (12) is terminal in the official SDK (inferencesh 0.36, client.py
    # TERMINAL_STATUSES); a cancel the client sends is emulated apart (`_cancel`).
    final_states = ("cancelled",)
    base_path = ""  # the documented base is https://api.inference.sh (SDK `Inference`)

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.files = FileStore(context.media, self.provider_id)
        self._lock = threading.Lock()
        self._cancellations: dict[str, _Cancellation] = {}

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.method == "POST" and request.path == RUN_PATH:
            return "submit"
        task_id, action = _task_route(request.path)
        if request.method == "GET" and task_id and action in ("", "stream"):
            return "poll"
        if request.path == FILES_PATH:
            return "upload"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        # rate_limited is an SDK error code; its HTTP status 429 is inferred.
        return problem_reply(429, "rate_limited", "too many requests, retry later")

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        return problem_reply(status, "internal_error", "internal server error")

    def events(self) -> list[Event]:
        with self._lock:
            cancellations = dict(self._cancellations)
        found: list[Event] = []
        for event in self.tasks.events():
            _, name, provider, task_id = event
            cancellation = cancellations.get(task_id)
            if cancellation is None:
                found.append(event)
            elif name == "created":  # a cancelled task never completes nor fails
                found += [event, (cancellation.wall, "cancelled", provider, task_id)]
        return found

    def reset(self) -> None:
        super().reset()
        self.files.clear()
        with self._lock:
            self._cancellations.clear()

    def handle(self, request: ProviderRequest) -> Reply:
        if request.bearer_token() != self.api_key:
            return problem_reply(401, "unauthorized", "invalid api key")
        try:
            return self._route(request)
        except Problem as problem:
            return problem.reply()

    # -- routes ------------------------------------------------------------------------------

    def _route(self, request: ProviderRequest) -> Reply:
        if request.method == "POST" and request.path == RUN_PATH:
            return self._run(request)
        if request.method == "POST" and request.path == FILES_PATH:
            return envelope_reply(self.files.register(_json_body(request), self.mount_url(request)))
        task_id, action = _task_route(request.path)
        route = (request.method, action)
        if task_id and route in (("GET", ""), ("GET", "stream"), ("POST", "cancel")):
            task = self.tasks.get(task_id)
            if task is None:
                raise Problem(404, "not_found", f"task not found: {task_id}")
            if action == "stream":
                return self._stream(task)
            if action == "cancel":
                self._cancel(task)
            return envelope_reply(self._task_dto(task, time.monotonic()))
        raise Problem(404, "not_found", f"no route for {request.method} {request.path}")

    def _run(self, request: ProviderRequest) -> Reply:
        run = validated_run(_json_body(request))
        if run.uploaded_image is not None and not self.files.uploaded(run.uploaded_image):
            # inferred: the answer to an unknown or never uploaded file is undocumented.
            raise invalid_input(f"input.image: no uploaded file at {run.uploaded_image}")
        caption = Caption(run.prompt, run.aspect_ratio, str(run.resolution))
        job = InferenceJob(run, self.context.images.issue(run.spec, self.provider_id, caption))
        failure = self._failure_of(run)
        fault = failure if isinstance(failure, Fault) else None
        task = self.tasks.create(
            uuid.uuid4().hex,
            self.context.settings.latency,
            fault.message if fault else None if failure is None else str(failure),
            job,
            final_state=fault.final_state if fault else None,
        )
        # "When the task reaches a terminal state ... a POST request is sent to your url with
        # the task result" (inference.sh app page): the TaskDTO itself, no envelope, with
        # today's status numbers (the page's example shows the old COMPLETED, 9).
        self.notify_when_done(run.webhook, task, lambda: [self._task_dto(task, time.monotonic())])
        # The created task comes back at once, RECEIVED (inferred: status 1).
        return envelope_reply(self._task_dto(task, time.monotonic(), TaskStatus.RECEIVED))

    def _failure_of(self, run: RunRequest) -> Fault | str | None:
        """Why the task will fail: the prompt, an injected fault, or nothing."""
        if len(run.prompt) > MAX_PROMPT_LENGTH:
            # inferred: the app's schema does not enforce "Max 2500 chars." (app source), so the
            # task is created and fails when Kling refuses the prompt, as the app reports errors.
            return f"prompt must be at most {MAX_PROMPT_LENGTH} characters"
        return self.claim_failure()

    def _cancel(self, task: InferenceTask) -> None:
        now = time.monotonic()
        # inferred: cancelling a finished task changes nothing and is not an error
        # (undocumented); the app's on_cancel accepts at once, so no CANCELLING (8) is shown.
        if self._status_at(task, now) not in TERMINAL_STATUSES:
            with self._lock:
                self._cancellations.setdefault(task.task_id, _Cancellation(now, time.time()))

    def _stream(self, task: InferenceTask) -> Reply:
        """NDJSON as the SDK reads it (`_iter_ndjson`): heartbeats, and a snapshot on every
        status change until a terminal one. The emulator's server sends whole bodies, so the
        lines arrive together when the stream ends."""
        lines: list[Any] = [_HEARTBEAT]  # inferred: one on connect, as keep-alive streams do
        opened = last_line = time.monotonic()
        last_status: TaskStatus | None = None
        while (now := time.monotonic()) - opened < _MAX_STREAM_SECONDS:
            status = self._status_at(task, now)
            if status != last_status:
                lines.append(self._task_dto(task, now, status))
                last_status, last_line = status, now
                if status in TERMINAL_STATUSES:
                    break
            elif now - last_line >= _HEARTBEAT_SECONDS:
                lines.append(_HEARTBEAT)
                last_line = now
            time.sleep(_STREAM_TICK)
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return Reply(
            200, body, headers={"Cache-Control": "no-cache"}, content_type="application/x-ndjson"
        )

    # -- task rendering ----------------------------------------------------------------------

    def _status_at(self, task: InferenceTask, now: float) -> TaskStatus:
        with self._lock:
            cancellation = self._cancellations.get(task.task_id)
        if cancellation is not None and cancellation.monotonic <= now:
            return TaskStatus.CANCELLED
        phase = task.phase(now)
        if phase == "pending":
            return TaskStatus.QUEUED
        if phase == "processing":
            uploading = now - task.created_monotonic >= task.latency * _UPLOADING_SHARE
            succeeding = task.failure_message is None
            return TaskStatus.UPLOADING if uploading and succeeding else TaskStatus.RUNNING
        if phase == "succeeded":
            return TaskStatus.COMPLETED
        return TaskStatus.CANCELLED if task.final_state == "cancelled" else TaskStatus.FAILED

    def _task_dto(
        self, task: InferenceTask, now: float, status: TaskStatus | None = None
    ) -> dict[str, Any]:
        """TaskDTO (SDK types.TaskDTO), with the fields a client reads."""
        status = self._status_at(task, now) if status is None else status
        run = task.details.request
        output: dict[str, Any] | None = None
        if status == TaskStatus.COMPLETED:
            # `image` as a URL string, as the SDK's File docstring says consumers see it.
            output = {
                "image": self.context.images.url(task.details.image),
                "output_meta": {
                    "inputs": [],
                    "outputs": [
                        {
                            "type": "image",
                            "count": run.count,  # billed for n, one image returned (app source)
                            "extra": {
                                "model": KLING_MODEL,
                                "mode": run.mode,
                                "resolution": run.resolution,
                            },
                        }
                    ],
                },
            }
        return {
            "id": task.task_id,
            "status": int(status),
            "app_id": APP_ID,
            "input": run.input,
            "output": output,
            "error": task.failure_message if status == TaskStatus.FAILED else None,
            "webhook": run.webhook,
            "session_id": None,
            "logs": [],
            "created_at": _timestamp(task.created_wall),
            "updated_at": _timestamp(self._updated_wall(task, now)),
        }

    def _updated_wall(self, task: InferenceTask, now: float) -> float:
        with self._lock:
            cancellation = self._cancellations.get(task.task_id)
        if cancellation is not None and cancellation.monotonic <= now:
            return cancellation.wall
        return task.created_wall + min(max(0.0, now - task.created_monotonic), task.latency)


def _task_route(path: str) -> tuple[str, str]:
    """(task id, action) for /tasks/{id} and /tasks/{id}/<action>; ("", "") otherwise."""
    if not path.startswith(TASKS_PREFIX):
        return "", ""
    task_id, _, action = path[len(TASKS_PREFIX) :].partition("/")
    return (task_id, action) if task_id and "/" not in action else ("", "")


def _json_body(request: ProviderRequest) -> Any:
    try:
        return json.loads(request.body)
    except ValueError:
        raise Problem(400, "invalid_request", "the request body must be JSON") from None


def _timestamp(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
