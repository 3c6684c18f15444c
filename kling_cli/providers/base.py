"""The sans-I/O provider interface.

An adapter turns a `GenerationRequest` into the HTTP requests its provider documents, and turns
the provider's responses into a neutral `TaskStatus`. It never opens a connection: the engine
does all I/O, so every adapter is tested by the same engine against the emulator.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from kling_cli.errors import (
    AuthError,
    InvalidRequestError,
    KlingError,
    OutOfCreditsError,
    ProviderRequestError,
    RateLimitedError,
    UnreadableResponseError,
)
from kling_cli.limits import MAX_PROMPT_CHARS, canonical_tokens
from kling_cli.providers.catalog import ProviderInfo
from kling_cli.references import LocalFile, is_local

if TYPE_CHECKING:
    from kling_cli.request import GenerationRequest


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED)


@dataclass(frozen=True)
class HttpRequest:
    method: Literal["GET", "POST", "PUT"]
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    # Synchronous APIs hold the request until the images exist: a longer read timeout.
    read_timeout: float | None = None
    # Uploads: a raw body, or multipart form files (field -> (file name, bytes, content type)).
    content: bytes | None = field(default=None, repr=False)
    files: Mapping[str, tuple[str, bytes, str]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def retry_after(self) -> float | None:
        from kling_cli.retry import parse_retry_after

        return parse_retry_after(self.headers.get("retry-after"))


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to talk to one provider. `secret_key` is for providers that sign
    with a key pair (Kling's access key + secret key); `api_key` then holds the access key."""

    base_url: str
    api_key: str = field(repr=False)
    secret_key: str | None = field(default=None, repr=False)
    # The provider's other hosts that take its key (e.g. Unifically's file storage), by the
    # names in `Provider.service_urls`.
    service_urls: Mapping[str, str] = field(default_factory=dict)

    def service_url(self, name: str) -> str:
        return self.service_urls[name]


@dataclass(frozen=True)
class TaskHandle:
    """What is needed to find a submitted task again; stored in the jobs journal."""

    provider: str
    task_id: str
    # How many images the task was asked for, when known: some providers report images one by
    # one, so fewer than this means "still running".
    expected_images: int | None = None
    # Provider-given follow-up addresses (e.g. fal's status_url/response_url), kept verbatim
    # because the docs say to use them rather than build them.
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputImage:
    url: str
    seed: int | None = None


@dataclass(frozen=True)
class TaskStatus:
    state: TaskState
    provider_status: str
    outputs: tuple[OutputImage, ...] = ()
    error: str | None = None
    cost: float | None = None
    # The provider's own `Retry-After` on a "still running" answer: poll no sooner.
    poll_after: float | None = None


@dataclass(frozen=True)
class Submission:
    """A submit request, with the handle it will be known by when the id is the client's."""

    request: HttpRequest
    client_task_id: str | None = None
    expected_images: int | None = None


INLINE_TRANSPORTS = ("inline-base64", "data-uri")

# An upload, sans I/O: yields each request, is sent back its answer, and returns the
# reference to put in the submit body (a URL, or the provider's own file URI).
Upload = Generator[HttpRequest, HttpResponse, str]


