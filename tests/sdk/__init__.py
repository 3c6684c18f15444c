"""Cross-checks against the providers' official Python SDKs.

Each test runs kling and the provider's own SDK against the emulator for the same parameters,
and compares the JSON bodies both send (from `Emulator.requests`). The SDKs are pointed at the
emulator only through their documented configuration (a base URL argument), and run with
`loopback_only()` so that none of them can reach past 127.0.0.1 (a registry or schema fetch,
a telemetry call) without the test failing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from kling_cli.emulator import Emulator, RecordedRequest


def api_requests(emu: Emulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.server == "api"]


def take_api_requests(emu: Emulator) -> list[RecordedRequest]:
    """The provider requests so far, then forget them, so kling's and the SDK's stay apart."""
    requests = api_requests(emu)
    emu.clear_requests()
    return requests


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse name lookups and TCP connections to anything but the loopback range, and fail
    the test afterwards if any was tried. (Refused with an OSError at once, since an SDK may
    catch the error and carry on, as Runware's does when its model registry is unreachable.)"""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    attempts: list[str] = []

    def refuse(what: str) -> None:
        attempts.append(what)
        raise ConnectionRefusedError(f"{what}: only 127.0.0.1 may be reached from a test")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            refuse(f"connection to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    with (
        mock.patch("socket.getaddrinfo", getaddrinfo),
        mock.patch.object(socket.socket, "connect", connect),
        mock.patch.object(socket.socket, "connect_ex", connect_ex),
    ):
        yield
    assert not attempts, f"the SDK tried to leave the loopback range: {attempts}"
