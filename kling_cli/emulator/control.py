"""The emulator's own control API on the API port, so another process can drive it.

GET /_emulator/requests, GET /_emulator/events, GET /_emulator/faults,
POST /_emulator/faults?provider=<id|images> (JSON body: Fault fields), POST /_emulator/reset,
GET /_emulator/webhooks (the deliveries made), POST /_emulator/webhooks (JSON `{"repeat": N}`:
each webhook body sent N times).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from kling_cli.emulator.faults import Fault
from kling_cli.emulator.server import Incoming, Reply, json_reply

if TYPE_CHECKING:
    from kling_cli.emulator.core import Emulator

CONTROL_PREFIX = "/_emulator"


def is_control_path(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def handle(emulator: Emulator, incoming: Incoming) -> Reply:
    route = (incoming.method, incoming.path.removeprefix(CONTROL_PREFIX).rstrip("/"))
    if route == ("GET", "/requests"):
        return json_reply(200, [request.to_json() for request in emulator.requests])
    if route == ("GET", "/events"):
        return json_reply(200, [list(event) for event in emulator.events])
    if route == ("GET", "/faults"):
        return json_reply(
            200,
            [
                {"target": target, "kind": fault.kind, "on": fault.on, "remaining": remaining}
                for target, fault, remaining in emulator.pending_faults()
            ],
        )
    if route == ("POST", "/faults"):
        return _inject(emulator, incoming)
    if route == ("GET", "/webhooks"):
        deliveries = emulator.webhook_deliveries
        return json_reply(
            200, [{"url": d.url, "body": d.body, "status": d.status} for d in deliveries]
        )
    if route == ("POST", "/webhooks"):
        return _webhooks(emulator, incoming)
    if route == ("POST", "/reset"):
        emulator.reset()
        return json_reply(200, {"ok": True})
    return json_reply(404, {"error": f"unknown control route {incoming.method} {incoming.path}"})


def _inject(emulator: Emulator, incoming: Incoming) -> Reply:
    target = parse_qs(incoming.query).get("provider", [""])[0]
    try:
        fault = Fault.from_json(json.loads(incoming.body or b"{}"))
        emulator.inject(target, fault)
    except ValueError as error:
        return json_reply(400, {"error": str(error)})
    return json_reply(200, {"ok": True})


def _webhooks(emulator: Emulator, incoming: Incoming) -> Reply:
    try:
        repeat = json.loads(incoming.body or b"{}").get("repeat", 1)
    except (ValueError, AttributeError):
        repeat = None
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 10:
        return json_reply(400, {"error": "repeat must be a whole number from 1 to 10"})
    emulator.webhook_repeat = repeat
    return json_reply(200, {"ok": True})
