"""inference.sh: run the app `klingai/image-o1` with `POST /apps/run`, then `GET /tasks/{id}`.

Sources: inference.sh's app page (https://inference.sh/apps/klingai/image-o1), the app's source
(github.com/inference-sh/grid, `api/klingai/video/image-o1/`), the official SDK (PyPI
inferencesh 0.36.0, github.com/inference-sh/sdk; 0.4.29 for the legacy shapes) and the REST
docs (https://inference.sh/docs/api/rest/tasks, https://inference.sh/docs/api/running-apps).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kling_cli.errors import OutOfCreditsError, ProviderRequestError
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
    Upload,
    as_answer,
    bearer,
    error_for_http_status,
    put_to_signed_url,
    text_field,
    unreadable_response,
    upload_failed,
)
from kling_cli.providers.catalog import InferenceShInfo

if TYPE_CHECKING:
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest

APP = "klingai/image-o1"

# The current status numbering, a status's number being its index (SDK 0.36 types.py). The
# legacy numbering (9 COMPLETED, 10 FAILED) collides with it; the current SDK and docs use
# this one. String statuses are these names, in any case (the SDK's `parse_status`).
STATUS_NAMES = (
    "unknown",
    "received",
    "queued",
    "dispatched",
    "preparing",
    "serving",
    "setting_up",
    "running",
    "cancelling",
    "uploading",
    "completed",
    "failed",
    "cancelled",
    "rejected",
)
LAST_QUEUED = STATUS_NAMES.index("dispatched")  # 0-3 have not started (inferred from the names)
COMPLETED = STATUS_NAMES.index("completed")
FAILED = STATUS_NAMES.index("failed")
CANCELLED = STATUS_NAMES.index("cancelled")
# "run admission refused (no balance, no payment method)": written already ended (SDK types.py).
REJECTED = STATUS_NAMES.index("rejected")


# The SDK gives the stream 60 s before it reconnects or falls back to GET (SDK client.py).
STREAM_READ_TIMEOUT = 60.0


class InferenceSh(InferenceShInfo, Provider):
    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        # The running-apps docs' run example. Prompt tokens stay `@image_N`:
        # inference.sh documents no other form, and with one reference there is only @image_1.
        app_input: dict[str, Any] = {"prompt": self.wire_prompt(request.prompt)}
        if request.references:
            app_input["image"] = request.references[0]
        if request.negative_prompt:
            app_input["negative_prompt"] = request.negative_prompt
        # The app's defaults (16:9, 1k) are not kling-cli's: always say which.
        app_input["aspect_ratio"] = request.aspect_ratio
        app_input["resolution"] = request.resolution
        app_input["n"] = 1
        body: dict[str, Any] = {"app": APP, "input": app_input}
        if request.webhook:
            body["webhook"] = request.webhook
        return Submission(
            request=HttpRequest(
                "POST", f"{endpoint.base_url}/apps/run", bearer(endpoint.api_key), body
            ),
            expected_images=1,
        )

    def upload(self, file: LocalFile, endpoint: Endpoint) -> Upload:
        """What the SDK sends: `POST /files` registers the file and answers a FileDTO
        with a signed `upload_url`; the bytes go there without the Bearer key; the DTO's
        `uri` (`inf://files/...`) is then the app's `image`."""
        entry = {
            "uri": "",
            "filename": file.name,
            "content_type": file.content_type,
            "path": None,
            "size": len(file.content),
            "public": None,
        }
        registered = yield HttpRequest(
            "POST", f"{endpoint.base_url}/files", bearer(endpoint.api_key), {"files": [entry]}
        )
        files = self._data(registered)
        dto = files[0] if isinstance(files, list) and files else None
        upload_url = dto.get("upload_url") if isinstance(dto, dict) else None
        uri = dto.get("uri") if isinstance(dto, dict) else None
        if not isinstance(uri, str) or not uri:
            raise upload_failed(self, registered)
        yield from put_to_signed_url(self, upload_url, file)
        return uri

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        task_data = self._task_data(response)
        task_id = task_data.get("id")  # `data.id` (SDK `run`)
        if not isinstance(task_id, str) or not task_id:
            raise unreadable_response(self.name, response)
        task = self.handle(task_id, submission)
        return task, self._status(task_data, task)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        return HttpRequest(
            "GET", f"{endpoint.base_url}/tasks/{quote(task.task_id, safe='')}", headers
        )

    def build_stream(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        """`GET /tasks/{id}/stream`, NDJSON, with the headers the SDK sends (`_stream_updates`)."""
        headers = {
            "Authorization": f"Bearer {endpoint.api_key}",
            "Accept": "application/x-ndjson",
            "Cache-Control": "no-cache",
            "Accept-Encoding": "identity",
        }
        url = f"{endpoint.base_url}/tasks/{quote(task.task_id, safe='')}/stream"
        return HttpRequest("GET", url, headers, read_timeout=STREAM_READ_TIMEOUT)

    def parse_stream_line(self, line: str, task: TaskHandle) -> TaskStatus | None:
        """Heartbeats and LLM deltas say nothing; `{"data": <task>, "fields": [...]}` is a
        partial update, anything else a whole task snapshot (SDK `_iter_ndjson`)."""
        try:
            event = json.loads(line)
        except ValueError:
            return None
        if not isinstance(event, dict) or event.get("type") == "heartbeat":
            return None
        if event.get("event") == "delta":
            return None
        data = event.get("data")
        snapshot = data if isinstance(data, dict) else event
        code = _status_code(snapshot.get("status"))
        if code is None:
            return None
        name = STATUS_NAMES[code]
        if code in (COMPLETED, FAILED, CANCELLED, REJECTED):
            return TaskStatus(TaskState.SUCCEEDED if code == COMPLETED else TaskState.FAILED, name)
        return TaskStatus(TaskState.PENDING if code <= LAST_QUEUED else TaskState.RUNNING, name)

    def webhook_task_id(self, body: Any) -> str | None:
        dto = _webhook_dto(body)
        return text_field(dto, "id") if dto is not None and "status" in dto else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        """The TaskDTO with no envelope (inference.sh app page, "webhook"). Its example shows
        the old numbering's COMPLETED (9, today UPLOADING): a webhook only comes at the end,
        so a 9 that carries the output is read as completed."""
        dto = dict(_webhook_dto(body) or {})
        output = dto.get("output")
        if dto.get("status") == 9 and isinstance(output, dict) and output.get("image"):
            dto["status"] = STATUS_NAMES.index("completed")
        return self.parse_poll(as_answer({"data": dto}), task)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        return self._status(self._task_data(response), task)

    def _task_data(self, response: HttpResponse) -> dict[str, Any]:
        """The TaskDTO from the `{"data": ..., "messages": [...]}` envelope (SDK `_request`)."""
        task_data = self._data(response)
        if not isinstance(task_data, dict):
            raise unreadable_response(self.name, response)
        return task_data

    def _data(self, response: HttpResponse) -> Any:
        body = response.json()
        if response.status_code >= 400:
            hint = self.key_hint
            raise error_for_http_status(
                response, _problem_message(body), provider_name=self.name, key_hint=hint
            )
        if isinstance(body, dict) and body.get("success") is False:  # legacy envelope (SDK 0.4.29)
            raise ProviderRequestError(f"{self.name}: {_problem_message(body) or 'request failed'}")
        return body.get("data") if isinstance(body, dict) else None

    def _status(self, task_data: dict[str, Any], task: TaskHandle) -> TaskStatus:
        raw = task_data.get("status")
        code = _status_code(raw)
        name = STATUS_NAMES[code] if code is not None else str(raw or "unknown")
        error = _task_error(task_data)
        if code == REJECTED:
            raise OutOfCreditsError(
                f"{self.name} refused to run task {task.task_id} (no balance or payment "
                f"method){': ' + error if error else ''}."
            )
        if code == COMPLETED:
            # Success needs the image too, not the number alone (inferred: the numbering changed).
            url = _image_url(task_data.get("output"))
            if url:
                return TaskStatus(TaskState.SUCCEEDED, name, (OutputImage(url),))
            if error:
                return TaskStatus(TaskState.FAILED, name, error=error)
            raise ProviderRequestError(
                f"{self.name} reports task {task.task_id} as completed, but its answer has no "
                "output image kling-cli can download; the job may be finished.",
                hint=f"Look again with `kling status {task.task_id} --provider {self.id}`.",
            )
        if code in (FAILED, CANCELLED):
            return TaskStatus(TaskState.FAILED, name, error=error or f"the task was {name}")
        if code is not None and code <= LAST_QUEUED:
            return TaskStatus(TaskState.PENDING, name)
        # 4-9, or a status newer than this table: not finished.
        return TaskStatus(TaskState.RUNNING, name)


def _status_code(raw: Any) -> int | None:
    """The status number, from a number or a name in any case (`parse_status`); None if unknown."""
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in STATUS_NAMES:
            return STATUS_NAMES.index(word)
        raw = int(word) if word.isdigit() else None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(STATUS_NAMES):
        return raw
    return None


def _image_url(output: Any) -> str | None:
    """`output.image`: a URL string, or a `{uri}`/`{url}` file object as the older REST docs
    show it. Only http(s) URLs can be downloaded (an `inf://` URI cannot)."""
    image = output.get("image") if isinstance(output, dict) else None
    if isinstance(image, dict):
        image = image.get("url") or image.get("uri")
    if isinstance(image, str) and image.startswith(("https://", "http://")):
        return image
    return None


def _task_error(task_data: dict[str, Any]) -> str | None:
    """TaskDTO `error` is a string, empty when there is none (SDK types.TaskDTO, app page)."""
    error = task_data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error) if error else None


def _problem_message(body: Any) -> str:
    """RFC 9457 problem+json: `detail`, else `title`, else `message` (the SDK's order, `_request`);
    else the legacy `error.message` (SDK 0.4.29)."""
    if not isinstance(body, dict):
        return ""
    for name in ("detail", "title", "message"):
        if isinstance(body.get(name), str) and body[name]:
            return str(body[name])
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return ""


def _webhook_dto(body: Any) -> dict[str, Any] | None:
    """The TaskDTO of a webhook body: the body itself, or its `data` if it is wrapped."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    return data if isinstance(data, dict) else body
