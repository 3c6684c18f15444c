"""Where a download's time goes: each step of `kling_cli.download.download_image`, timed apart
over many downloads of one 2K PNG from the emulator (in its own process); median and
interquartile range per step. Or, with `--profile`, the real function under cProfile.

    python bench/download_steps.py                  # 500 downloads, wall clock
    python bench/download_steps.py --clock cpu      # this thread's CPU time per step
    python bench/download_steps.py --profile 30     # cProfile, the 30 costliest functions

The steps are the function's own calls, in its order, with a timer between them (the error
handling left out): keep them in step with `download_image` when it changes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import banner, emulator_process, runware_image_urls, table


async def steps(url: str, directory: Path, reps: int, clock: Callable[[], float]) -> dict:
    import httpx

    from kling_cli import download

    times: dict[str, list[float]] = {}

    def lap(name: str, start: float) -> float:
        now = clock()
        times.setdefault(name, []).append(now - start)
        return now

    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        await client.get(url)
        for index in range(reps):
            stem = f"steps-{index}"
            begin = now = clock()
            download._remove_orphans(directory, stem)
            part = directory / f".{stem}.{os.getpid()}.part"
            digest = hashlib.sha256()
            now = lap("orphans, names and hash set up", now)
            limits = httpx.USE_CLIENT_DEFAULT
            async with client.stream("GET", url, headers=None, timeout=limits) as response:
                now = lap("request sent, response headers in", now)
                content_type = response.headers.get("content-type", "")
                content_type.split(";")[0].strip().lower()
                announced = download._expected_size(response, False)
                now = lap("header checks", now)
                fd = download._open_part(part, directory, append=False)
                now = lap("open .part (O_CREAT|O_TRUNC|O_CLOEXEC)", now)
                size, receive, write, sha = 0, 0.0, 0.0, 0.0
                chunks = response.aiter_raw()
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    t1 = clock()
                    size += len(chunk)
                    download._write_all(fd, chunk)
                    t2 = clock()
                    digest.update(chunk)
                    t3 = clock()
                    receive, write, sha = receive + t1 - now, write + t2 - t1, sha + t3 - t2
                    now = t3
                receive += clock() - now
                for name, value in (
                    ("body: receiving (httpx)", receive),
                    ("body: write", write),
                    ("body: SHA-256", sha),
                ):
                    times.setdefault(name, []).append(value)
                now = clock()
                os.fsync(fd)
                now = lap("fsync", now)
                os.close(fd)
                now = lap("close", now)
                assert announced == size
            now = lap("response closed", now)
            sha256 = digest.hexdigest()
            now = lap("hexdigest", now)
            download.check_complete(part, size, url)
            now = lap("completeness check (Pillow)", now)
            final = download._place(part, directory, stem, "png", placement="keep", sha256=sha256)
            now = lap("link into place", now)
            part.unlink(missing_ok=True)
            now = lap("unlink .part", now)
            times.setdefault("TOTAL", []).append(now - begin)
            final.unlink()
    return times


async def profiled(url: str, directory: Path, reps: int) -> cProfile.Profile:
    import httpx

    from kling_cli.download import download_image

    profile = cProfile.Profile()
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        (await download_image(client, url, directory, "warm")).path.unlink()
        profile.enable()
        for index in range(reps):
            (await download_image(client, url, directory, f"profiled-{index}")).path.unlink()
        profile.disable()
    return profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=500, help="downloads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile: the N costliest")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    options = parser.parse_args()
    banner("download path, step by step: one 2048x2048 PNG")
    clock = time.thread_time if options.clock == "cpu" else time.perf_counter
    with (
        emulator_process(latency=0) as origin,
        tempfile.TemporaryDirectory(prefix="kling-bench-", dir=options.dir) as temporary,
    ):
        directory = Path(temporary)
        url = runware_image_urls(origin, 1, 2048, 2048)[0]
        if options.profile:
            profile = asyncio.run(profiled(url, directory, options.reps))
            stats = pstats.Stats(profile).sort_stats("tottime")
            stats.print_stats(options.profile)
            return 0
        times = asyncio.run(steps(url, directory, options.reps, clock))
    rows = []
    for name, values in times.items():
        q1, q2, q3 = statistics.quantiles([v * 1000 for v in values], n=4, method="inclusive")
        rows.append([name, f"{q2:.3f}", f"{q3 - q1:.3f}"])
    print(f"# {options.reps} downloads, {options.clock} clock")
    print(table(["step", "median ms", "IQR ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
