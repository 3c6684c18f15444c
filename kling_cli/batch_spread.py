"""A batch spread over several providers (`kling batch -p a,b,c`): each provider keeps its own
limiter and queue; the next item goes to whichever has the most room, and moves only when
the provider it went to provably created nothing for it (`kling_cli.resend.refusal`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kling_cli.resend import ACCOUNT_REFUSALS

if TYPE_CHECKING:
    from kling_cli.limiter import ProviderLimiter
    from kling_cli.providers.base import Provider

# A provider that refuses this many items in a row (each refusal proving nothing was made),
# or leaves them unanswered (a 5xx, a lost answer: each may be paid for, and stays there),
# gets no more: its items go to the others.
REFUSALS_TO_STOP = 3
# Refusals after which a provider gets no more items at once.
STOPPING_REFUSALS = ACCOUNT_REFUSALS
# How an item ends when its provider did not answer for it: a server error, a broken
# connection, an answer that cannot be read (the error codes of `kling_cli.errors`).
PROVIDER_FAULTS = frozenset({"provider_error", "unreadable_response", "network"})


@dataclass
class Spread:
    """Per run: the items waiting for each provider's slot, each provider's refusals (or
    unanswered items) in a row, and the providers that get no more items."""

    waiting: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    def choose(
        self,
        alternatives: tuple[Provider, ...],
        limiters: Mapping[str, ProviderLimiter],
        excluded: set[str],
    ) -> Provider | None:
        """The provider with the most room (slots neither held nor waited for); equal room
        keeps the order given. None when every one is stopped or excluded."""
        candidates = [p for p in alternatives if p.id not in self.stopped and p.id not in excluded]
        if not candidates:
            return None

        def room(provider: Provider) -> int:
            limiter = limiters[provider.id]
            return limiter.limit - limiter.active - self.waiting.get(provider.id, 0)

        return max(candidates, key=room)

    def ended(self, provider_id: str, refusal: str | None, error_code: str | None = None) -> None:
        """An item at `provider_id` ended; `refusal` when it provably created nothing, else
        `error_code` when it failed."""
        if refusal is None and error_code not in PROVIDER_FAULTS:
            self.refusals[provider_id] = 0
            return
        self.refusals[provider_id] = self.refusals.get(provider_id, 0) + 1
        if refusal in STOPPING_REFUSALS or self.refusals[provider_id] >= REFUSALS_TO_STOP:
            self.stopped.add(provider_id)

    @asynccontextmanager
    async def slot(self, limiter: ProviderLimiter, provider_id: str) -> AsyncIterator[None]:
        """The provider's limiter slot, counted as waited for until it is held."""
        self.waiting[provider_id] = self.waiting.get(provider_id, 0) + 1
        try:
            await limiter.acquire()
        finally:
            self.waiting[provider_id] -= 1
        try:
            yield
        finally:
            limiter.release()
