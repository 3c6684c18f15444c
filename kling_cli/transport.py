"""The HTTP side the engine stands on: the shared clients (one that carries keys, one that
never does), the per-run upload cache, and how requests are shown and where keys may go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from kling_cli import __version__
from kling_cli.providers.base import HttpRequest
from kling_cli.urls import is_credential_header

USER_AGENT = f"kling-cli/{__version__}"
# Every request has explicit connect, read, write and pool timeouts.
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def describe_request(request: HttpRequest) -> dict[str, Any]:
    """A request as `--dry-run` shows it: credentials redacted, nothing sent."""
    return {
        "method": request.method,
        "url": request.url,
        "headers": {
            name: "<redacted>" if is_credential_header(name) else value
            for name, value in request.headers.items()
        },
        "body": request.json,
    }


class UploadCache:
    """The local files already uploaded in this run, by provider, account and content: a
    reference that many jobs of a batch share is uploaded once per provider."""

    def __init__(self) -> None:
        self._uploads: dict[tuple[str, ...], asyncio.Task[str]] = {}

    async def reference(
        self, key: tuple[str, ...], upload: Callable[[], Coroutine[Any, Any, str]]
    ) -> str:
        task = self._uploads.get(key)
        if task is None:
            task = self._uploads[key] = asyncio.ensure_future(upload())
            task.add_done_callback(lambda done: self._forget_failed(key, done))
        # Shielded: one job giving up does not cancel an upload other jobs wait for.
        return await asyncio.shield(task)

    def _forget_failed(self, key: tuple[str, ...], task: asyncio.Task[str]) -> None:
        """A failed upload is tried afresh by the next job that needs the file (and its error
        is taken here, so none goes unretrieved when no job waits any more)."""
        failed = task.cancelled() or task.exception() is not None
        if failed and self._uploads.get(key) is task:
            del self._uploads[key]


@dataclass
class HttpClients:
    """What the engines of a run share (a batch has one per provider): two HTTP clients, one
    for provider APIs, and one for images, which come from other hosts (CDNs, signed storage
    URLs) and so get a client that has never seen a key: no provider header can follow a
    redirect there; and the uploads made so far."""

    api: httpx.AsyncClient
    downloads: httpx.AsyncClient
    uploads: UploadCache = field(default_factory=UploadCache)

    @classmethod
    def create(
        cls, max_connections: int = 32, timeout: httpx.Timeout = REQUEST_TIMEOUT
    ) -> HttpClients:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        headers = {"User-Agent": USER_AGENT}
        return cls(
            api=httpx.AsyncClient(
                timeout=timeout, headers=headers, limits=limits, follow_redirects=False
            ),
            downloads=httpx.AsyncClient(
                timeout=timeout, headers=headers, limits=limits, follow_redirects=True
            ),
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.downloads.aclose()
