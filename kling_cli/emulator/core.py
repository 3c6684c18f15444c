"""The Emulator: an API server hosting every provider under /<provider_id>, and an image
server on a second origin that serves the generated outputs."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from kling_cli.emulator import control
from kling_cli.emulator.fault_replies import TRANSPORT_FAULTS, apply_fault, range_start, text_reply
from kling_cli.emulator.faults import IMAGES_TARGET, Fault, FaultQueue
from kling_cli.emulator.images import CONTENT_TYPES, ImageStore, IssuedImage, encoded
from kling_cli.emulator.media import MEDIA_PREFIX, MediaFile, MediaStore
from kling_cli.emulator.provider import ProviderApi, ProviderContext, ProviderRequest, Settings
from kling_cli.emulator.recording import RecordedRequest, RequestLog, ServerName
from kling_cli.emulator.registry import PROVIDER_APIS
from kling_cli.emulator.server import (
    EmulatorHttpServer,
    Incoming,
    Reply,
    json_reply,
    require_loopback,
)
from kling_cli.emulator.tasks import Event
from kling_cli.emulator.webhooks import Delivery, WebhookSender

EMULATOR_API_KEY = "emulator-key"


class Emulator:
    def __init__(
        self,
        latency: float = 1.0,
        api_key: str = EMULATOR_API_KEY,
        host: str = "127.0.0.1",
        api_port: int = 0,
        image_port: int = 0,
    ) -> None:
        self._host = require_loopback(host)
        self._api_port = api_port
        self._image_port = image_port
        self._settings = Settings(api_key=api_key, latency=latency)
        self._images = ImageStore()
        self._faults = FaultQueue()
        self._log = RequestLog()
        self._media = MediaStore()
        self._webhooks = WebhookSender()
        context = ProviderContext(
            self._settings, self._images, self._faults, self._media, self._webhooks
        )
        self._apis: dict[str, ProviderApi[Any]] = {
            api.provider_id: api(context) for api in PROVIDER_APIS
        }
        self._api_server: EmulatorHttpServer | None = None
        self._image_server: EmulatorHttpServer | None = None
        self._down: set[str] = set()
        self._refusing_socket: socket.socket | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._api_server is not None:
            return self
        api_server = EmulatorHttpServer(self._host, self._api_port, self._dispatch_api)
        try:
            image_server = EmulatorHttpServer(self._host, self._image_port, self._dispatch_image)
        except OSError:
            api_server.server_close()
            raise
        self._images.origin = image_server.origin
        api_server.serve_in_background("kling-emulator-api")
        image_server.serve_in_background("kling-emulator-images")
        self._api_server, self._image_server = api_server, image_server
        return self

    def stop(self) -> None:
        for server in (self._api_server, self._image_server):
            if server is not None:
                server.stop()
        self._api_server = self._image_server = None
        if self._refusing_socket is not None:
            self._refusing_socket.close()
            self._refusing_socket = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._apis)

    @property
    def api_origin(self) -> str:
        return self._running(self._api_server).origin

    @property
    def image_origin(self) -> str:
        return self._running(self._image_server).origin

    def base_url(self, provider: str) -> str:
        """Where a client reaches the provider; for one that is down, a loopback port nothing
        listens on, so its requests are refused before anything is sent."""
        api = self._api(provider)
        origin = self.api_origin
        if api.provider_id in self._down:
            origin = f"http://{self._host}:{self._refusing_port()}"
        return f"{origin}/{api.provider_id}{api.base_path}"

    def _refusing_port(self) -> int:
        if self._refusing_socket is None:
            # Bound and never listening: every connection is refused, and the port stays ours
            # until stop(), so no other server (another emulator, a parallel test) is handed it.
            probe = socket.socket()
            probe.bind((self._host, 0))
            self._refusing_socket = probe
        return int(self._refusing_socket.getsockname()[1])

    def service_urls(self, provider: str) -> dict[str, str]:
        """Where the provider's other hosts (file storage...) are emulated."""
        api = self._api(provider)
        return {
            name: f"{self.api_origin}/{api.provider_id}{path}"
            for name, path in api.service_paths.items()
        }

    # -- settings -----------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        return self._settings.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._settings.latency = seconds  # applies to tasks created from now on

    @property
    def cost_per_image(self) -> float | None:
        return self._settings.cost_per_image

    @cost_per_image.setter
    def cost_per_image(self, usd: float | None) -> None:
        self._settings.cost_per_image = usd  # what Runware reports; None: its list price

    @property
    def webhook_repeat(self) -> int:
        """How many times each webhook body is delivered (2 proves a receiver dedupes)."""
        return self._webhooks.repeat

    @webhook_repeat.setter
    def webhook_repeat(self, times: int) -> None:
        self._webhooks.repeat = times

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return self._webhooks.deliveries

    @property
    def api_key(self) -> str:
        return self._settings.api_key

    @api_key.setter
    def api_key(self, key: str) -> None:
        self._settings.api_key = key

    # -- observation and faults ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._log.snapshot()

    def uploaded_files(self, provider: str) -> list[MediaFile]:
        """The reference files a client has uploaded to a provider, oldest first."""
        return self._api(provider).uploaded_files()

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def events(self) -> list[Event]:
        """(time.time(), "created" | "completed" | "failed", provider, task id), oldest first."""
        return sorted(event for api in self._apis.values() for event in api.events())

    def inject(self, target: str, fault: Fault) -> None:
        """Arm a fault for a provider id's requests, or "images" for the image server."""
        if target != IMAGES_TARGET:
            api = self._api(target)
            if fault.final_state is not None and fault.final_state not in api.final_states:
                words = ", ".join(api.final_states) or "none"
                raise ValueError(
                    f"{target} tasks cannot end as {fault.final_state!r}; its final states: {words}"
                )
        self._faults.inject(target, fault)

    def set_down(self, provider: str, down: bool = True) -> None:
        """A provider that is down: its base URL (read after this) refuses connections."""
        provider = self._api(provider).provider_id
        (self._down.add if down else self._down.discard)(provider)

    def reject_key(self, provider: str, rejected: bool = True) -> None:
        """A provider that refuses the key, with its documented answer to a wrong key."""
        provider = self._api(provider).provider_id
        keys = self._settings.rejected_keys
        (keys.add if rejected else keys.discard)(provider)

    def out_of_credits_after(self, provider: str, submits: int) -> None:
        """An account whose credit pays for `submits` submits: every later one is refused
        with the provider's out-of-credits answer."""
        self.inject(provider, Fault("out_of_credits", times=None, after=submits))

    def slow_down(self, provider: str, seconds: float) -> None:
        """Every submit to the provider is answered `seconds` late."""
        self.inject(provider, Fault("slow", times=None, delay=seconds))

    def pending_faults(self) -> list[tuple[str, Fault, int | None]]:
        return self._faults.pending()

    def reset(self) -> None:
        """Forget requests, faults and tasks. Issued image URLs keep working."""
        self._log.clear()
        self._faults.clear()
        self._down.clear()
        self._settings.rejected_keys.clear()
        for api in self._apis.values():
            api.reset()
            self._media.clear(api.provider_id)

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch_api(self, incoming: Incoming) -> Reply:
        if control.is_control_path(incoming.path):
            return control.handle(self, incoming)  # not recorded: it is not provider traffic
        mount, _, rest = incoming.path.lstrip("/").partition("/")
        api = self._apis.get(mount)
        if api is None:
            self._record("api", None, incoming.path, incoming)
            return json_reply(
                404,
                {
                    "error": f"no emulated provider at {incoming.path}",
                    "providers": list(self._apis),
                },
            )
        path = "/" + rest if rest or incoming.path.endswith("/") else ""
        self._record("api", api.provider_id, path, incoming)
        if path.startswith(MEDIA_PREFIX):  # uploaded files, public like a CDN (media.py)
            return self._media_reply(api.provider_id, path, incoming)
        request = ProviderRequest(
            incoming.method, path, incoming.query, incoming.headers, incoming.body
        )
        phase = api.phase_of(request)
        fault = self._faults.take([api.provider_id], phase, TRANSPORT_FAULTS) if phase else None
        if fault is None:
            return api.handle(request)
        return apply_fault(
            fault,
            answer=lambda: api.handle(request),
            rate_limited=lambda: api.rate_limited(request),
            server_error=lambda status: api.server_error(request, status),
            out_of_credits=lambda: api.out_of_credits(request),
        )

    def _media_reply(self, provider: str, path: str, incoming: Incoming) -> Reply:
        """A signed PUT of an upload is a "storage" request for faults; reads are not."""

        def answer() -> Reply:
            return self._media.handle(
                incoming.method, path, incoming.query, incoming.headers, incoming.body
            )

        fault = (
            self._faults.take([provider], "storage", TRANSPORT_FAULTS)
            if incoming.method == "PUT"
            else None
        )
        if fault is None:
            return answer()
        return apply_fault(
            fault,
            answer=answer,
            rate_limited=lambda: text_reply(429, "Slow down"),
            server_error=lambda status: text_reply(status, "Internal error"),
            out_of_credits=lambda: text_reply(402, "Payment required"),
        )

    def _dispatch_image(self, incoming: Incoming) -> Reply:
        image = self._images.find(incoming.path)
        self._record("images", image.provider if image else None, incoming.path, incoming)
        targets = [IMAGES_TARGET] if image is None else [IMAGES_TARGET, image.provider]
        fault = self._faults.take(targets, "download", TRANSPORT_FAULTS)
        if fault is None:
            return self._image_reply(incoming, image)
        if fault.kind == "redirect_to_other_host":
            port = self._running(self._image_server).origin.rsplit(":", 1)[1]
            location = f"http://localhost:{port}{incoming.path}"
            return Reply(302, b"", headers={"Location": location}, content_type="text/plain")
        return apply_fault(
            fault,
            answer=lambda: self._image_reply(incoming, image),
            rate_limited=lambda: text_reply(429, "Too many requests"),
            server_error=lambda status: text_reply(status, "Internal server error"),
            out_of_credits=lambda: text_reply(402, "Payment required"),
        )

    def _image_reply(self, incoming: Incoming, image: IssuedImage | None) -> Reply:
        # The image origin never asks for credentials (like a CDN); it only records them.
        if incoming.method not in ("GET", "HEAD"):
            return text_reply(405, "Method not allowed")
        if image is None:
            return text_reply(404, "Not found")
        body = encoded(image)
        content_type = CONTENT_TYPES[image.spec.format]
        start = range_start(incoming.headers.get("range"), len(body))
        if start is None:
            return Reply(200, body, headers={"Accept-Ranges": "bytes"}, content_type=content_type)
        # Like a CDN: `Range: bytes=N-` resumes an interrupted download.
        content_range = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return Reply(
            206, body[start:], headers={"Content-Range": content_range}, content_type=content_type
        )

    def _record(
        self, server: ServerName, provider: str | None, path: str, incoming: Incoming
    ) -> None:
        self._log.append(
            RecordedRequest(
                server=server,
                provider=provider,
                method=incoming.method,
                path=path,
                query=incoming.query,
                headers=incoming.headers,
                body=incoming.body,
                time=incoming.received_at,
            )
        )

    def _api(self, provider: str) -> ProviderApi[Any]:
        try:
            return self._apis[provider]
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}; emulated: {self.providers}") from None

    @staticmethod
    def _running(server: EmulatorHttpServer | None) -> EmulatorHttpServer:
        if server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return server
