"""SIGTERM and SIGHUP handled like Ctrl-C.

CI cancellation, `docker stop`, `timeout` and a closed terminal stop kling with SIGTERM or
SIGHUP. Python's default for them is to die at once, leaving a paid job recorded as
"submitting" and `.part` files behind; raised as `Terminated` (a KeyboardInterrupt) instead,
they take the same path as Ctrl-C: the journal is updated and the resume command printed.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from kling_cli.errors import Terminated

HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []
# Ctrl-C whose KeyboardInterrupt Python swallowed: raised inside a `__del__` the garbage
# collector ran (an old event loop's), it is printed as "Exception ignored" and lost.
_swallowed: list[int] = []


def install() -> None:
    """Raise `Terminated` on the first SIGTERM or SIGHUP; later ones are ignored, so the
    cleanup the first one started (journal writes, removing `.part` files) can finish. Only
    the main thread can set handlers (kling called from a library's worker thread keeps the
    host's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        signal.signal(signum, _raise_terminated)
    if getattr(sys.unraisablehook, "__name__", "") != _note_swallowed.__name__:
        _previous_hook.append(sys.unraisablehook)
        sys.unraisablehook = _note_swallowed


_previous_hook: list[Any] = []


def _note_swallowed(unraisable: Any) -> None:
    """An interruption that Python could not raise (it came while a `__del__` ran) is kept,
    so `pending()` still stops what would be paid next; its traceback is not printed."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        if not isinstance(unraisable.exc_value, Terminated):
            _swallowed.append(signal.SIGINT)
        return
    _previous_hook[0](unraisable)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    if _received:
        return
    _received.append(signum)
    raise Terminated(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done (where the platform can), so
    a few statements that must happen together (a job's journal row and the handle that
    ends it) are not cut between them; a signal that came meanwhile is raised at the end."""
    held = {signal.SIGINT, *HANDLED}
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = mask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def received() -> int | None:
    """The signal that stopped this process, if one did (SIGINT is Python's own)."""
    return _received[0] if _received else None


def pending() -> int | None:
    """A signal that asked kling to stop, SIGINT included, even one whose exception was
    swallowed: nothing more may be submitted."""
    return received() or (_swallowed[0] if _swallowed else None)
