"""The log of every request the emulator received, for tests to assert on."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

ServerName = Literal["api", "images"]


@dataclass(frozen=True)
class RecordedRequest:
    server: ServerName
    provider: str | None
    method: str
    path: str  # after the provider prefix on the API server; the full path on the image server
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    time: float  # time.time() when the request was received

    def json(self) -> Any:
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "time": self.time,
        }


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    def append(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
