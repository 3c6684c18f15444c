"""Comfy Router: a managed proxy to Kling's official API. One synchronous
`POST /v2/models/kling/kling-image-o1` with Kling's own body returns Kling's task object once the
images exist; an `Idempotency-Key` makes resending it safe.

Sources: Comfy Router's kling-image-o1 page
(https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code), its API and
errors pages (github.com/Comfy-Org/docs, `development/comfy-router/api.mdx`, `errors.mdx`) and,
for Kling's body and task object, Kling's Omni-Image API reference
(https://kling.ai/document-api/api/image/o1/image-generation).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from kling_cli.errors import OutOfCreditsError, ProviderRequestError
from kling_cli.providers.base import (
    Endpoint,
    HttpRequest,
    HttpResponse,
    Provider,
    Submission,
    TaskHandle,
    TaskState,
    TaskStatus,
    error_for_http_status,
    unreadable_response,
)
from kling_cli.providers.catalog import ComfyInfo
from kling_cli.providers.fal import error_message
from kling_cli.providers.kling import (
    error_for_code,
    is_failure_answer,
    kling_body,
    kling_prompt,
    task_status,
)
from kling_cli.retry import RETRYABLE_STATUS

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MODEL_PATH = "/v2/models/kling/kling-image-o1"
# Router keeps an Idempotency-Key's state for 24 h (API page); after that, resending the request
# would start a new, paid generation. A margin keeps a late lookup on the safe side.
REPLAY_WINDOW_SECONDS = 23 * 3600
# The synchronous route holds the call up to 10 minutes (API page); a bit more to read the answer.
SYNC_READ_TIMEOUT = 660.0
# "$1.00 USD = 211 credits" (docs.comfy.org/development/comfy-router/pricing).
CREDITS_PER_USD = 211.0
# Router's error bucket for a prompt or image the provider refused (docs.comfy.org Router
# errors reference).
CONTENT_POLICY = "content_policy_violation"


class Comfy(ComfyInfo, Provider):
    def wire_prompt(self, prompt: str) -> str:
        return kling_prompt(prompt)

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        idempotency_key = str(uuid.uuid4())
        # model_name is left out: the path selects the model (model page).
        body = kling_body(request)
        return Submission(
            request=HttpRequest(
                "POST",
                f"{endpoint.base_url}{MODEL_PATH}",
                self._headers(endpoint, idempotency_key),
                body,
                read_timeout=SYNC_READ_TIMEOUT,
            ),
            client_task_id=idempotency_key,
            expected_images=request.num_images,
        )

    def handle(self, task_id: str, submission: Submission, **extra: str) -> TaskHandle:
        """The request body and when it was sent travel with the task: resending them with the
        same Idempotency-Key is how Router hands out a result again (API page)."""
        extra = {
            "request_body": json.dumps(submission.request.json, separators=(",", ":")),
            "submitted_at": str(int(time.time())),
            **extra,
        }
        return super().handle(task_id, submission, **extra)

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        assert submission.client_task_id is not None
        # The Idempotency-Key is the handle: Router documents no lookup by Kling's task_id.
        task = self.handle(submission.client_task_id, submission)
        return task, self._answer(response)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        body = task.extra.get("request_body")
        submitted_at = task.extra.get("submitted_at", "")
        if not body or not submitted_at.isdigit():
            raise ProviderRequestError(
                f"{self.name} finds a request again only when it is resent as it was, and "
                f"kling-cli did not keep request {task.task_id}.",
                hint="Look for it in the Comfy platform's usage page.",
            )
        if time.time() - int(submitted_at) > REPLAY_WINDOW_SECONDS:
            raise ProviderRequestError(
                f"{self.name} remembers request {task.task_id} for 24 hours only; resending it "
                "now could start a new, paid generation, so kling-cli will not.",
            )
        return HttpRequest(
            "POST",
            f"{endpoint.base_url}{MODEL_PATH}",
            self._headers(endpoint, task.task_id),
            json.loads(body),
            read_timeout=SYNC_READ_TIMEOUT,
        )

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        return self._answer(response)

    def is_retryable(self, response: HttpResponse) -> bool:
        # A 504 deadline_exceeded means "still running, resend later" (errors page): the poll
        # loop's own pace is the right wait, not a retry.
        if _still_running(response):
            return False
        return response.status_code in RETRYABLE_STATUS

    def _answer(self, response: HttpResponse) -> TaskStatus:
        body = response.json()
        if _still_running(response):
            return TaskStatus(
                TaskState.RUNNING,
                _error_type(response, body) or "running",
                poll_after=response.retry_after,
            )
        if response.status_code >= 400:
            message = error_message(body)
            kind = _error_type(response, body)
            if kind == CONTENT_POLICY:
                # Kling refused this job's prompt or images (its 1300/1301 or a risk-control
                # failure, Kling API reference): the generation failed, the request itself was fine.
                return TaskStatus(TaskState.FAILED, kind, error=message or "content policy")
            if response.status_code == 402 or kind == "insufficient_credits":
                raise OutOfCreditsError(
                    f"{self.name}: {message or 'insufficient credits'} "
                    f"(HTTP {response.status_code}).",
                    hint="Add credits in the Comfy platform's workspace billing.",
                )
            if kind and message:
                message = f"{message} [{kind}]"
            elif kind:
                message = kind
            raise error_for_http_status(
                response, message, provider_name=self.name, key_hint=self.key_hint
            )
        if is_failure_answer(response, body):
            raise error_for_code(response, body, provider_name=self.name, key_hint=self.key_hint)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise unreadable_response(self.name, response)
        status = task_status(data, provider_name=self.name, response=response)
        cost = _cost(response)
        return status if cost is None else dataclasses.replace(status, cost=cost)

    def _headers(self, endpoint: Endpoint, idempotency_key: str) -> dict[str, str]:
        return {
            "X-API-Key": endpoint.api_key,
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/json",
        }


def _error_type(response: HttpResponse, body: Any) -> str | None:
    """Router's error bucket: the `X-Comfy-Error-Type` header, or `error_type` in the body."""
    kind = response.headers.get("x-comfy-error-type")
    if not kind and isinstance(body, dict):
        kind = body.get("error_type")
    return str(kind) if kind else None


def _still_running(response: HttpResponse) -> bool:
    """409 concurrency_limit_exceeded: this Idempotency-Key's request is still running;
    504 deadline_exceeded: it outlived the 10-minute hold and can be collected later
    (errors page)."""
    kind = _error_type(response, response.json())
    if response.status_code == 409:
        return kind == "concurrency_limit_exceeded"
    return response.status_code == 504 and kind == "deadline_exceeded"


def _cost(response: HttpResponse) -> float | None:
    """`X-Comfy-Credits-Used`, when present, in dollars (docs.comfy.org Router pricing)."""
    raw = response.headers.get("x-comfy-credits-used")
    try:
        return round(float(raw) / CREDITS_PER_USD, 6) if raw else None
    except ValueError:
        return None
