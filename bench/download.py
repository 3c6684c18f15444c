"""Download path: one 2K PNG streamed from the emulator's image server to disk by kling-cli's
own code (`kling_cli.download.download_image` with one httpx.AsyncClient, as the engine uses
it), against `curl -o` of the same URL, in the same run, interleaved blocks of repetitions.

The emulator runs in a process of its own (`kling emulate`), so its threads never share a GIL
with the code under test. Both write to the same directory on the same filesystem.

    python bench/download.py                 # 400 downloads each (about a minute)
    python bench/download.py --reps 1000 --dir /var/tmp
    python bench/download.py --candidate /tmp/before   # another kling_cli, same rounds

kling's time per download is everything `download_image` does: request, stream to a `.part`
file, SHA-256, fsync, the whole-file completeness check, link into place. curl's is its own
`time_total` (request to last byte written; no fsync), so curl's process start-up is not
counted against it; the wall time of each curl process is shown as well.

The verdict is like for like: curl's `time_total` plus an fsync of its file, against kling.
Every block of `--block` repetitions runs each variant once, in a shuffled order, so the load
of a shared machine falls on all of them alike; the ratio is also computed block by block
(each block's medians), and the median and interquartile range of those ratios are shown, so
a verdict is not one lucky run. The raw ratio (against curl without fsync) is reported too.

Diagnostic rows, to see where kling's time goes: `download_image` with fsync stubbed out (in
this process only), httpx alone streaming the body to nowhere, and `download_image` four at a
time on one client, as the engine fetches a job's images (wall time per download, one figure
per block). `--candidate DIR` also times `DIR/kling_cli/download.py` (e.g. the code before a
change: `git archive main kling_cli | tar -x -C /tmp/before`) in the same blocks.
`bench/download_steps.py` times each step of the path apart.

Target: kling's throughput >= 0.8x curl's, like for like (both fsynced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from _common import banner, emulator_process, median, runware_image_urls, spread, table, verdict

TARGET_RATIO = 0.8
BLOCK = 10  # repetitions per block; every variant runs once per block, in a shuffled order
PARALLEL = 4  # kling_cli.fetch.MAX_PARALLEL_DOWNLOADS: a job's images download 4 at a time

Download = Callable[..., Any]


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


def load_candidate(tree: str) -> ModuleType:
    """`TREE/kling_cli/download.py` as a module of its own name, beside this process's
    kling_cli (whose errors and retry modules it imports)."""
    path = Path(tree) / "kling_cli" / "download.py"
    spec = importlib.util.spec_from_file_location("candidate_download", path)
    if spec is None or spec.loader is None:
        sys.exit(f"no kling_cli/download.py under {tree}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def one_download(
    download: Download, client: Any, url: str, directory: Path, stem: str, *, fsync: bool = True
) -> tuple[float, float]:
    """Wall time of one download, and the CPU time this thread spent on it (what the load of
    other processes and the disk's queue disturb least)."""
    stub = contextlib.nullcontext() if fsync else mock.patch.object(os, "fsync", lambda fd: None)
    with stub:
        start, cpu = time.perf_counter(), time.thread_time()
        saved = await download(client, url, directory, stem)
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
    saved.path.unlink()
    return elapsed, cpu


async def parallel_downloads(
    download: Download, client: Any, url: str, directory: Path, reps: int, tag: str
) -> float:
    """`reps` downloads `PARALLEL` at a time, as the engine runs a job's images: wall time
    per download."""
    slots = asyncio.Semaphore(PARALLEL)

    async def one(index: int) -> None:
        async with slots:
            (await download(client, url, directory, f"{tag}-{index}")).path.unlink()

    start = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(reps)))
    return (time.perf_counter() - start) / reps


async def httpx_alone(client: Any, url: str) -> tuple[float, float]:
    """httpx alone: the same request, the body read and dropped."""
    start, cpu = time.perf_counter(), time.thread_time()
    async with client.stream("GET", url) as response:
        async for _chunk in response.aiter_raw():
            pass
    return time.perf_counter() - start, time.thread_time() - cpu


