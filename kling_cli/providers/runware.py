"""Runware: one endpoint, a JSON array of tasks, and a task UUID chosen by the client.

Sources: Runware's Kling IMAGE O1 page (https://runware.ai/docs/models/klingai-image-o1), its
task polling docs (https://runware.ai/docs/platform/task-polling), errors docs
(https://runware.ai/docs/platform/errors) and the official SDK (PyPI runware-sdk 1.8.0,
github.com/Runware/runware-python).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kling_cli.errors import AuthError, KlingError, OutOfCreditsError, RateLimitedError
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
from kling_cli.providers.catalog import RunwareInfo

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MODEL_ID = "klingai:kling-image@o1"
INFERENCE = "imageInference"
# A sync answer waits for every image; Kling Image O1 takes 5-15 s an image
# (https://apiin.one/models/kling-image-o1).
SYNC_READ_TIMEOUT = 300.0
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPG", "webp": "WEBP"}
# Error code families of a task that ran and failed, as the official SDK classifies them
# (safety, provider, timeout: runware-sdk `derive_code`).
TASK_FAILURE_CODES = (
    "contentpolicy",
    "nsfw",
    "safety",
    "provider",
    "timeout",
    "inferenceerror",
    "taskfailed",
)


class Runware(RunwareInfo, Provider):
    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        task_uuid = str(uuid.uuid4())
        task: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": task_uuid,
            "model": MODEL_ID,
            "positivePrompt": self.wire_prompt(request.prompt),
            "numberResults": request.num_images,
            "outputType": "URL",
            # The API's default is JPG; kling-cli's default is lossless PNG.
            "outputFormat": OUTPUT_FORMATS[request.output_format or "png"],
            "includeCost": True,
            # `sync` (the API's default) answers with the results; see build_push_submit.
            "deliveryMethod": "async",
        }
        dimensions = request.dimensions
        if dimensions:
            task["width"], task["height"] = dimensions
        else:
            # `auto`: omit width/height so the output follows the first reference, and pick the
            # tier with `resolution`. The doc spells it `1k`/`2k` while the official SDK types
            # it `1K`/`2K` (runware-sdk `KlingaiImageO1Params`); we send the documented spelling.
            task["resolution"] = request.resolution
        if request.references:
            task["inputs"] = {"referenceImages": list(request.references)}
        task.update(_delivery_fields(request))
        return Submission(
            request=HttpRequest("POST", endpoint.base_url, bearer(endpoint.api_key), [task]),
            client_task_id=task_uuid,
            expected_images=request.num_images,
        )

    def build_push_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        """`deliveryMethod: sync`: one request, answered with the images (model page). Safe to
        wait on because the taskUUID is ours and recorded first: if the answer is lost, the
        task is looked up with getResponse instead of being sent again."""
        submission = self.build_submit(request, endpoint)
        [task] = submission.request.json
        synchronous = replace(
            submission.request,
            json=[{**task, "deliveryMethod": "sync"}],
            read_timeout=SYNC_READ_TIMEOUT,
        )
        return replace(submission, request=synchronous)

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        assert submission.client_task_id is not None
        task = self.handle(submission.client_task_id, submission)
        return task, self.parse_poll(response, task)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        return HttpRequest(
            "POST",
            endpoint.base_url,
            bearer(endpoint.api_key),
            [{"taskType": "getResponse", "taskUUID": task.task_id}],
        )

    def webhook_task_id(self, body: Any) -> str | None:
        # "the flat task object itself ... with no data wrapper", one per finished image
        # (runware.ai/docs/platform/webhooks).
        if not isinstance(body, dict) or body.get("taskType", INFERENCE) != INFERENCE:
            return None
        return text_field(body, "taskUUID")

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        return self.parse_poll(as_answer({"data": [body]}), task)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        body = response.json()
        envelope_errors = _envelope_errors(body)
        if envelope_errors:
            first = envelope_errors[0]
            error = self._error_for_code(first, response)
            if error is not None:
                raise error
            return TaskStatus(TaskState.FAILED, "error", error=_describe(first))
        if response.status_code >= 400 or not isinstance(body, dict):
            if response.status_code >= 400:
                raise error_for_http_status(
                    response, "", provider_name=self.name, key_hint=self.key_hint
                )
            raise unreadable_response(self.name, response)
        return _status_from_items(body.get("data"), task)

    def _error_for_code(self, error: dict[str, Any], response: HttpResponse) -> KlingError | None:
        """Errors about the account rather than the task, by the code families the official
        SDK uses (runware-sdk `derive_code`)."""
        code = str(error.get("code", ""))
        message = f"{self.name}: {_describe(error)}"
        lowered = code.lower()
        if "apikey" in lowered or response.status_code == 401:
            return AuthError(message, hint=self.key_hint)
        if any(word in lowered for word in ("credit", "quota", "balance", "paymentrequired")):
            return OutOfCreditsError(message)
        if response.status_code == 402:
            return OutOfCreditsError(message)
        if any(word in lowered for word in TASK_FAILURE_CODES) and "notfound" not in lowered:
            # The task ran and failed (a sync answer says so with HTTP 400): not a bad request.
            return None
        if "ratelimit" in lowered or response.status_code == 429:
            return RateLimitedError(message, retry_after=response.retry_after)
        if response.status_code >= 400:
            return error_for_http_status(
                response, _describe(error), provider_name=self.name, key_hint=self.key_hint
            )
        return None


def _envelope_errors(body: Any) -> list[dict[str, Any]]:
    """`errors[]`, or the singular `error` the SDK also accepts (runware-sdk `parse_api_error`)."""
    if not isinstance(body, dict):
        return []
    errors = body.get("errors", body.get("error"))
    if isinstance(errors, dict):
        errors = [errors]
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "unknown error")
    code = error.get("code")
    return f"{message} ({code})" if code else message


def _status_from_items(items: Any, task: TaskHandle) -> TaskStatus:
    """getResponse returns everything so far each time (cumulative), one item per image:
    dedupe by imageUUID. An item is done when it has `status: success` or an output URL;
    `processing`/`pending` or progress-only items are still running (task polling docs)."""
    if not isinstance(items, list):
        items = []
    outputs: dict[str, OutputImage] = {}
    errors: list[str] = []
    running = False
    cost = 0.0
    has_cost = False
    for item in items:
        if not isinstance(item, dict) or item.get("taskUUID", task.task_id) != task.task_id:
            continue
        url = item.get("imageURL")
        if item.get("status") == "error":
            error = item.get("error")
            errors.append(_describe(error) if isinstance(error, dict) else _describe(item))
        elif isinstance(url, str) and url:
            key = str(item.get("imageUUID") or item.get("resultIndex") or url)
            seed = item.get("seed")
            outputs[key] = OutputImage(url=url, seed=seed if isinstance(seed, int) else None)
            if isinstance(item.get("cost"), int | float):
                cost += float(item["cost"])
                has_cost = True
        elif item.get("taskType") == "imageInference":
            running = True
    total_cost = round(cost, 6) if has_cost else None
    found = tuple(outputs.values())
    expected = task.expected_images or 1
    if not errors and found and len(found) < expected:
        running = True
    if running:
        return TaskStatus(TaskState.RUNNING, "processing", outputs=found, cost=total_cost)
    if found:
        # Partial failure keeps the images that were made (the SDK raises instead).
        error = "; ".join(errors) or None
        return TaskStatus(TaskState.SUCCEEDED, "success", found, error=error, cost=total_cost)
    if errors:
        return TaskStatus(TaskState.FAILED, "error", error="; ".join(errors), cost=total_cost)
    # An empty `data` is the async acknowledgement, or a task not yet picked up.
    return TaskStatus(TaskState.PENDING, "submitted")


def _delivery_fields(request: GenerationRequest) -> dict[str, Any]:
    """The task fields of the delivery options given (the model page's parameter list; webhooks:
    runware.ai/docs/platform/webhooks)."""
    fields: dict[str, Any] = {}
    if request.webhook:
        fields["webhookURL"] = request.webhook
    if request.quality is not None:
        fields["outputQuality"] = request.quality
    if request.upload_to:
        fields["uploadEndpoint"] = request.upload_to
    if request.url_ttl is not None:
        fields["ttl"] = request.url_ttl
    if request.safety:
        fields["safety"] = {"checkContent": True, "mode": request.safety}
    return fields
