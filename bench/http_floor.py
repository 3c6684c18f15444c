"""The HTTP floor of a batch item: the CPU a bare httpx client spends on exactly the requests
one `kling batch` item makes against the emulator, and nothing else (no journal, no files,
no naming, no sidecar, no display).

One Runware item at `-n 1` is two requests: the submit, held open until the image exists
(`deliveryMethod: sync`, as `kling batch` sends it), and the image's GET, read to its end.
The client is the one kling builds (`kling_cli.transport.HttpClients`: the same
`ShardedTransport` pools, timeouts and headers), run at the same concurrency by a fixed pool
of workers, on asyncio's own loop (kling's) and, when uvloop is installed (it is not a
dependency of kling: bench/README.md says why), on uvloop's, one after the other. The
emulator runs in a process of its own, as in bench/batch.py; its CPU is counted apart.

    python bench/http_floor.py                              # 3000 items, -j64, 0.25 s
    python bench/http_floor.py --items 5000 --concurrency 256 --latency 2

What kling spends per item above this floor is its own work (journal, files, sidecar,
display); this floor is what no change to kling's own code can go under with this HTTP stack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable

from _common import (
    EMULATOR_KEY,
    banner,
    emulator_server,
    process_cpu_seconds,
    table,
)


def submit_body(number: int) -> list[dict[str, object]]:
    """What kling sends to Runware for one `-n 1 -R 1k` item (kling_cli.providers.runware)."""
    return [
        {
            "taskType": "imageInference",
            "taskUUID": str(uuid.uuid4()),
            "model": "klingai:kling-image@o1",
            "positivePrompt": f"benchmark item {number} a red fox on a snowy ridge",
            "numberResults": 1,
            "outputType": "URL",
            "outputFormat": "PNG",
            "includeCost": True,
            "deliveryMethod": "sync",
            "width": 1024,
            "height": 1024,
        }
    ]


async def run_items(origin: str, items: int, concurrency: int) -> int:
    from kling_cli.transport import HttpClients

    clients = HttpClients.create(concurrency)
    numbers = iter(range(items))
    headers = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    received = 0

    async def worker() -> None:
        nonlocal received
        for number in numbers:
            answer = await clients.api.post(
                f"{origin}/runware/v1", json=submit_body(number), headers=headers
            )
            answer.raise_for_status()
            url = answer.json()["data"][0]["imageURL"]
            async with clients.downloads.stream("GET", url) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    received += len(chunk)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, items))))
    finally:
        await clients.aclose()
    return received


def measure(
    origin: str,
    emulator_pid: int,
    items: int,
    concurrency: int,
    factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> tuple[float, float, float, int]:
    """Wall seconds, this process's CPU seconds, the emulator's CPU seconds, bytes read."""
    emulator_before = process_cpu_seconds(emulator_pid)
    cpu_before, start = time.process_time(), time.perf_counter()
    with asyncio.Runner(loop_factory=factory) as runner:
        received = runner.run(run_items(origin, items, concurrency))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_before
    return wall, cpu, process_cpu_seconds(emulator_pid) - emulator_before, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=1, help="each loop this many times")
    options = parser.parse_args()
    banner(
        f"HTTP floor: {options.items} items (submit + image GET, bare httpx), concurrency "
        f"{options.concurrency}, emulator latency {options.latency:g} s"
    )
    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]] = [("asyncio", None)]
    try:
        import uvloop

        loops.append((f"uvloop {uvloop.__version__}", uvloop.new_event_loop))
    except ImportError:
        print("# uvloop is not installed: asyncio only")
    rows = []
    with emulator_server(options.latency) as (origin, emulator):
        measure(origin, emulator.pid, min(200, options.items), options.concurrency, None)  # warm
        for _ in range(options.rounds):
            for name, factory in loops:
                wall, cpu, emulator_cpu, received = measure(
                    origin, emulator.pid, options.items, options.concurrency, factory
                )
                ideal = -(-options.items // options.concurrency) * options.latency
                rows.append(
                    [
                        name,
                        str(options.items),
                        f"{wall:.1f}",
                        f"{wall / ideal:.2f}x",
                        f"{cpu / options.items * 1000:.2f}",
                        f"{emulator_cpu / options.items * 1000:.2f}",
                        f"{received / options.items / 1e3:.0f}",
                    ]
                )
    headers = ["event loop", "items", "wall s", "wall / ideal", "CPU ms/item (client)"]
    headers += ["emulator CPU ms/item", "KB per image"]
    print(table(headers, rows))
    print(f"(load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
