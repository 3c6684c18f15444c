"""fal.ai: the queue protocol for `fal-ai/kling-image/o1`. Submit, then follow the
`status_url` and `response_url` the submit answer gives.

Sources: fal's model API page (https://fal.ai/models/fal-ai/kling-image/o1/api) and its schema in
@fal-ai/client 1.10.1 (`src/types/endpoints.d.ts`), fal's queue docs (docs.fal.ai, "Queue")
and the official client (PyPI fal-client 1.0.3, `client.py`, `auth.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kling_cli.delivery import with_webhook_query
from kling_cli.errors import InvalidRequestError, ProviderRequestError, UnreadableResponseError
from kling_cli.limits import IMAGE_TOKEN
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
    error_for_http_status,
    put_to_signed_url,
    text_field,
    unreadable_response,
    upload_failed,
)
from kling_cli.providers.catalog import FalInfo

if TYPE_CHECKING:
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest

MODEL_PATH = "/fal-ai/kling-image/o1"
RESOLUTIONS = {"1k": "1K", "2k": "2K"}  # upper-case K on fal (model page)

# The three states the official client knows (fal-client). COMPLETED covers failures too.
STATES = {
    "IN_QUEUE": TaskState.PENDING,
    "IN_PROGRESS": TaskState.RUNNING,
    "COMPLETED": TaskState.SUCCEEDED,
}


def fal_prompt(prompt: str) -> str:
    """`@image_N` becomes fal's 1-indexed `@ImageN` (model page). fal also takes a bare `@Image`
    when there is one image; `@Image1` is documented as well, so one form serves every count."""
    return IMAGE_TOKEN.sub(lambda match: f"@Image{int(match.group(1))}", prompt)


def error_message(body: Any) -> str:
    """fal's `detail` (a list of `{loc, msg}` for validation errors, or a string for
    infrastructure errors, fal's error docs), or a plain `message`/`error`."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
            msg = str(item.get("msg") or "invalid")
            parts.append(f"{where}: {msg}" if where else msg)
        return "; ".join(parts)
    for key in ("detail", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return str(value["message"])
    return ""


class Fal(FalInfo, Provider):
    def wire_prompt(self, prompt: str) -> str:
        return fal_prompt(prompt)

    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)
        if len(request.references) < self.capabilities.min_references:
            raise InvalidRequestError(
                f"{self.name}'s Kling O1 endpoint edits reference images and needs at least one "
                "--ref (image_urls is required); for text-only images pick another provider "
                "(see `kling providers`)."
            )

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        body = {
            "prompt": self.wire_prompt(request.prompt),
            "image_urls": list(request.references),
            "num_images": request.num_images,
            "resolution": RESOLUTIONS[request.resolution],
            "aspect_ratio": request.aspect_ratio,
            # fal's default is png as well; sent so the file type never depends on a default.
            "output_format": request.output_format or "png",
        }
        headers = {**self._auth(endpoint), "Content-Type": "application/json"}
        return Submission(
            request=HttpRequest(
                "POST",
                # A query parameter of the submit, not a body field (fal docs, "Webhooks").
                with_webhook_query(
                    f"{endpoint.base_url}{MODEL_PATH}", "fal_webhook", request.webhook
                ),
                headers,
                body,
            ),
            expected_images=request.num_images,
        )

    def upload(self, file: LocalFile, endpoint: Endpoint) -> Upload:
        """The SDK's storage upload in its GCS form (fal-client): initiate with the key, then `PUT`
        the bytes to the signed `upload_url` without credentials; `file_url` is the input.
        Chosen over the SDK's first choice (CDN v3) because that one sends a token to the host
        its token answer names, and kling-cli sends credentials only to configured hosts.
        Inferred: both lead to the same public fal.media URLs the model can read."""
        initiate = yield HttpRequest(
            "POST",
            f"{endpoint.service_url('rest')}/storage/upload/initiate?storage_type=gcs",
            {**self._auth(endpoint), "Content-Type": "application/json"},
            {"file_name": file.name, "content_type": file.content_type},
        )
        body = initiate.json()
        upload_url = body.get("upload_url") if isinstance(body, dict) else None
        file_url = body.get("file_url") if isinstance(body, dict) else None
        if not 200 <= initiate.status_code < 300 or not isinstance(file_url, str) or not file_url:
            raise upload_failed(self, initiate, error_message(body))
        yield from put_to_signed_url(self, upload_url, file)
        return file_url

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        body = self._body(response)
        request_id, status_url, response_url = (
            body.get(name) for name in ("request_id", "status_url", "response_url")
        )
        if not (
            isinstance(request_id, str)
            and isinstance(status_url, str)
            and isinstance(response_url, str)
            and request_id
            and status_url
            and response_url
        ):
            raise unreadable_response(self.name, response)
        # Status and result live under the app (`fal-ai/kling-image`), not the model path, so
        # they are kept as given rather than built (queue docs).
        task = self.handle(request_id, submission, status_url=status_url, response_url=response_url)
        raw = body.get("status")
        if isinstance(raw, str) and raw in STATES:
            return task, self._status(body, response)
        return task, TaskStatus(TaskState.PENDING, "IN_QUEUE")

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        return HttpRequest("GET", self._followup_url(task, "status_url"), self._auth(endpoint))

    def webhook_task_id(self, body: Any) -> str | None:
        # fal docs, "Webhooks": `status` is OK or ERROR, the result in `payload`.
        has_status = isinstance(body, dict) and body.get("status") in ("OK", "ERROR")
        return text_field(body, "request_id") if has_status else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        payload = body.get("payload")
        if body.get("status") == "OK":
            if isinstance(payload, dict):
                return self.parse_result(as_answer(payload), task)
            # "payload_error": the result could not be put in the body (fal docs, Webhooks):
            # the task succeeded, and the queue's result still has the images.
            raise UnreadableResponseError(
                f"{self.name}'s webhook body reports success without the result."
            )
        detail = error_message(payload) if isinstance(payload, dict) else ""
        reason = str(body.get("error") or body.get("payload_error") or detail or "failed")
        return TaskStatus(TaskState.FAILED, str(body.get("status")), error=reason)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        return self._status(self._body(response), response)

    def build_result(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest | None:
        return HttpRequest("GET", self._followup_url(task, "response_url"), self._auth(endpoint))

    def parse_result(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        body = response.json()
        if response.status_code in (400, 422) and isinstance(body, dict):
            # "If the model returned an error, this operation returns the same error" (queue docs):
            # the request was accepted, so it is the task that failed.
            message = error_message(body) or f"HTTP {response.status_code}"
            return TaskStatus(TaskState.FAILED, "COMPLETED", error=message)
        body = self._body(response)
        images = body.get("images")
        urls = [
            image["url"]
            for image in (images if isinstance(images, list) else [])
            if isinstance(image, dict) and isinstance(image.get("url"), str) and image["url"]
        ]
        if not urls:
            raise unreadable_response(self.name, response)
        return TaskStatus(TaskState.SUCCEEDED, "COMPLETED", tuple(OutputImage(u) for u in urls))

    def _status(self, body: dict[str, Any], response: HttpResponse) -> TaskStatus:
        raw = str(body.get("status") or "")
        state = STATES.get(raw)
        if state is None:
            # Only the three states are documented; anything else is taken as the end (inferred).
            reason = error_message(body) or f"{self.name} reported the unknown status {raw!r}"
            return TaskStatus(TaskState.FAILED, raw or "unknown", error=reason)
        if state is TaskState.SUCCEEDED and body.get("error"):
            # COMPLETED with `error` is a failure (fal-client `_parse_status`).
            error = body["error"]
            kind = body.get("error_type")
            message = error if isinstance(error, str) else error_message({"error": error})
            reason = f"{message} ({kind})" if kind else message
            return TaskStatus(TaskState.FAILED, raw, error=reason or "the task failed")
        # A success here has no outputs: the engine fetches them from response_url.
        return TaskStatus(state, raw)

    def _body(self, response: HttpResponse) -> dict[str, Any]:
        body = response.json()
        if response.status_code >= 400:
            raise error_for_http_status(
                response,
                error_message(body),
                provider_name=self.name,
                key_hint=self.key_hint,
            )
        if not isinstance(body, dict):
            raise unreadable_response(self.name, response)
        return body

    def _followup_url(self, task: TaskHandle, name: str) -> str:
        url = task.extra.get(name)
        if not url:
            raise ProviderRequestError(
                f"{self.name} task {task.task_id} cannot be looked up: fal gives its status and "
                "result addresses only in the answer to the submit, and they were not kept.",
                hint="Look for the task in the fal.ai dashboard.",
            )
        return url

    @staticmethod
    def _auth(endpoint: Endpoint) -> dict[str, str]:
        # `Key`, not `Bearer` (fal-client `auth.py`).
        return {"Authorization": f"Key {endpoint.api_key}"}
