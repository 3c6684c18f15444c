"""The one retry and poll policy: how long to wait between polls and after transient errors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_RETRY_AFTER_SECONDS = 120.0
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class PollPolicy:
    """Poll soon after submitting, then back off to a cap: Kling Image O1 jobs take 5-15 s
    (https://apiin.one/models/kling-image-o1); a half-second cap keeps the median delay from
    done to disk under 0.5 s (bench/latency.py) at 10-30 polls a job. Push delivery, where a
    provider has it, needs none."""

    first_delay: float = 0.25
    growth: float = 1.5
    max_interval: float = 0.5

    def delay(self, poll_number: int) -> float:
        return min(self.first_delay * self.growth**poll_number, self.max_interval)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for status polls and downloads."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)
