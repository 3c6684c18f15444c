"""Kling's official API (Kuaishou): `POST /v1/images/omni-image`, then
`GET /v1/images/omni-image/{task_id}`, signed with a JWT minted from the access key and secret key.

Sources: Kling's Omni-Image API reference
(https://kling.ai/document-api/api/image/o1/image-generation), its general docs as copied in
github.com/inference-sh/grid (`api/klingai/docs/00-general.md`), and CometAPI's relay docs
(https://apidoc.cometapi.com/api/image/kling/omni-image) for the relays that speak the same
protocol.
"""

from __future__ import annotations

import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from kling_cli.errors import (
    AuthError,
    KlingError,
    OutOfCreditsError,
    ProviderRequestError,
    RateLimitedError,
)
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
    as_answer,
    bearer,
    error_for_http_status,
    text_field,
    unreadable_response,
)
from kling_cli.providers.catalog import KlingInfo

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest

MODEL_NAME = "kling-image-o1"
OMNI_IMAGE_PATH = "/v1/images/omni-image"
TOKEN_LIFETIME_SECONDS = 1800  # "current time + 30 min" (general docs)
TOKEN_BACKDATE_SECONDS = 5  # "starts taking effect 5 s ago" (general docs), against clock skew

# The complete set of `task_status` values (general docs); note the spelling `succeed`.
STATES = {
    "submitted": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "succeed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
}

# Business codes (general docs): 429 is overloaded: 1100-1102 are the account and billing (fatal),
# 1302/1303 are rates (back off and retry).
AUTH_CODES = frozenset({1000, 1001, 1002, 1003, 1004})
CLOCK_CODES = frozenset({1003, 1004})
ACCOUNT_CODES = frozenset({1100, 1101, 1102})
PERMISSION_CODES = frozenset({1103, 1304})
RATE_CODES = frozenset({1302, 1303})
# Policy refusals are about this job's prompt or images, so they fail the task (exit 3).
POLICY_CODES = frozenset({1300, 1301})


def kling_prompt(prompt: str) -> str:
    """`@image_N` becomes Kling's `<<<image_N>>>` (API reference)."""
    return IMAGE_TOKEN.sub(lambda match: f"<<<image_{int(match.group(1))}>>>", prompt)


def kling_body(request: GenerationRequest) -> dict[str, Any]:
    """The omni-image body (API reference) shared by every Kling-native route."""
    body: dict[str, Any] = {"prompt": kling_prompt(request.prompt)}
    if request.references:
        body["image_list"] = [{"image": url} for url in request.references]
    body["resolution"] = request.resolution
    body["n"] = request.num_images
    body["aspect_ratio"] = request.aspect_ratio
    return body


def business_code(body: Any) -> int | None:
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


def describe(body: Any) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    code = business_code(body)
    text = str(message) if message else "no message"
    return f"{text} (code {code})" if code is not None else text


def is_failure_answer(response: HttpResponse, body: Any) -> bool:
    """Kling can refuse with HTTP 200, so the body's `code` (0 = success) decides as much as
    the HTTP status (inferred: inference-sh/grid `kling_helper.py` checks it)."""
    code = business_code(body)
    return response.status_code >= 400 or (code is not None and code != 0)


def error_for_code(
    response: HttpResponse, body: Any, *, provider_name: str, key_hint: str
) -> KlingError:
    """The error a refused request stands for, by business code first (general docs)."""
    code = business_code(body)
    text = f"{provider_name}: {describe(body)}"
    if code in AUTH_CODES:
        hint = key_hint
        if code in CLOCK_CODES:
            hint += " Kling also refuses tokens when this computer's clock is off; check it."
        return AuthError(text, hint=hint)
    if code in PERMISSION_CODES:
        return AuthError(
            text,
            hint="The account behind this key may not use this model, or only from "
            "whitelisted IP addresses; check the Kling developer console.",
        )
    if code in ACCOUNT_CODES:
        return OutOfCreditsError(
            f"{text}; retrying will not help until the account is paid or topped up."
        )
    if code in RATE_CODES:
        return RateLimitedError(text, retry_after=response.retry_after)
    if response.status_code >= 400:
        message = describe(body) if isinstance(body, dict) and body.get("message") else ""
        return error_for_http_status(
            response, message, provider_name=provider_name, key_hint=key_hint
        )
    return ProviderRequestError(f"{text}.")


def task_status(data: dict[str, Any], *, provider_name: str, response: HttpResponse) -> TaskStatus:
    """A Kling task object (`data`, API reference) as a neutral status."""
    raw = str(data.get("task_status") or "submitted")
    # A state this adapter does not know is taken as still running: the wait ends at --timeout.
    state = STATES.get(raw.lower(), TaskState.RUNNING)
    if state is TaskState.FAILED:
        reason = data.get("task_status_msg") or "the task failed without a reason"
        return TaskStatus(state, raw, error=str(reason))
    if state is TaskState.SUCCEEDED:
        outputs = _image_urls(data.get("task_result"))
        if not outputs:
            raise unreadable_response(provider_name, response)
        return TaskStatus(state, raw, tuple(OutputImage(url) for url in outputs))
    return TaskStatus(state, raw)


