"""What an injected transport fault does to an answer: delay it, drop it, replace it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import get_args

from kling_cli.emulator.faults import Fault, FaultKind
from kling_cli.emulator.server import Reply

# task_failure is not a transport fault: the provider claims it when it creates a task.
TRANSPORT_FAULTS = tuple(kind for kind in get_args(FaultKind) if kind != "task_failure")


def apply_fault(
    fault: Fault,
    answer: Callable[[], Reply],
    rate_limited: Callable[[], Reply],
    server_error: Callable[[int], Reply],
    out_of_credits: Callable[[], Reply],
) -> Reply:
    if fault.kind == "slow":
        time.sleep(fault.delay)
        return answer()
    if fault.kind == "drop_connection":
        return Reply(0, drop=True)
    if fault.kind == "out_of_credits":
        return out_of_credits()
    if fault.kind == "lost_response":
        answer()
        return Reply(0, drop=True)
    if fault.kind == "malformed_json":
        return Reply(200, b'{"data": [{"taskType": ')
    if fault.kind == "html_error_page":
        page = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
        return Reply(502, page, content_type="text/html")
    if fault.kind == "rate_limit":
        reply = rate_limited()
        if fault.retry_after is None:
            return reply
        return dataclasses.replace(
            reply, headers={**reply.headers, "Retry-After": str(fault.retry_after)}
        )
    if fault.kind == "server_error":
        return server_error(fault.status)
    if fault.kind == "trickle":
        return dataclasses.replace(answer(), trickle=fault.delay)
    return dataclasses.replace(answer(), truncate=True)  # truncated_download


def range_start(header: str | None, size: int) -> int | None:
    """The first byte asked for by `Range: bytes=N-`, or None for the whole body."""
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    try:
        start = int(header[len("bytes=") : -1])
    except ValueError:
        return None
    return start if 0 <= start < size else None


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), content_type="text/plain; charset=utf-8")