def curl_once(curl: str, url: str, target: Path) -> tuple[float, float, float]:
    """curl's time_total, its process's wall time, and time_total plus an fsync of the file."""
    start = time.perf_counter()
    completed = subprocess.run(
        [curl, "-sS", "--fail", "-o", str(target), "-w", "%{time_total}", url],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(f"curl failed: {completed.stderr}")
    transfer = float(completed.stdout.strip())
    start = time.perf_counter()
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())
    durable = transfer + time.perf_counter() - start
    target.unlink()
    return transfer, wall, durable


async def measure(
    curl: str,
    url: str,
    directory: Path,
    options: argparse.Namespace,
    variants: dict[str, Download],
) -> dict[str, list[list[float]]]:
    """Round after round, one download of each variant in a shuffled order (neighbours in
    time share the machine's load); every `--block` rounds, one block of parallel downloads.
    Each variant keeps its own client, warmed up once, as a job's engine does."""
    import httpx

    shuffle = random.Random(options.seed).shuffle
    samples: dict[str, list[list[float]]] = {}  # variant: one list of times per block
    clients = {
        name: httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) for name in variants
    }
    clients["httpx"] = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
    try:
        for name, download in variants.items():
            (await download(clients[name], url, directory, f"warm-{name}")).path.unlink()
        await clients["httpx"].get(url)
        for round_number in range(options.reps):
            if round_number % options.block == 0:
                for blocks in samples.values():
                    blocks.append([])
            steps = [*variants, "httpx", "curl"]
            shuffle(steps)
            for step in steps:
                stem = f"{step.replace(' ', '-')}-{round_number}"
                if step == "curl":
                    times = curl_once(curl, url, directory / f"{stem}.png")
                    for name, value in zip(
                        ("curl", "curl wall", "curl + fsync"), times, strict=True
                    ):
                        samples.setdefault(name, [[]])[-1].append(value)
                    continue
                if step == "httpx":
                    value, cpu = await httpx_alone(clients["httpx"], url)
                else:
                    download = variants[step]
                    fsync = step != "no fsync"
                    value, cpu = await one_download(
                        download, clients[step], url, directory, stem, fsync=fsync
                    )
                samples.setdefault(f"{step} cpu", [[]])[-1].append(cpu)
                samples.setdefault(step, [[]])[-1].append(value)
            if round_number % options.block == options.block - 1:
                value = await parallel_downloads(
                    variants["kling"],
                    clients["kling"],
                    url,
                    directory,
                    options.block,
                    f"p{round_number}",
                )
                samples.setdefault("parallel", [[]])[-1].append(value)
    finally:
        for client in clients.values():
            await client.aclose()
    return samples


def low_decile(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[0]


def quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}x" if values else "-"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.2f}x (IQR {q1:.2f}-{q3:.2f}, {len(values)} blocks)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=400, help="downloads per variant")
    parser.add_argument("--block", type=int, default=BLOCK, help="repetitions per block")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--size", default="2048x2048", help="image size, WxH (a 2K size)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the block order")
    parser.add_argument(
        "--candidate",
        metavar="DIR",
        help="also time DIR/kling_cli/download.py (e.g. the code before a change)",
    )
    options = parser.parse_args()
    width, height = (int(part) for part in options.size.split("x"))
    banner(f"download path: one {width}x{height} PNG, kling download_image vs curl -o")
    curl = require_curl()
    from kling_cli.download import download_image

    variants: dict[str, Download] = {"kling": download_image, "no fsync": download_image}
    if options.candidate:
        variants["candidate"] = load_candidate(options.candidate).download_image
    with (
        emulator_process(latency=0) as origin,
        tempfile.TemporaryDirectory(prefix="kling-bench-", dir=options.dir) as temporary,
    ):
        directory = Path(temporary)
        url = runware_image_urls(origin, 1, width, height)[0]
        size = len(subprocess.run([curl, "-sS", url], capture_output=True, check=True).stdout)
        print(f"# image: {size} bytes from {url.split('/images/')[0]}; writing to {directory}")
        print(
            f"# {options.reps} rounds, one download of each variant per round in a shuffled "
            f"order; blocks of {options.block} rounds"
        )
        samples = asyncio.run(measure(curl, url, directory, options, variants))
        leftovers = [p.name for p in directory.iterdir()]
        if leftovers:
            print(f"# left in the directory (should be empty): {leftovers[:5]}")
    report(samples, list(variants), size, options.reps)
    return 0


