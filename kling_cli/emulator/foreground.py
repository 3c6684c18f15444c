"""`kling emulate`: one emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable

from kling_cli.emulator import control
from kling_cli.emulator.core import Emulator


def serve(
    port: int,
    latency: float,
    log: Callable[[str], None],
    configure: Callable[[Emulator], None] = lambda emulator: None,
) -> None:
    """Run an emulator in the foreground until Ctrl-C: the API on `port`, images on `port+1`
    (both ephemeral when `port` is 0); `configure` sets its faults once it runs."""
    emulator = Emulator(latency=latency, api_port=port, image_port=port + 1 if port else 0)
    with emulator:
        configure(emulator)
        lines = [f"Kling provider emulator (API key {emulator.api_key!r}, latency {latency:g}s)"]
        for name in emulator.providers:
            lines.append(f"  {name:<12}{emulator.base_url(name)}")
            # The variable to set beside each extra host: without it, kling uploads to the
            # provider's real storage host (kling_cli.config reads KLING_<ID>_<SERVICE>_URL).
            lines += [
                f"  {'':<12}{service}: {url}  (KLING_{name.upper()}_{service.upper()}_URL)"
                for service, url in emulator.service_urls(name).items()
            ]
        lines.append(f"  {'images':<12}{emulator.image_origin}")
        lines.append(f"  {'control':<12}{emulator.api_origin}{control.CONTROL_PREFIX}")
        log("\n".join(lines))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
