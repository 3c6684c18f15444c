"""How hard a batch may push one provider: a cap on its items in flight, and one shared pause
after it answers a submit with 429.

A 429 on a submit means the provider refused the request and created nothing, so the item can
be sent again later. One `ProviderLimiter` per provider is shared by all the batch's workers;
the engine reports each refusal and each accepted submit to it (`Engine.submit`):

- a 429 pauses every submit to that provider, for its `Retry-After` when it gives one, else
  for an exponential backoff with jitter that grows with the 429s in a row;
- the cap on items in flight halves on a 429 and grows back by one with each accepted submit
  (AIMD), up to `--concurrency`; it starts at what the provider documents, where it does.

No I/O here: only waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kling_cli.retry import RetryPolicy

# Kling's docs: on 1303 (too many tasks at once) back off exponentially from at least 1 s
# ("Handling Strategy" in Kling's general docs, as copied in github.com/inference-sh/grid
# `api/klingai/docs/00-general.md`). No provider documents a shorter wait, so all start there.
RATE_LIMIT_BACKOFF = RetryPolicy(base_delay=1.0)


class ProviderLimiter:
    """One provider's share of a batch: at most `limit` items in flight, none started while
    paused. Holders of a slot call `requeue` after a 429 to give it up until their turn."""

    def __init__(
        self,
        ceiling: int,
        initial: int | None = None,
        *,
        backoff: RetryPolicy = RATE_LIMIT_BACKOFF,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(self.ceiling, initial or self.ceiling)
        self.active = 0
        self.backoff = backoff
        self._paused_until = 0.0
        self._refusals_in_a_row = 0
        # How many 429s were acted on. A 429 to a request sent before the last of them belongs
        # to the same burst: it must not halve the cap again or lengthen the pause.
        self.epoch = 0
        self._waiters: list[asyncio.Future[None]] = []

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Wait for the pause to end and for a free slot, then take it."""
        while True:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.active < self.limit:
                self.active += 1
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self) -> None:
        self.active -= 1
        self._wake()

    async def requeue(self) -> None:
        """Give the slot up and queue for another one, behind the pause."""
        self.release()
        try:
            await self.acquire()
        except BaseException:
            self.active += 1  # the caller still releases the slot it thinks it holds
            raise

    def rate_limited(self, retry_after: float | None, sent_in_epoch: int) -> float:
        """A submit sent when `epoch` was `sent_in_epoch` was answered 429: pause all submits
        and halve the cap. Returns how long submits are paused from now."""
        now = time.monotonic()
        if sent_in_epoch == self.epoch:
            self.epoch += 1
            self._refusals_in_a_row += 1
            self.limit = max(1, self.limit // 2)
            wait = self.backoff.delay(self._refusals_in_a_row - 1, retry_after)
        else:
            wait = retry_after or 0.0
        self._paused_until = max(self._paused_until, now + wait)
        return self._paused_until - now

    def accepted(self) -> None:
        """A submit went through: the provider has room again."""
        self._refusals_in_a_row = 0
        if self.limit < self.ceiling:
            self.limit += 1
            self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
