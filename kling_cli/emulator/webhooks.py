"""Webhook deliveries: when a task that was given a webhook URL ends, the emulator POSTs the
provider's documented body to it from a background thread, as the providers do. Providers
warn that a delivery may repeat (Unifically: "use task_id to deduplicate"; Runware: "De-
duplicate on taskUUID"); `repeat` sends each body that many times, so a receiver's
deduplication can be proved. A receiver that is down is retried a few times, then given up
on: the task itself is unaffected, as with a real provider."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Attempts per body and the pause before each retry (Runware retries with backoff, 250 ms
# doubling; the others document no schedule).
ATTEMPTS = 3
FIRST_RETRY_SECONDS = 0.25
TIMEOUT_SECONDS = 5.0

Bodies = Callable[[], list[Any]]


@dataclass(frozen=True)
class Delivery:
    url: str
    body: Any
    status: int | None  # the receiver's HTTP status; None: it could not be reached


class WebhookSender:
    def __init__(self) -> None:
        self.repeat = 1
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    def schedule(self, url: str, delay: float, bodies: Bodies) -> None:
        """POST each of `bodies()` (built when the task has ended) to `url` after `delay`."""
        _later(delay, self._deliver, url, bodies)

    def schedule_upload(
        self, url: str, delay: float, contents: Callable[[], list[tuple[bytes, str]]]
    ) -> None:
        """PUT each of `contents()` (bytes, content type) to `url` after `delay`: Runware's
        `uploadEndpoint`, where "Runware PUTs the raw output bytes" (Runware model page)."""

        def upload() -> None:
            for content, content_type in contents():
                _send("PUT", url, content, content_type)

        _later(delay, upload)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def _deliver(self, url: str, bodies: Bodies) -> None:
        for body in bodies():
            for _ in range(self.repeat):
                status = _send("POST", url, json.dumps(body).encode(), "application/json")
                with self._lock:
                    self._deliveries.append(Delivery(url, body, status))


def _later(delay: float, work: Callable[..., None], *args: Any) -> None:
    timer = threading.Timer(max(0.0, delay), work, args)
    timer.daemon = True
    timer.start()


def _send(method: str, url: str, data: bytes, content_type: str) -> int | None:
    pause = FIRST_RETRY_SECONDS
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(pause)
            pause *= 2
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                status = int(answer.status)
        except urllib.error.HTTPError as refused:
            status = refused.code
        except (OSError, ValueError):
            continue
        if 200 <= status < 300:
            return status
    return None
