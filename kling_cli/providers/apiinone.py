"""API in One: `POST /images/generations` with a flat body, then `GET /tasks/{task_id}`.

Sources: API in One's Kling Image O1 API page (https://apiin.one/models/kling-image-o1) and its
API docs (https://apiin.one/docs). The poll answer
is not documented at all, so it is read defensively and an answer kling-cli cannot place
is reported with the way to look again, never guessed at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kling_cli.errors import InvalidRequestError, ProviderRequestError
from kling_cli.providers.base import (
    Endpoint,
    HttpRequest,
    HttpResponse,
    OutputImage,
    Provider,
    Submission,
    TaskHandle,
    TaskState,
    TaskStatus,
    as_answer,
    bearer,
    error_for_http_status,
    text_field,
    unreadable_response,
)
from kling_cli.providers.catalog import ApiInOneInfo

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MODEL_ID = "kling-image-o1"
# `type` (model page): "image-to-image" is the documented default and is left out; multi-shot
# "generates character-consistent images from a single reference image".
TASK_TYPES = {"multi-shot": "ai-multi-shot"}
MULTI_SHOT_REFERENCES = 1

# inferred: the documented words are `IN_PROGRESS` (submit) and `completed`/`failed`
# (poll text); the rest are the spellings of the upstream and of third-party clients.
SUCCESS_STATUSES = frozenset({"completed", "succeeded", "success"})
FAILURE_STATUSES = frozenset({"failed", "error", "cancelled", "canceled", "timeout"})
RUNNING_STATUSES = frozenset({"in_progress", "processing", "running"})

# Where the image URLs may be, most specific first (the field is undocumented). Only the
# first place that holds any is read, so an echo of the request's reference `images` is not
# taken for outputs when the outputs are somewhere else.
OUTPUT_PATHS: tuple[tuple[str, ...], ...] = (
    ("output", "image_urls"),
    ("output", "images"),
    ("output", "image_url"),
    ("output",),
    ("outputs",),
    ("images",),
    ("result",),
    ("results",),
)


class ApiInOne(ApiInOneInfo, Provider):
    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)
        # Multi-shot works "from a single reference image" (model page).
        if request.mode == "multi-shot" and len(request.references) != MULTI_SHOT_REFERENCES:
            raise InvalidRequestError(
                f"{self.name}'s multi-shot mode works from exactly one reference image; "
                f"{len(request.references)} given. Pass one --ref."
            )

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        # Field for field the documented example (model page); optional fields only when they
        # differ from the documented defaults, except the two the example always sends.
        # Prompt tokens stay `@image_N`: API in One documents no other form.
        body: dict[str, Any] = {"model": MODEL_ID, "prompt": self.wire_prompt(request.prompt)}
        if request.mode in TASK_TYPES:
            body["type"] = TASK_TYPES[request.mode]
        if request.references:
            body["images"] = list(request.references)
        body["aspect_ratio"] = request.aspect_ratio
        body["resolution"] = request.resolution
        if request.num_images > 1:
            body["num_images"] = request.num_images
        if request.webhook:
            # "configure callback_url on supported routes" (apiin.one/es/docs), in the flat
            # body like every other field; whether this route calls it is not documented.
            body["callback_url"] = request.webhook
        return Submission(
            request=HttpRequest(
                "POST", f"{endpoint.base_url}/images/generations", bearer(endpoint.api_key), body
            ),
            expected_images=request.num_images,
        )

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        body = self._successful_body(response)
        data = _task_data(body)
        # `data.task_id` (model page), or the API docs' older top-level `id`.
        task_id = data.get("task_id") or data.get("id") or body.get("task_id") or body.get("id")
        if isinstance(task_id, int):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id:
            raise unreadable_response(self.name, response)
        task = self.handle(task_id, submission)
        raw_status = _raw_status(data)
        state = _state_of(raw_status)
        if state is TaskState.FAILED:
            return task, TaskStatus(state, raw_status, error=_failure_reason(data))
        urls = _output_urls(data)
        if state is TaskState.SUCCEEDED and urls:
            return task, _succeeded(raw_status, urls, task)
        # The submit answer is documented as an acknowledgement (model page): a finished task's
        # images are read from the poll.
        state = TaskState.RUNNING if state is TaskState.RUNNING else TaskState.PENDING
        return task, TaskStatus(state, raw_status or "submitted")

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        return HttpRequest(
            "GET", f"{endpoint.base_url}/tasks/{quote(task.task_id, safe='')}", headers
        )

    def webhook_task_id(self, body: Any) -> str | None:
        # The callback's body is not documented (apiin.one/es/docs: "configure callback_url
        # on supported routes"); read as the poll's answer, which the emulator also sends.
        if not isinstance(body, dict):
            return None
        data = _task_data(body)
        found = text_field(data, "task_id") or text_field(data, "id") or text_field(body, "task_id")
        return found if _raw_status(data) else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        return self.parse_poll(as_answer(body), task)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        body = self._successful_body(response)
        data = _task_data(body)
        raw_status = _raw_status(data)
        state = _state_of(raw_status)
        urls = _output_urls(data)
        if state is TaskState.FAILED:
            return TaskStatus(state, raw_status, error=_failure_reason(data))
        if state is TaskState.SUCCEEDED or (state is None and urls):
            if not urls:
                raise self._cannot_place(task, f"reports the task as {raw_status!r} but", response)
            return _succeeded(raw_status or "completed", urls, task)
        if state is None:
            raise self._cannot_place(task, "sent a status answer with no status, and", response)
        return TaskStatus(state, raw_status)

    def _successful_body(self, response: HttpResponse) -> dict[str, Any]:
        body = response.json()
        if response.status_code >= 400:
            hint = self.key_hint
            raise error_for_http_status(
                response, _error_message(body), provider_name=self.name, key_hint=hint
            )
        if not isinstance(body, dict):
            raise unreadable_response(self.name, response)
        if isinstance(body.get("error"), dict) and "data" not in body:
            raise ProviderRequestError(f"{self.name}: {_error_message(body)}")
        return body

    def _cannot_place(
        self, task: TaskHandle, what: str, response: HttpResponse
    ) -> ProviderRequestError:
        """The poll answer's shape is undocumented: say so, and how to look again."""
        snippet = response.body[:300].decode("utf-8", "replace")
        return ProviderRequestError(
            f"{self.name} {what} kling-cli found no image URL in it (its status answer is not "
            f"documented). Task {task.task_id} may be finished: {snippet!r}",
            hint=f"Look again with `kling status {task.task_id} --provider {self.id}`.",
        )


