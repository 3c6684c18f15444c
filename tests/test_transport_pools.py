"""HTTP pools stay small at any --concurrency (httpcore's pool bookkeeping grows with the
square of its size): a wide client is several pools side by side, each request goes to the
one with the fewest responses open, and a closed response frees its place."""

from __future__ import annotations

import asyncio

import httpx

from kling_cli.transport import POOL_SHARD_CONNECTIONS, HttpClients, ShardedTransport


class _Body(httpx.AsyncByteStream):
    """A streamed body, as a real pool gives: read only when asked."""

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"fox"


def _fake_shards(transport: ShardedTransport, seen: list[int]) -> None:
    def handler(index: int) -> httpx.MockTransport:
        def reply(request: httpx.Request) -> httpx.Response:
            seen.append(index)
            return httpx.Response(200, stream=_Body())

        return httpx.MockTransport(reply)

    transport._shards = [handler(index) for index in range(len(transport._shards))]  # type: ignore[misc]


def test_a_wide_client_is_several_small_pools_used_evenly() -> None:
    transport = ShardedTransport(256)
    assert len(transport._shards) == 256 // POOL_SHARD_CONNECTIONS >= 8
    seen: list[int] = []
    _fake_shards(transport, seen)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            # Eight responses held open: one per pool (there are more), none doubled up.
            requests = [client.build_request("GET", f"http://x/{n}") for n in range(8)]
            open_responses = [await client.send(r, stream=True) for r in requests]
            assert sorted(seen) == list(range(8))
            for response in open_responses[:3]:
                await response.aclose()
            # The next three go where a response was just closed.
            for n in range(3):
                response = await client.send(client.build_request("GET", f"http://x/{n}"))
                assert response.content == b"fox"
            assert transport._open[:8] == [0, 0, 0, 1, 1, 1, 1, 1]
            assert sum(transport._open) == 5
            for response in open_responses[3:]:
                await response.aclose()
            assert not any(transport._open)

    asyncio.run(scenario())


def test_a_narrow_client_is_one_plain_pool() -> None:
    narrow = HttpClients.create(max_connections=POOL_SHARD_CONNECTIONS)
    wide = HttpClients.create(POOL_SHARD_CONNECTIONS * 2)
    try:
        assert isinstance(narrow.api._transport, httpx.AsyncHTTPTransport)
        assert isinstance(wide.api._transport, ShardedTransport)
        assert isinstance(wide.downloads._transport, ShardedTransport)
    finally:
        asyncio.run(narrow.aclose())
        asyncio.run(wide.aclose())
