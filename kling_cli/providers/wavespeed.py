"""WaveSpeed: `POST /api/v3/kwaivgi/kling-image-o1`, then
`GET /api/v3/predictions/{id}/result`.

Sources: WaveSpeed's model page (https://wavespeed.ai/models/kwaivgi/kling-image-o1, and its
`llms.txt`), the get-result docs (https://wavespeed.ai/docs/get-result), the media-upload docs
(https://wavespeed.ai/docs-common-api/media-upload) and the official SDK (PyPI wavespeed 2.0.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kling_cli.delivery import with_webhook_query
from kling_cli.errors import ProviderRequestError
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
from kling_cli.providers.catalog import WaveSpeedInfo
from kling_cli.providers.kling import kling_prompt

if TYPE_CHECKING:
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest

MODEL_PATH = "/api/v3/kwaivgi/kling-image-o1"

# `created`/`processing`/`completed`/`failed` are documented; the official SDK's wait loop also
# ends on `cancelled`, `timeout` and `deleted` (SDK `_wait`).
STATES = {
    "created": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.FAILED,
    "timeout": TaskState.FAILED,
    "deleted": TaskState.FAILED,
}


class WaveSpeed(WaveSpeedInfo, Provider):
    def wire_prompt(self, prompt: str) -> str:
        return kling_prompt(prompt)

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        body: dict[str, Any] = {"prompt": self.wire_prompt(request.prompt)}
        if request.references:
            body["images"] = list(request.references)
        # Sent even at its default: WaveSpeed's default aspect ratio is 1:1, not auto (model page).
        body["aspect_ratio"] = request.aspect_ratio
        body["resolution"] = request.resolution
        body["num_images"] = request.num_images
        return Submission(
            request=HttpRequest(
                "POST",
                # The query form of wavespeed.ai/docs/how-to-use-webhooks; the submit-task page
                # also lists a body `webhook_url`. Only one is sent, so it is delivered once.
                with_webhook_query(f"{endpoint.base_url}{MODEL_PATH}", "webhook", request.webhook),
                bearer(endpoint.api_key),
                body,
            ),
            expected_images=request.num_images,
        )

    def upload(self, file: LocalFile, endpoint: Endpoint) -> Upload:
        """`POST /api/v3/media/upload/binary`, multipart `file`, the most widely documented of
        WaveSpeed's three upload pages (media-upload docs); `data.download_url` goes in `images`."""
        response = yield HttpRequest(
            "POST",
            f"{endpoint.base_url}/api/v3/media/upload/binary",
            {"Authorization": f"Bearer {endpoint.api_key}"},
            files={"file": (file.name, file.content, file.content_type)},
        )
        url = self._data(response).get("download_url")
        if not isinstance(url, str) or not url:
            raise upload_failed(self, response)
        return url

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        data = self._data(response)
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise unreadable_response(self.name, response)
        return self.handle(task_id, submission), self._status(data, response)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        # `/result` as in the model page, the SDK and the webhook's `urls.get`.
        url = f"{endpoint.base_url}/api/v3/predictions/{task.task_id}/result"
        return HttpRequest("GET", url, {"Authorization": f"Bearer {endpoint.api_key}"})

    def webhook_task_id(self, body: Any) -> str | None:
        # wavespeed.ai/docs/how-to-use-webhooks: the prediction itself, no envelope.
        is_prediction = isinstance(body, dict) and "status" in body and "outputs" in body
        return text_field(body, "id") if is_prediction else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        return self.parse_poll(as_answer({"code": 200, "message": "success", "data": body}), task)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        return self._status(self._data(response), response)

    def _data(self, response: HttpResponse) -> dict[str, Any]:
        """`data` of the `{code, message, data}` envelope. The exact error body is not
        documented; its `message` is shown when there is one."""
        body = response.json()
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        if response.status_code >= 400:
            raise error_for_http_status(
                response,
                message,
                provider_name=self.name,
                key_hint=f"{self.key_hint} WaveSpeed keys work only after the account's first "
                "top-up.",
            )
        data = body.get("data") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        if isinstance(code, int) and code != 200 and not isinstance(data, dict):
            raise ProviderRequestError(f"{self.name}: {message or 'request refused'} ({code}).")
        if not isinstance(data, dict):
            raise unreadable_response(self.name, response)
        return data

    def _status(self, data: dict[str, Any], response: HttpResponse) -> TaskStatus:
        raw = str(data.get("status") or "created")
        state = STATES.get(raw.lower(), TaskState.RUNNING)
        if state is TaskState.FAILED:
            reason = data.get("error") or f"the task ended as {raw}"
            return TaskStatus(state, raw, error=str(reason))
        if state is TaskState.SUCCEEDED:
            outputs = data.get("outputs")
            urls = (
                [u for u in outputs if isinstance(u, str) and u]
                if isinstance(outputs, list)
                else []
            )
            if not urls:
                raise unreadable_response(self.name, response)
            return TaskStatus(state, raw, tuple(OutputImage(url) for url in urls))
        return TaskStatus(state, raw)