def _image_urls(result: Any) -> list[str]:
    """`task_result.images[].url`, in `index` order (API reference)."""
    images = result.get("images") if isinstance(result, dict) else None
    if not isinstance(images, list):
        return []
    found: list[tuple[int, str]] = []
    for position, image in enumerate(images):
        if isinstance(image, dict) and isinstance(image.get("url"), str) and image["url"]:
            index = image.get("index")
            found.append((index if isinstance(index, int) else position, image["url"]))
    return [url for _, url in sorted(found, key=lambda item: item[0])]


class Kling(KlingInfo, Provider):
    def wire_prompt(self, prompt: str) -> str:
        return kling_prompt(prompt)

    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission:
        external_task_id = str(uuid.uuid4())
        body = {"model_name": MODEL_NAME, **kling_body(request)}
        # Unique per account, and the query route accepts it (API reference): an ambiguous submit
        # can be looked up instead of sent again.
        body["external_task_id"] = external_task_id
        if request.webhook:
            body["callback_url"] = request.webhook  # kling.ai/document-api callback protocol
        return Submission(
            request=HttpRequest(
                "POST", f"{endpoint.base_url}{OMNI_IMAGE_PATH}", self._headers(endpoint), body
            ),
            client_task_id=external_task_id,
            expected_images=request.num_images,
        )

    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        body = response.json()
        if is_failure_answer(response, body) and business_code(body) in POLICY_CODES:
            assert submission.client_task_id is not None
            task = self.handle(submission.client_task_id, submission)
            return task, TaskStatus(TaskState.FAILED, "refused", error=describe(body))
        data = self._data(response, body)
        task_id = data.get("task_id")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id:
            raise unreadable_response(self.name, response)
        return self.handle(task_id, submission), self._status(data, response)

    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest:
        url = f"{endpoint.base_url}{OMNI_IMAGE_PATH}/{task.task_id}"
        headers = {"Authorization": self._headers(endpoint)["Authorization"]}
        return HttpRequest("GET", url, headers)

    def webhook_task_id(self, body: Any) -> str | None:
        data = _callback_data(body)
        return text_field(data, "task_id") if data and "task_status" in data else None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        """The callback protocol's body is the query answer's `data`, flat (kling.ai
        document-api callback protocol); one copy of the docs wraps it in the envelope."""
        answer = {"code": 0, "message": "SUCCEED", "data": _callback_data(body)}
        return self.parse_poll(as_answer(answer), task)

    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        body = response.json()
        if is_failure_answer(response, body) and business_code(body) in POLICY_CODES:
            return TaskStatus(TaskState.FAILED, "refused", error=describe(body))
        return self._status(self._data(response, body), response)

    def is_retryable(self, response: HttpResponse) -> bool:
        """A 429 is worth retrying only for the rate codes 1302/1303; with an account code
        (1100-1102: arrears, resource pack used up) it would fail the same way (general docs)."""
        if response.status_code == 429:
            code = business_code(response.json())
            return code is None or code in RATE_CODES
        return super().is_retryable(response)

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        if endpoint.secret_key is None:
            # Kling-native relays (CometAPI and the other `/kling/v1` hosts) take their own
            # API key as a plain Bearer token instead of a JWT.
            return bearer(endpoint.api_key)
        return bearer(mint_token(endpoint.api_key, endpoint.secret_key))

    def _data(self, response: HttpResponse, body: Any) -> dict[str, Any]:
        if is_failure_answer(response, body):
            raise error_for_code(response, body, provider_name=self.name, key_hint=self.key_hint)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise unreadable_response(self.name, response)
        return data

    def _status(self, data: dict[str, Any], response: HttpResponse) -> TaskStatus:
        return task_status(data, provider_name=self.name, response=response)


def mint_token(access_key: str, secret_key: str, *, now: float | None = None) -> str:
    """A fresh token per request: HS256, `iss` = access key, valid from 5 s ago for 30 min
    (general docs)."""
    import jwt  # PyJWT; imported here so that commands without Kling start faster

    issued = int(time.time() if now is None else now)
    claims = {
        "iss": access_key,
        "exp": issued + TOKEN_LIFETIME_SECONDS,
        "nbf": issued - TOKEN_BACKDATE_SECONDS,
    }
    with warnings.catch_warnings():
        # PyJWT warns about HMAC keys under 32 bytes; the secret's length is Kling's choice,
        # and the warning would only clutter the user's terminal.
        warnings.simplefilter("ignore", UserWarning)
        return jwt.encode(claims, secret_key, algorithm="HS256", headers={"typ": "JWT"})


def _callback_data(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    return data if isinstance(data, dict) else body
