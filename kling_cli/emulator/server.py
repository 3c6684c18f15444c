"""HTTP plumbing shared by the API and image servers: stdlib, keep-alive, loopback only."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

_SEND_CHUNK = 64 * 1024
_IDLE_CONNECTION_TIMEOUT = 120.0
_LISTEN_BACKLOG = 256  # bursts of concurrent jobs must not be refused at connect time


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    truncate: bool = False  # declare the full length, send half the body, close
    drop: bool = False  # close the connection without any response
    trickle: float = 0.0  # seconds between single bytes of the body (a stalling host)


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), headers=dict(headers or {}))


Dispatch = Callable[[Incoming], Reply]


def require_loopback(host: str) -> str:
    """The IPv4 loopback address to bind: the emulator is never reachable from outside."""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        is_loopback = ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"the emulator binds IPv4 loopback addresses only, not {host!r}")
    return address


class EmulatorHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = _LISTEN_BACKLOG

    def __init__(self, host: str, port: int, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.host = require_loopback(host)
        super().__init__((self.host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut idle keep-alive connections so stop() leaves no handler threads waiting."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are routine under fault tests; stay quiet about them.
        pass

    def serve_in_background(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        waiter = threading.Thread(target=self.shutdown, daemon=True)
        waiter.start()
        while waiter.is_alive():
            self._wake_serve_loop()
            waiter.join(0.01)
        self.close_connections()
        self.server_close()

    def _wake_serve_loop(self) -> None:
        """serve_forever notices shutdown only between polls; a connection wakes it at once."""
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kling-emulator"
    sys_version = ""
    timeout = _IDLE_CONNECTION_TIMEOUT
    # Headers and body go out in separate writes; with Nagle on, each small answer would wait
    # for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: no access log on stderr

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        received_at = time.time()
        body = self._read_body()
        target = urlsplit(self.path)
        incoming = Incoming(
            method=self.command,
            path=target.path,
            query=target.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=received_at,
        )
        try:
            reply = cast(EmulatorHttpServer, self.server).dispatch(incoming)
        except Exception:
            reply = json_reply(500, {"emulatorError": traceback.format_exc()})
        try:
            self._send(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _trickle(self, body: memoryview, interval: float) -> None:
        """One byte, then a pause, until the body is sent or the client has gone."""
        self.close_connection = True
        for index in range(len(body)):
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()
            time.sleep(interval)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        body = memoryview(reply.body)
        if reply.trickle:
            self._trickle(body, reply.trickle)
            return
        if reply.truncate:
            body = body[: len(body) // 2]
            self.close_connection = True
        for start in range(0, len(body), _SEND_CHUNK):
            self.wfile.write(body[start : start + _SEND_CHUNK])
        self.wfile.flush()
        if reply.truncate:
            # Let the half that was sent arrive before the connection drops, as when a
            # transfer dies midway: the client has bytes it can resume from.
            time.sleep(0.05)
