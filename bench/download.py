"""Download path: one 2K PNG streamed from the emulator's image server to disk by kling-cli's
own code (`kling_cli.download.download_image` with one httpx.AsyncClient, as the engine uses
it), against `curl -o` of the same URL, in the same run, alternating blocks of repetitions.

The emulator runs in a process of its own (`kling emulate`), so its threads never share a GIL
with the code under test. Both write to the same directory on the same filesystem.

    python bench/download.py                 # 200 downloads each (about half a minute)
    python bench/download.py --reps 500 --dir /var/tmp

kling's time per download is everything `download_image` does: request, stream to a `.part`
file, SHA-256, fsync, read the image header back, link into place. curl's is its own
`time_total` (request to last byte written; no fsync), so curl's process start-up is not
counted against it; the wall time of each curl process is shown as well.

Diagnostic rows, to see where kling's time goes: `download_image` with fsync stubbed out (in
this process only), httpx alone streaming the body to nowhere, curl followed by an fsync of its
file (what the same durability costs curl), and `download_image` four at a time on one client,
as the engine fetches a job's images (wall time per download, one figure per block).

Target: kling's throughput >= 0.8x curl's (`time_total`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from _common import banner, emulator_process, median, runware_image_urls, spread, table, verdict

TARGET_RATIO = 0.8
BLOCK = 20  # repetitions per block; kling and curl blocks alternate
PARALLEL = 4  # kling_cli.fetch.MAX_PARALLEL_DOWNLOADS: a job's images download 4 at a time


def require_curl() -> str:
    curl = shutil.which("curl")
    if curl is None:
        sys.exit(
            "curl is not installed, and it is this benchmark's baseline: "
            "install it (e.g. `apt-get install -y curl`) and run again."
        )
    version = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False)
    print(f"# curl found: {curl} ({version.stdout.split(chr(10))[0]})")
    return curl


async def kling_block(
    url: str, directory: Path, reps: int, offset: int, *, fsync: bool = True
) -> list[float]:
    import httpx

    from kling_cli.download import download_image

    times = []
    stub = contextlib.nullcontext() if fsync else mock.patch.object(os, "fsync", lambda fd: None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        await download_image(client, url, directory, "warm")  # the connection, as in a job
        (directory / "warm.png").unlink()
        with stub:
            for index in range(reps):
                start = time.perf_counter()
                saved = await download_image(client, url, directory, f"kling-{offset + index}")
                times.append(time.perf_counter() - start)
                saved.path.unlink()
    return times


async def kling_parallel_block(
    url: str, directory: Path, reps: int, offset: int, parallel: int = PARALLEL
) -> float:
    """The same downloads `parallel` at a time, as the engine runs a job's images: wall time
    per download."""
    import httpx

    from kling_cli.download import download_image

    slots = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        await download_image(client, url, directory, "warm")
        (directory / "warm.png").unlink()

        async def one(index: int) -> None:
            async with slots:
                saved = await download_image(client, url, directory, f"parallel-{offset + index}")
                saved.path.unlink()

        start = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(reps)))
        return (time.perf_counter() - start) / reps


async def httpx_block(url: str, reps: int) -> list[float]:
    """httpx alone: the same request, the body read and dropped."""
    import httpx

    times = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        await client.get(url)
        for _ in range(reps):
            start = time.perf_counter()
            async with client.stream("GET", url) as response:
                async for _chunk in response.aiter_raw(256 * 1024):
                    pass
            times.append(time.perf_counter() - start)
    return times


def curl_block(
    curl: str, url: str, directory: Path, reps: int, offset: int
) -> tuple[list[float], list[float], list[float]]:
    """curl's time_total, its process's wall time, and time_total plus an fsync of the file."""
    transfer, wall, durable = [], [], []
    for index in range(reps):
        target = directory / f"curl-{offset + index}.png"
        start = time.perf_counter()
        completed = subprocess.run(
            [curl, "-sS", "--fail", "-o", str(target), "-w", "%{time_total}", url],
            capture_output=True,
            text=True,
            check=False,
        )
        wall.append(time.perf_counter() - start)
        if completed.returncode != 0:
            sys.exit(f"curl failed: {completed.stderr}")
        transfer.append(float(completed.stdout.strip()))
        start = time.perf_counter()
        with target.open("rb+") as handle:
            os.fsync(handle.fileno())
        durable.append(transfer[-1] + time.perf_counter() - start)
        target.unlink()
    return transfer, wall, durable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="downloads per side")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--size", default="2048x2048", help="image size, WxH (a 2K size)")
    options = parser.parse_args()
    width, height = (int(part) for part in options.size.split("x"))
    banner(f"download path: one {width}x{height} PNG, kling download_image vs curl -o")
    curl = require_curl()
    if importlib.util.find_spec("sniffio") is None:
        print(
            "# note: sniffio is not installed; httpcore then tries `import sniffio` again on "
            "every request (a failed import searches all of sys.path)"
        )
    kling_times: list[float] = []
    no_fsync: list[float] = []
    httpx_times: list[float] = []
    curl_times: list[float] = []
    curl_walls: list[float] = []
    curl_durable: list[float] = []
    parallel_times: list[float] = []  # one per block: wall time / downloads
    with (
        emulator_process(latency=0) as origin,
        tempfile.TemporaryDirectory(prefix="kling-bench-", dir=options.dir) as temporary,
    ):
        directory = Path(temporary)
        url = runware_image_urls(origin, 1, width, height)[0]
        size = len(subprocess.run([curl, "-sS", url], capture_output=True, check=True).stdout)
        print(f"# image: {size} bytes from {url.split('/images/')[0]}; writing to {directory}")
        done = 0
        while done < options.reps:
            reps = min(BLOCK, options.reps - done)
            kling_times += asyncio.run(kling_block(url, directory, reps, done))
            transfer, wall, durable = curl_block(curl, url, directory, reps, done)
            curl_times += transfer
            curl_walls += wall
            curl_durable += durable
            no_fsync += asyncio.run(kling_block(url, directory, reps, done, fsync=False))
            httpx_times += asyncio.run(httpx_block(url, reps))
            parallel_times.append(asyncio.run(kling_parallel_block(url, directory, reps, done)))
            done += reps
        leftovers = [p.name for p in directory.iterdir()]
        if leftovers:
            print(f"# left in the directory (should be empty): {leftovers[:5]}")
    megabytes = size / 1e6

    def row(name: str, times: list[float]) -> list[str]:
        return [
            name,
            f"{median(times) * 1000:.2f}",
            f"{megabytes / median(times):.1f}",
            f"{megabytes * len(times) / sum(times):.1f}",
            spread([t * 1000 for t in times]),
        ]

    print(
        table(
            ["", "ms per download (median)", "MB/s (median)", "MB/s (total)", "spread (ms)"],
            [
                row("kling download_image", kling_times),
                row("curl -o (time_total)", curl_times),
                row("curl -o (process wall)", curl_walls),
                row("diagnostic: kling, fsync stubbed", no_fsync),
                row("diagnostic: httpx alone, no file", httpx_times),
                row("diagnostic: curl + fsync", curl_durable),
                row(f"diagnostic: kling, {PARALLEL} at once (wall/n)", parallel_times),
            ],
        )
    )
    ratio = median(curl_times) / median(kling_times)
    ratio_wall = median(curl_walls) / median(kling_times)
    print(
        f"\nkling / curl throughput: {ratio:.2f}x against curl's time_total, "
        f"{ratio_wall:.2f}x against curl's whole process ({options.reps} downloads each)"
    )
    print(
        f"like for like (both fsynced): {median(curl_durable) / median(kling_times):.2f}x; "
        f"kling without fsync: {median(curl_times) / median(no_fsync):.2f}x"
    )
    print(f"target >= {TARGET_RATIO}x (against time_total): {verdict(ratio >= TARGET_RATIO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
