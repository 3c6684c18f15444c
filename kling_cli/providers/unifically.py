"""Unifically: the unified tasks API, `POST /v1/tasks` then `GET /v1/tasks/{task_id}`.

Sources: Unifically's Kling O1 Image page (https://unifically.com/models/kling-o1-image), its
Unified Tasks API (https://docs.unifically.com/api-reference/v1-tasks), get-task docs
(https://docs.unifically.com/image-models/gpt-image-1/get-task), callbacks docs
(https://docs.unifically.com/api-reference/callbacks), GitBook get-task
(https://unifically.gitbook.io/unifically-docs/veo-3/get-task) and storage docs
(https://unifically.gitbook.io/unifically-docs/storage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    text_field,
    unreadable_response,
    upload_failed,
)
from kling_cli.providers.catalog import UnificallyInfo

if TYPE_CHECKING:
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest

MODEL_ID = "kuaishou/kling-o1-image"

# Documented for the legacy status endpoint and, by every client seen, for /v1/tasks (get-task).
STATES = {
    "pending": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
}


class Unifically(UnificallyInfo, Provider):
    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        model_input: dict[str, Any] = {
            "prompt": self.wire_prompt(request.prompt),
            "aspect_ratio": request.aspect_ratio,
            "resolution": request.resolution,
        }
        if request.references:
            model_input["image_urls"] = list(request.references)
        body: dict[str, Any] = {"model": MODEL_ID, "input": model_input}
        if request.webhook:
            # Top level, outside `input` (docs.unifically.com/api-reference/callbacks).
            body["callback_url"] = request.webhook
        return Submission(
            request=HttpRequest(
                "POST", f"{endpoint.base_url}/v1/tasks", bearer(endpoint.api_key), body
            ),
            expected_images=1,
        )

    def upload(self, file: LocalFile, endpoint: Endpoint) -> Upload:
        """Method 1 (storage docs): a multipart `file`: raw bytes, a third smaller than base64. The
        answer's shape is the one five third-party clients read: `{success, file_url}`."""
        response = yield HttpRequest(
            "PUT",
            f"{endpoint.service_url('storage')}/upload",
            {"Authorization": f"Bearer {endpoint.api_key}"},
            files={"file": (file.name, file.content, file.content_type)},
        )
        parsed = response.json()
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        url = body.get("file_url")
        stored = response.status_code in (200, 201) and body.get("success") is True
        if stored and isinstance(url, str) and url:
            return url
        # `message` on failure (per third-party clients); the API's `{code, data: {message}}`
        # envelope, just in case.
        data = body.get("data")
        nested = data.get("message") if isinstance(data, dict) else None
        raise upload_failed(self, response, str(body.get("message") or nested or ""))

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        data = self._data(response)
        # Some clients fall back to `data.id` (undocumented).
        task_id = data.get("task_id") or data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise unreadable_response(self.name, response)
        return self.handle(task_id, submission), self._status(data, response)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        return HttpRequest("GET", f"{endpoint.base_url}/v1/tasks/{task.task_id}", headers)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        return self._status(self._data(response), response)

    def webhook_task_id(self, body: Any) -> str | None:
        return text_field(body, "task_id") if text_field(body, "status") else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        """The callback (docs.unifically.com/api-reference/callbacks) puts the output in
        `data.*` where a poll has `data.output.*`, and a failure's reason in a flat
        `error_message`: rebuilt as the poll's answer."""
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        output = data.get("output") if isinstance(data.get("output"), dict) else data
        error = {"message": body["error_message"]} if body.get("error_message") else {}
        polled = {"task_id": task.task_id, "status": body["status"], "output": output}
        return self.parse_poll(as_answer({"code": 200, "data": {**polled, "error": error}}), task)

    def _data(self, response: HttpResponse) -> dict[str, Any]:
        """The `data` object of the `{code, data}` envelope. The envelope `code` is not the
        task's state (it reads 400 while processing, GitBook): only the HTTP status decides
        whether the request itself failed."""
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if response.status_code >= 400:
            message = ""
            if isinstance(data, dict):
                message = str(data.get("message") or "")
                if data.get("code"):
                    message = f"{message} ({data['code']})"
            hint = self.key_hint
            raise error_for_http_status(response, message, provider_name=self.name, key_hint=hint)
        if not isinstance(data, dict):
            raise unreadable_response(self.name, response)
        return data

    def _status(self, data: dict[str, Any], response: HttpResponse) -> TaskStatus:
        raw = str(data.get("status") or "pending")
        state = STATES.get(raw.lower(), TaskState.RUNNING)
        if state is TaskState.FAILED:
            return TaskStatus(state, raw, error=_error_message(data))
        if state is TaskState.SUCCEEDED:
            outputs = _output_urls(data.get("output"))
            if not outputs:
                raise unreadable_response(self.name, response)
            return TaskStatus(state, raw, tuple(OutputImage(url) for url in outputs))
        return TaskStatus(state, raw)


def _output_urls(output: Any) -> list[str]:
    """`output.image_url`, or `output.image_urls[]` on multi-output models (callbacks docs)."""
    if not isinstance(output, dict):
        return []
    urls = output.get("image_urls")
    found = [u for u in urls if isinstance(u, str) and u] if isinstance(urls, list) else []
    single = output.get("image_url")
    if isinstance(single, str) and single and single not in found:
        found.insert(0, single)
    return found


def _error_message(data: dict[str, Any]) -> str:
    """`data.error.message`, (GitBook get-task), or `data.message` as one client reads it."""
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        code = error.get("code")
        return f"{error['message']} ({code})" if code else str(error["message"])
    return str(data.get("message") or "the task failed without a reason")
