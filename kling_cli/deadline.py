"""The one deadline of a job (`--timeout`): a monotonic time after which no network step of it
may go on, whatever the transport (an upload, a submit held open, a status stream, a poll, a
download that trickles).

Each step runs under `Deadline.guard`, an `asyncio.timeout` at the deadline, and each HTTP
request's own timeouts are clipped to the time left (`Deadline.clip`), so a read timeout
between bytes can never outlast the command.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kling_cli.durations import human_duration
from kling_cli.errors import InvalidRequestError, WaitTimeoutError

# The shortest timeout any request is given: a request started with no time left still fails
# at once with a timeout, never waits without one.
MIN_STEP_SECONDS = 0.001


def check_timeout(seconds: float, option: str = "--timeout") -> float:
    """`seconds` if it is a usable deadline: finite and above zero. Zero, negative, NaN and
    infinite values are refused (`InvalidRequestError`, exit 2) rather than read as "no
    deadline": a typo must never turn a bounded CI step into an unbounded one."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidRequestError(
            f"{option} must be a positive, finite number of seconds, not {seconds:g}."
        )
    return seconds


class Deadline:
    """`seconds` from now (None: no deadline), on the monotonic clock."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never below `MIN_STEP_SECONDS`), or None without a deadline."""
        if self.at is None:
            return None
        return max(self.at - time.monotonic(), MIN_STEP_SECONDS)

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def clip(self, seconds: float | None) -> float | None:
        """A request timeout in seconds (None: unbounded) cut to the time left."""
        left = self.remaining()
        if left is None:
            return seconds
        return left if seconds is None else min(seconds, left)

    def error(self, doing: str, phase: str = "wait") -> WaitTimeoutError:
        """The `WaitTimeoutError` (exit 5) for a deadline that passed while `doing`."""
        spent = human_duration(self.seconds) if self.seconds is not None else "the deadline"
        error = WaitTimeoutError(f"Gave up after {spent} (--timeout) while {doing}.")
        error.phase = phase
        return error

    @asynccontextmanager
    async def guard(self, doing: str, phase: str = "wait") -> AsyncIterator[None]:
        """Run the block until it ends or the deadline passes; then `WaitTimeoutError`."""
        left = self.remaining()
        if left is None:
            yield
            return
        if self.expired:
            raise self.error(doing, phase)
        scope = asyncio.timeout(left)
        try:
            async with scope:
                yield
        except TimeoutError:
            if scope.expired():
                raise self.error(doing, phase) from None
            raise

    async def sleep(self, seconds: float, doing: str, phase: str = "wait") -> None:
        """Sleep `seconds`, or until the deadline and then `WaitTimeoutError`."""
        left = self.remaining()
        if left is not None and seconds >= left:
            await asyncio.sleep(left)
            raise self.error(doing, phase)
        await asyncio.sleep(seconds)