class Provider(ProviderInfo, ABC):
    """One provider's wire protocol. Subclasses inherit their `ProviderInfo` from the catalog
    and implement the four methods."""

    def check_request(self, request: GenerationRequest) -> None:
        """Refuse, before any network call, what this provider cannot do."""
        caps = self.capabilities
        if len(request.references) > caps.max_references:
            raise InvalidRequestError(
                f"{self.name} accepts at most {caps.max_references} reference image"
                f"{'s' if caps.max_references != 1 else ''}; {len(request.references)} given."
            )
        if request.negative_prompt and not caps.negative_prompt:
            raise InvalidRequestError(
                f"{self.name} has no negative prompt; drop --negative-prompt or pick a provider "
                "that has one (see `kling providers`)."
            )
        if request.mode not in caps.modes:
            raise InvalidRequestError(
                f"{self.name} does not offer --mode {request.mode}; "
                f"its modes: {', '.join(caps.modes)}."
            )
        if request.aspect_ratio not in caps.aspect_ratios:
            raise InvalidRequestError(
                f"{self.name} does not support aspect ratio {request.aspect_ratio}; "
                f"use one of {', '.join(caps.aspect_ratios)}."
            )
        needs_reference = caps.auto_aspect_needs_references and not request.references
        if needs_reference and request.aspect_ratio == "auto":
            raise InvalidRequestError(
                f"Aspect ratio auto follows the reference images, and {self.name} needs at "
                "least one --ref for it; give a reference or an explicit -a such as 1:1."
            )
        wire_prompt = self.wire_prompt(request.prompt)
        if len(wire_prompt) > MAX_PROMPT_CHARS:
            # The limit is the model's, on the text it receives: the provider's own token
            # spelling (e.g. `<<<image_1>>>`) can make a prompt that fitted too long.
            raise InvalidRequestError(
                f"The prompt is {len(wire_prompt)} characters long as {self.name} receives it "
                f"(its reference tokens are longer than @image_N); Kling Image O1 accepts at "
                f"most {MAX_PROMPT_CHARS}, so shorten it by {len(wire_prompt) - MAX_PROMPT_CHARS}."
            )
        if len(request.prompt) < caps.min_prompt_chars:
            raise InvalidRequestError(
                f"{self.name} needs a prompt of at least {caps.min_prompt_chars} characters."
            )
        local = [ref for ref in request.references if is_local(ref)]
        if local and caps.local_files == "unsupported":
            raise InvalidRequestError(
                f"{self.name} takes reference images as URLs only and has no upload API; "
                f"{local[0]!r} is a local file. Pass a URL, or pick a provider that takes "
                "files (see `kling providers`)."
            )
        from kling_cli.delivery import refused_option

        refused = refused_option(request, caps)
        if refused is not None:
            raise InvalidRequestError(
                f"{self.name} documents no {refused} for Kling Image O1; drop it or pick a "
                f"provider that has it (see `kling providers show {self.id}`)."
            )
        if request.output_format and request.output_format not in caps.output_formats:
            allowed = ", ".join(caps.output_formats) if caps.output_formats else "none"
            raise InvalidRequestError(
                f"{self.name} cannot choose the output format {request.output_format}; "
                f"formats it can produce on request: {allowed}."
            )

    def wire_prompt(self, prompt: str) -> str:
        """The prompt as this provider receives it: `@image_N` tokens in the provider's own
        spelling. By default the documented `@image_N`, normalised to lower case."""
        return canonical_tokens(prompt)

    @abstractmethod
    def build_submit(self, request: GenerationRequest, endpoint: Endpoint) -> Submission: ...

    def build_push_submit(
        self, request: GenerationRequest, endpoint: Endpoint
    ) -> Submission | None:
        """A submit whose answer carries the results (push delivery), for callers that wait
        anyway; None where the provider has none. `parse_submit` reads its answer."""
        return None

    @abstractmethod
    def parse_submit(
        self, response: HttpResponse, submission: Submission
    ) -> tuple[TaskHandle, TaskStatus]:
        """The handle the task will be found by, and its state right after submitting."""

    @abstractmethod
    def build_poll(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest: ...

    @abstractmethod
    def parse_poll(self, response: HttpResponse, task: TaskHandle) -> TaskStatus: ...

    def upload(self, file: LocalFile, endpoint: Endpoint) -> Upload:
        """Put a local file where the provider can read it (`local_files = "upload"`)."""
        raise NotImplementedError(f"{self.name} has no upload API")

    def build_result(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest | None:
        """For queue APIs whose status answer carries no outputs (fal): the request that
        fetches them once the task has succeeded. None: the poll answer has them."""
        return None

    def parse_result(self, response: HttpResponse, task: TaskHandle) -> TaskStatus:
        raise NotImplementedError(f"{self.name} has no separate result request")

    def build_stream(self, task: TaskHandle, endpoint: Endpoint) -> HttpRequest | None:
        """A push channel of status events (inference.sh's NDJSON stream), or None. The engine
        reads it instead of polling, and falls back to polling on any trouble."""
        return None

    def parse_stream_line(self, line: str, task: TaskHandle) -> TaskStatus | None:
        """The state one stream line announces, or None for a line without one (heartbeats).
        Outputs are read afterwards with a regular poll."""
        raise NotImplementedError(f"{self.name} has no status stream")

    def webhook_task_id(self, body: Any) -> str | None:
        """The task a webhook body this provider sent is about; None for a body that is not
        one of its webhooks (or a provider without webhooks)."""
        return None

    def parse_webhook(self, body: Any, task: TaskHandle) -> TaskStatus:
        """The state a webhook body reports, read as the poll answer it mirrors is read."""
        raise NotImplementedError(f"{self.name} has no webhook")

    def is_retryable(self, response: HttpResponse) -> bool:
        """Whether a poll or result answer is transient. Providers whose 429 can also mean
        "out of credits" (Kling's codes 1101/1102) refine this."""
        from kling_cli.retry import RETRYABLE_STATUS

        return response.status_code in RETRYABLE_STATUS

    def handle(self, task_id: str, submission: Submission, **extra: str) -> TaskHandle:
        return TaskHandle(self.id, task_id, submission.expected_images, extra)


def error_for_http_status(
    response: HttpResponse, message: str, *, provider_name: str, key_hint: str
) -> KlingError:
    """The error a non-2xx answer stands for, worded with the provider's own message."""
    status = response.status_code
    credits = status == 402
    # The status is said once: after the provider's own message, or as the whole message.
    if message:
        text = f"{provider_name}: {message} (HTTP {status}{': out of credits' if credits else ''})."
    else:
        text = f"{provider_name} answered HTTP {status}{' (out of credits)' if credits else ''}."
    if status in (401, 403):
        return AuthError(text, hint=key_hint)
    if credits:
        return OutOfCreditsError(text)
    if status == 429:
        return RateLimitedError(text, retry_after=response.retry_after)
    error = ProviderRequestError(text)
    error.http_status = status
    return error


def put_to_signed_url(
    provider: Provider, url: Any, file: LocalFile
) -> Generator[HttpRequest, HttpResponse, None]:
    """The upload step that sends a file's bytes to the signed storage URL an answer gave: no
    credentials, the URL is the permission; https only (plain http to this machine, for the
    emulator). A refusal is the storage host's, so no key is blamed for it."""
    from kling_cli.urls import is_loopback

    parts = urlsplit(url) if isinstance(url, str) else None
    secure = parts is not None and parts.scheme == "https" and bool(parts.hostname)
    local = parts is not None and parts.scheme == "http" and is_loopback(parts.hostname or "")
    if not (secure or local):
        raise UnreadableResponseError(
            f"{provider.name} gave an upload address kling-cli will not use: {str(url)[:100]!r}"
        )
    headers = {"Content-Type": file.content_type}
    stored = yield HttpRequest("PUT", str(url), headers, content=file.content)
    if not 200 <= stored.status_code < 300:
        snippet = stored.body[:200].decode("utf-8", "replace").strip()
        raise ProviderRequestError(
            f"the storage host refused the file (HTTP {stored.status_code}"
            f"{': ' + repr(snippet) if snippet else ''})."
        )


def upload_failed(provider: Provider, response: HttpResponse, message: str = "") -> KlingError:
    """The error for an upload answer that does not give the file's new address, worded with
    the provider's own message when it has one."""
    if not 200 <= response.status_code < 300:
        return error_for_http_status(
            response, message, provider_name=provider.name, key_hint=provider.key_hint
        )
    if message:
        return ProviderRequestError(f"{provider.name}: {message}.")
    snippet = response.body[:200].decode("utf-8", "replace")
    return UnreadableResponseError(
        f"its answer does not say where the file is (HTTP {response.status_code}): {snippet!r}"
    )


def unreadable_response(provider_name: str, response: HttpResponse) -> ProviderRequestError:
    snippet = response.body[:200].decode("utf-8", "replace")
    return UnreadableResponseError(
        f"{provider_name} sent a response kling-cli cannot read (HTTP {response.status_code}): "
        f"{snippet!r}"
    )


REDACTED = "<redacted>"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` (a server's words) with every occurrence of each secret replaced by
    `<redacted>`: a server may echo the key it was sent, in an error or a task message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def redact_error(exc: KlingError, secrets: Iterable[str | None]) -> KlingError:
    """The error, its message and hint redacted in place (and returned, to re-raise)."""
    secrets = tuple(secrets)
    exc.message = redact(exc.message, secrets)
    exc.args = (exc.message,)
    if exc.hint:
        exc.hint = redact(exc.hint, secrets)
    return exc


def redact_status(status: TaskStatus, secrets: Iterable[str | None]) -> TaskStatus:
    """The status with its provider-given error text redacted."""
    if not status.error:
        return status
    import dataclasses

    return dataclasses.replace(status, error=redact(status.error, secrets))


def as_answer(body: Any) -> HttpResponse:
    """A webhook body as the 200 answer of a poll, for the poll's parser to read."""
    return HttpResponse(200, {}, json.dumps(body).encode())


def text_field(body: Any, name: str) -> str | None:
    """`body[name]` when `body` is an object and that is a non-empty string (or a number,
    as some providers write ids), else None."""
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value else None


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