def report(
    samples: dict[str, list[list[float]]], variants: list[str], size: int, reps: int
) -> None:
    megabytes = size / 1e6
    pooled = {name: [t for block in blocks for t in block] for name, blocks in samples.items()}

    def row(label: str, name: str) -> list[str]:
        times = pooled[name]
        return [
            label,
            f"{median(times) * 1000:.2f}",
            f"{megabytes / median(times):.1f}",
            f"{megabytes * len(times) / sum(times):.1f}",
            spread([t * 1000 for t in times]),
        ]

    rows = [
        row("kling download_image", "kling"),
        row("curl -o (time_total)", "curl"),
        row("curl -o + fsync (like for like)", "curl + fsync"),
        row("curl -o (process wall)", "curl wall"),
    ]
    if "candidate" in pooled:
        rows.append(row("candidate download_image", "candidate"))
    rows += [
        row("diagnostic: kling, fsync stubbed", "no fsync"),
        row("diagnostic: httpx alone, no file", "httpx"),
        row(f"diagnostic: kling, {PARALLEL} at once (wall/n)", "parallel"),
    ]
    rows.append(["CPU of this thread per download (median, ms):", "", "", "", ""])
    for name in [*variants, "httpx"]:
        cpu = [t * 1000 for t in pooled[f"{name} cpu"]]
        rows.append([f"  {name}", f"{median(cpu):.3f}", "", "", spread(cpu)])
    print(
        table(
            ["", "ms per download (median)", "MB/s (median)", "MB/s (total)", "spread (ms)"], rows
        )
    )

    def ratios(numerator: str, denominator: str) -> tuple[float, list[float]]:
        whole = median(pooled[numerator]) / median(pooled[denominator])
        by_block = [
            median(top) / median(bottom)
            for top, bottom in zip(samples[numerator], samples[denominator], strict=True)
        ]
        return whole, by_block

    print(f"\nkling / curl throughput ({reps} downloads each; per block: median and IQR):")
    like, like_blocks = ratios("curl + fsync", "kling")
    raw, raw_blocks = ratios("curl", "kling")
    lines = [
        ("like for like (both fsynced)", like, like_blocks),
        ("raw (curl's time_total, no fsync)", raw, raw_blocks),
        ("kling without fsync / curl", *ratios("curl", "no fsync")),
        ("against curl's whole process", *ratios("curl wall", "kling")),
    ]
    if "candidate" in pooled:
        lines += [
            ("candidate, like for like", *ratios("curl + fsync", "candidate")),
            ("candidate, raw", *ratios("curl", "candidate")),
            ("kling / candidate (speed-up)", *ratios("candidate", "kling")),
        ]
    for label, whole, by_block in lines:
        print(f"  {label}: {whole:.2f}x; by block {quartiles(by_block)}")
    # The fastest tenth of each side: what a download costs when no other process is in its
    # way, the least disturbed figure on a loaded machine.
    low = low_decile(pooled["curl + fsync"]) / low_decile(pooled["kling"])
    low_raw = low_decile(pooled["curl"]) / low_decile(pooled["kling"])
    print(f"  10th percentiles: like for like {low:.2f}x, raw {low_raw:.2f}x")
    if "candidate" in pooled:
        low_candidate = low_decile(pooled["curl + fsync"]) / low_decile(pooled["candidate"])
        print(f"  10th percentiles, candidate: like for like {low_candidate:.2f}x")
    met = like >= TARGET_RATIO and median(like_blocks) >= TARGET_RATIO
    print(
        f"target >= {TARGET_RATIO}x like for like (pooled and median block): {verdict(met)}; "
        f"raw ratio {raw:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
