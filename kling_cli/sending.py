"""Sending one request to a provider: held to the job's deadline, with back-off between tries.

The `Sender` is what every engine step (submit, upload, status, download) shares: the HTTP
clients, the key guard (credentials only to the provider's own hosts), timeouts clipped to the
time the deadline leaves, and the one retry policy (`kling_cli.retry`) for requests that are
safe to repeat.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from kling_cli.deadline import Deadline
from kling_cli.errors import NetworkError, ProviderRequestError
from kling_cli.events import ProgressListener
from kling_cli.providers.base import Endpoint, HttpRequest, HttpResponse, Provider
from kling_cli.retry import RetryPolicy
from kling_cli.transport import HttpClients
from kling_cli.urls import is_credential_header, origin


class Sender:
    def __init__(
        self,
        provider: Provider,
        endpoint: Endpoint,
        listener: ProgressListener,
        retry_policy: RetryPolicy,
        deadline: Deadline,
        clients: HttpClients | None,
    ) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.listener = listener
        self.retry_policy = retry_policy
        self.deadline = deadline
        self._clients = clients
        self._owns_clients = clients is None

    async def open(self) -> None:
        if self._clients is None:
            self._clients = HttpClients.create()

    async def aclose(self) -> None:
        if self._owns_clients and self._clients is not None:
            await self._clients.aclose()
            self._clients = None

    @property
    def clients(self) -> HttpClients:
        if self._clients is None:
            raise RuntimeError("use the Engine as an async context manager, or pass clients")
        return self._clients

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """What a server's text must never carry into messages, the journal or sidecars."""
        return (self.endpoint.api_key, self.endpoint.secret_key)

    async def send(
        self, request: HttpRequest, doing: str | None = None, phase: str = "wait"
    ) -> HttpResponse:
        """One request, held to the deadline: its timeouts clipped to the time left, and the
        whole exchange bounded (`WaitTimeoutError`, with `doing` and `phase`)."""
        self.check_key_destination(request)
        timeout = self.timeout(self.clients.api.timeout, request.read_timeout)
        async with self.deadline.guard(doing or f"talking to {self.provider.name}", phase):
            response = await self.clients.api.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                json=request.json,
                content=request.content,
                files=request.files,
                timeout=timeout,
            )
        return HttpResponse(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    async def exchange(self, request: HttpRequest, what: str, phase: str = "wait") -> HttpResponse:
        """Send a request that is safe to repeat, retrying transport errors and transient
        answers (after the provider's `Retry-After`, where it gives one); the last answer is
        returned whatever it is."""
        attempt = 0
        doing = "uploading a reference" if phase == "submit" else "checking the task"
        while True:
            last_attempt = attempt + 1 >= self.retry_policy.attempts
            try:
                response = await self.send(request, f"{doing} at {self.provider.name}", phase)
            except httpx.TransportError as exc:
                if last_attempt:
                    raise self.unreachable(exc, request.url) from None
                await self.back_off(attempt, f"{what} ({type(exc).__name__})", None, phase)
            else:
                if last_attempt or not self.provider.is_retryable(response):
                    return response
                reason = f"{self.provider.name} answered HTTP {response.status_code}"
                await self.back_off(attempt, reason, response.retry_after, phase)
            attempt += 1

    def timeout(self, base: httpx.Timeout, read: float | None = None) -> httpx.Timeout:
        """The client's timeouts (`read` instead of its read timeout: a synchronous API's
        hold), each cut to the time the deadline leaves."""
        clip = self.deadline.clip
        return httpx.Timeout(
            connect=clip(base.connect),
            read=clip(read or base.read),
            write=clip(base.write),
            pool=clip(base.pool),
        )

    def check_key_destination(self, request: HttpRequest) -> None:
        """Credentials (`Authorization`, `X-API-Key`, ...) go to the provider's API host (and
        its own configured service hosts, such as file storage) and nowhere else: never to a
        host an answer named."""
        carries_key = any(is_credential_header(name) for name in request.headers)
        allowed = {
            origin(url) for url in (self.endpoint.base_url, *self.endpoint.service_urls.values())
        }
        if carries_key and origin(request.url) not in allowed:
            host = urlsplit(request.url).hostname
            raise ProviderRequestError(
                f"Refusing to send the {self.provider.name} key to {host}, "
                "which is not the provider's API host."
            )

    async def back_off(
        self, attempt: int, reason: str, retry_after: float | None = None, phase: str = "wait"
    ) -> None:
        delay = self.retry_policy.delay(attempt, retry_after)
        self.listener.retrying(reason, delay)
        await self.deadline.sleep(delay, f"waiting to try again ({reason})", phase)

    def unreachable(self, exc: Exception, url: str | None = None) -> NetworkError:
        host = urlsplit(url or self.endpoint.base_url).hostname
        return NetworkError(f"Cannot reach {self.provider.name} at {host} ({type(exc).__name__}).")
