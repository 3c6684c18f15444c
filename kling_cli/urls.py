"""URL facts the key guard and the config share. A leaf: it imports nothing of kling_cli."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """`localhost`, or an address of this machine (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, lower-case host, port with the scheme's default filled in)."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def is_credential_header(name: str) -> bool:
    """A header that carries a credential (`Authorization`, `X-API-Key`, `...-Token`)."""
    lowered = name.lower()
    return lowered == "authorization" or lowered.endswith(("key", "token", "secret"))
