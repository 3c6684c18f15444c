"""AIML API: one synchronous `POST /v1/images/generations` that answers with the images.

Sources: AIML's image-o1 API reference
(https://docs.aimlapi.com/api-references/image-models/kling-ai/image-o1).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kling_cli.errors import InvalidRequestError, OutOfCreditsError, ProviderRequestError
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
    bearer,
    error_for_http_status,
    unreadable_response,
)
from kling_cli.providers.catalog import AimlInfo
from kling_cli.providers.fal import error_message, fal_prompt

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MODEL_ID = "klingai/image-o1"
RESOLUTIONS = {"1k": "1K", "2k": "2K"}  # upper-case K (API reference)
# "$1 USD = 2,000,000 credits" (docs.aimlapi.com FAQ "How can I track my funds?").
CREDITS_PER_USD = 2_000_000
SCHEMA_ERROR = "Body validation error"


SYNC_READ_TIMEOUT = 600.0


class Aiml(AimlInfo, Provider):
    def wire_prompt(self, prompt: str) -> str:
        return fal_prompt(prompt)

    def check_request(self, request: GenerationRequest) -> None:
        if request.aspect_ratio == "auto":
            raise InvalidRequestError(
                f"{self.name} cannot follow the references' aspect ratio (it has no `auto`); "
                "choose one with -a, such as -a 1:1."
            )
        super().check_request(request)
        if len(request.references) < self.capabilities.min_references:
            raise InvalidRequestError(
                f"{self.name}'s Kling Image O1 model edits reference images and needs at least "
                "one --ref (image_urls is required); for text-only images pick another provider "
                "(see `kling providers`)."
            )

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        body: dict[str, Any] = {
            "model": MODEL_ID,
            # inferred: its schema is fal's, so fal's tokens (`@Image1`); its own page
            # names no token syntax.
            "prompt": self.wire_prompt(request.prompt),
            "image_urls": list(request.references),
            "aspect_ratio": request.aspect_ratio,
            "resolution": RESOLUTIONS[request.resolution],
            "output_format": request.output_format or "png",
            "num_images": request.num_images,
        }
        return Submission(
            request=HttpRequest(
                "POST",
                f"{endpoint.base_url}/v1/images/generations",
                bearer(endpoint.api_key),
                body,
                # Synchronous (API reference): the answer comes when the images exist.
                read_timeout=SYNC_READ_TIMEOUT,
            ),
            expected_images=request.num_images,
        )

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        body = response.json()
        if response.status_code in (400, 422) and not _is_schema_error(body):
            # How a failed generation is answered is not documented. kling-cli checks the
            # documented schema before sending, so a refusal that is not the schema's own
            # "Body validation error!" is taken as this job's prompt or images being refused:
            # the generation failed (inferred).
            task = self.handle(f"aiml-{uuid.uuid4()}", submission)
            reason = error_message(body) or f"HTTP {response.status_code}"
            return task, TaskStatus(TaskState.FAILED, "failed", error=reason)
        if response.status_code >= 400:
            raise self._error(response, body)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise unreadable_response(self.name, response)
        urls = [
            item["url"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"]
        ]
        if not urls:
            # Items may carry `b64_json` instead of `url` (API reference); kling-cli downloads by
            # URL only.
            raise unreadable_response(self.name, response)
        # No task id exists: the answer is the result. This local id names the job in output.
        task = self.handle(f"aiml-{uuid.uuid4()}", submission)
        status = TaskStatus(
            TaskState.SUCCEEDED,
            "completed",
            tuple(OutputImage(url) for url in urls),
            cost=_cost(body),
        )
        return task, status

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        raise ProviderRequestError(
            f"{self.name} answers with the images at once and keeps no task to look up "
            f"({task.task_id} is kling-cli's own name for the job)."
        )

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        raise ProviderRequestError(f"{self.name} has no task status to read.")

    def _error(self, response: HttpResponse, body: Any) -> Exception:
        message = error_message(body)
        # 403 is "authenticated but not allowed (e.g., no credits)" (docs.aimlapi.com 4xx page).
        if response.status_code == 403 and any(
            word in message.lower() for word in ("credit", "balance", "fund")
        ):
            return OutOfCreditsError(f"{self.name}: {message} (HTTP 403).")
        return error_for_http_status(
            response,
            message,
            provider_name=self.name,
            key_hint=self.key_hint,
        )


def _is_schema_error(body: Any) -> bool:
    """The documented 400 for a body that does not match the schema (docs.aimlapi.com
    "Errors with status code 4xx")."""
    return isinstance(body, dict) and str(body.get("message", "")).startswith(SCHEMA_ERROR)


def _cost(body: dict[str, Any]) -> float | None:
    meta = body.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    credits = usage.get("credits_used") if isinstance(usage, dict) else None
    if isinstance(credits, int | float) and not isinstance(credits, bool):
        return round(credits / CREDITS_PER_USD, 6)
    return None
