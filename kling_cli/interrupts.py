"""SIGTERM and SIGHUP handled like Ctrl-C.

CI cancellation, `docker stop`, `timeout` and a closed terminal stop kling with SIGTERM or
SIGHUP. Python's default for them is to die at once, leaving a paid job recorded as
"submitting" and `.part` files behind; raised as `Terminated` (a KeyboardInterrupt) instead,
they take the same path as Ctrl-C: the journal is updated and the resume command printed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from kling_cli.errors import Terminated

HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []


def install() -> None:
    """Raise `Terminated` on the first SIGTERM or SIGHUP; later ones are ignored, so the
    cleanup the first one started (journal writes, removing `.part` files) can finish. Only
    the main thread can set handlers (kling called from a library's worker thread keeps the
    host's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        signal.signal(signum, _raise_terminated)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    if _received:
        return
    _received.append(signum)
    raise Terminated(signum)


def received() -> int | None:
    """The signal that stopped this process, if one did (SIGINT is Python's own)."""
    return _received[0] if _received else None