def _task_data(body: dict[str, Any]) -> dict[str, Any]:
    """`data` of the `{code, message, data}` envelope (model page), or the body itself as the
    API docs show it."""
    data = body.get("data")
    return data if isinstance(data, dict) else body


def _raw_status(data: dict[str, Any]) -> str:
    status = data.get("status")
    return str(status).strip() if status is not None else ""


def _state_of(raw_status: str) -> TaskState | None:
    """Statuses compared case-insensitively (inferred: the docs mix cases); anything unknown is
    still pending. None:
    the answer has no status at all."""
    word = raw_status.lower()
    if word in SUCCESS_STATUSES:
        return TaskState.SUCCEEDED
    if word in FAILURE_STATUSES:
        return TaskState.FAILED
    if word in RUNNING_STATUSES:
        return TaskState.RUNNING
    return TaskState.PENDING if word else None


def _succeeded(status: str, urls: list[str], task: TaskHandle) -> TaskStatus:
    expected = task.expected_images or 1
    shortfall = None
    if len(urls) < expected:
        shortfall = f"{len(urls)} of the {expected} images asked for came back"
    return TaskStatus(
        TaskState.SUCCEEDED, status, tuple(OutputImage(url) for url in urls), error=shortfall
    )


def _output_urls(data: dict[str, Any]) -> list[str]:
    for path in OUTPUT_PATHS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        urls = _urls_in(value)
        if urls:
            return urls
    return []


def _urls_in(value: Any) -> list[str]:
    """URLs as strings or `{url}` objects, one or a list; only http(s), which the downloader
    can fetch."""
    items = value if isinstance(value, list) else [value]
    urls: list[str] = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url.startswith(("https://", "http://")) and url not in urls:
            urls.append(url)
    return urls


def _failure_reason(data: dict[str, Any]) -> str:
    """`data.error`, a string or an object with `message`, as third-party clients read it
    (undocumented); else `data.message`."""
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    reason = error or data.get("message")
    if reason:
        return str(reason)
    status = _raw_status(data)
    if status.lower() in ("failed", "error", ""):
        return "the task failed without a reason"
    # `cancelled`, `timeout`...: the word is all there is to tell the user.
    return f"the task ended as {status}"


def _error_message(body: Any) -> str:
    """The documented envelope `{"error": {"code", "message", "type"}}` (model page, API docs)."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        kind = error.get("type")
        return f"{message} ({kind})" if message and kind else message
    return str(body.get("message") or "")
