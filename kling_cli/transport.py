"""The HTTP side the engine stands on: the shared clients (one that carries keys, one that
never does), the per-run upload cache, and how requests are shown and where keys may go."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from kling_cli import __version__
from kling_cli.providers.base import HttpRequest
from kling_cli.urls import is_credential_header

USER_AGENT = f"kling-cli/{__version__}"
# Every request has explicit connect, read, write and pool timeouts.
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# httpcore 1.0.x walks every pooled connection, for every pooled connection, each time a
# request starts or ends (`AsyncConnectionPool._assign_requests_to_connections`): CPU per
# request grows with the square of the pool's size, and `--concurrency 256` spent most of its
# time there. Pools of at most this many connections side by side keep that small at any
# concurrency (bench/README.md, "HTTP pools").
POOL_SHARD_CONNECTIONS = 8


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


class _Release(httpx.AsyncByteStream):
    """A response body that tells its pool's shard, once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedTransport(httpx.AsyncBaseTransport):
    """`max_connections` spread over pools of at most `shard_size` connections each; a request
    goes to the pool with the fewest responses open (ties: the first), so connections are
    reused as in one pool and none waits while another pool has room."""

    def __init__(self, max_connections: int, shard_size: int = POOL_SHARD_CONNECTIONS) -> None:
        count = max(1, math.ceil(max_connections / max(shard_size, 1)))
        per_shard = math.ceil(max_connections / count)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        ssl_context = httpx.create_ssl_context()  # one for all: each costs milliseconds
        self._shards = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(count)
        ]
        self._open = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._open.index(min(self._open))
        self._open[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self._open[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Release(response.stream, lambda: self._done(index))
        return response

    def _done(self, index: int) -> None:
        self._open[index] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def _transport(max_connections: int) -> httpx.AsyncBaseTransport:
    if max_connections <= POOL_SHARD_CONNECTIONS:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        return httpx.AsyncHTTPTransport(limits=limits)
    return ShardedTransport(max_connections)


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
        """Two clients of `max_connections` connections each (in pools of at most
        POOL_SHARD_CONNECTIONS); `timeout` in seconds per phase. Opens no connection."""
        headers = {"User-Agent": USER_AGENT}
        return cls(
            api=httpx.AsyncClient(
                timeout=timeout,
                headers=headers,
                transport=_transport(max_connections),
                follow_redirects=False,
            ),
            downloads=httpx.AsyncClient(
                timeout=timeout,
                headers=headers,
                transport=_transport(max_connections),
                follow_redirects=True,
            ),
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.downloads.aclose()
