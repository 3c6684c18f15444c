"""Batch throughput: `kling batch` on a JSONL manifest of 200 items x 4 images at 2K against an
emulator with 2 s latency, concurrency 32; then 1000 items, to see that memory stays flat.

Baseline, in the same run: the same 200 items as 200 `kling generate` processes under
`xargs -P 32`. Ideal: ceil(items / 32) x latency + transfer, where transfer is the time the
same emulator takes to serve all the run's images (items x 4) to `curl --parallel` with 32
connections, measured in this run (curl is efficient, so this is the server's own floor).

The emulator runs in a process of its own (`kling emulate`). Each run gets a fresh
KLING_CONFIG_DIR (journal) and output directory. Peak RSS of `kling batch` comes from
wait4() (exact); for the xargs baseline, whose memory is spread over many processes, the
resident sets of the whole process tree are summed every 0.2 s and the peak is shown.

    python bench/batch.py                      # 200 and 1000 items + the baseline (~4 min)
    python bench/batch.py --items 200 --scale-items 0 --no-baseline
    python bench/batch.py --items 3000 --scale-items 0 --no-baseline --images 1 \
        --resolution 1k --concurrency 256 --pool-shard 100000   # one pool per client
    python bench/batch.py --items 1000 --scale-items 10000 --no-baseline --images 1 \
        --resolution 1k --concurrency 64 --latency 0.25 --no-report   # memory flat?
    python bench/batch.py --items 5000 --scale-items 0 --no-baseline --images 1 \
        --resolution 1k --concurrency 64 --profile cprofile       # where kling's CPU goes

CPU is counted apart for kling (the `kling batch` process: user + system from wait4()) and
for the emulator (its own process, from /proc), per item; the emulator must keep up, and on
a shared machine both compete for the same cores. `--profile cprofile` runs kling under
cProfile and prints the top functions; `--profile tracemalloc` prints what Python holds
when the run ends (before the summary and manifest.json), by line, and its traced peak.

Targets: wall <= 1.2x ideal; peak RSS <= 150 MB and flat from 200 to 1000 items (peak at
1000 within 10% of the peak at 200); CPU time reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    EMULATOR_KEY,
    banner,
    describe_policy,
    emulator_server,
    kling_command,
    kling_executable,
    parse_policy,
    process_cpu_seconds,
    process_rss_bytes,
    table,
    verdict,
)

CONCURRENCY = 32
IMAGES_PER_ITEM = 4
RESOLUTION = "2k"
PROFILE_OUT: str | None = None
TARGET_IDEAL_RATIO = 1.2
TARGET_RSS_MB = 150.0
FLAT_TOLERANCE = 0.10
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Result:
    label: str
    items: int
    wall: float
    cpu: float
    peak_rss_mb: float
    rss_note: str
    images: int
    exit_code: int
    emulator_cpu: float = 0.0


class TreeRss:
    """Samples the summed resident set of a process and all its descendants."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval)

    def sample(self) -> int:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
        total, todo = 0, [self.root]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/statm") as handle:
                    total += int(handle.read().split()[1]) * PAGE
            except OSError:
                pass
            todo += children.get(pid, [])
        return total


def run_measured(
    label: str, argv: list[str], env: dict[str, str], workdir: Path, items: int, output: Path
) -> Result:
    log = (workdir / f"{label.replace(' ', '-')}.log").open("wb")
    before = os.times()
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    with TreeRss(process.pid) as sampler:
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    after = os.times()
    log.close()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    images = sum(1 for _ in output.rglob("*.png")) if output.exists() else 0
    if process.returncode != 0 or images != items * IMAGES_PER_ITEM:
        tail = Path(log.name).read_text(errors="replace")[-2000:]
        print(f"! {label}: exit {process.returncode}, {images} images; log tail:\n{tail}")
    # ru_maxrss is in KiB on Linux: exact for a single process; for xargs it is only its own.
    single = usage.ru_maxrss * 1024
    if label.startswith("kling batch"):
        peak, note = single, f"wait4 (tree sampled: {sampler.peak / 1e6:.0f} MB)"
    else:
        peak, note = sampler.peak, "sum over the process tree, sampled"
    return Result(label, items, wall, cpu, peak / 1e6, note, images, process.returncode or 0)


# Runs `kling` with another pool shard size (kling_cli.transport.POOL_SHARD_CONNECTIONS), to
# compare pool shapes in one session; a size >= --concurrency is one pool per client, as
# before the shards. For experiments only.
SHARD_SHIM = """
import sys
import kling_cli.transport
kling_cli.transport.POOL_SHARD_CONNECTIONS = int(sys.argv.pop(1))
from kling_cli.cli import main
sys.argv[0] = "kling"
sys.exit(main())
"""

# Runs `kling` under a profiler (`--profile`), writing what it found to the path after the
# profiler's name. For experiments only: profiling slows kling down.
PROFILE_SHIM = """
import sys
kind, report = sys.argv.pop(1), sys.argv.pop(1)
sys.argv[0] = "kling"
from kling_cli.cli import main
if kind == "cprofile":
    import cProfile, pstats, time
    # The process's CPU clock, not wall time: on a shared machine, waits and other programs'
    # turns would otherwise swamp what kling itself spends.
    profiler = cProfile.Profile(time.process_time)
    try:
        code = profiler.runcall(main)
    finally:
        profiler.dump_stats(report + ".pstats")
        with open(report, "w") as out:
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
    sys.exit(code)
import tracemalloc
import kling_cli.batch_run as batch_run
tracemalloc.start(8)
execute = batch_run.execute_batch
def traced(*args, **kwargs):
    outcome = execute(*args, **kwargs)
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    with open(report, "w") as out:
        out.write(f"traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB\\n")
        for stat in snapshot.statistics("lineno")[:25]:
            out.write(f"{stat}\\n")
        out.write("\\nby traceback (top 8):\\n")
        for stat in snapshot.statistics("traceback")[:8]:
            out.write(f"{stat}\\n" + "\\n".join(stat.traceback.format()[-8:]) + "\\n\\n")
    return outcome
batch_run.execute_batch = traced
sys.exit(main())
"""


def base_env(origin: str, config_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("KLING_"):
            del env[name]
    env.update(
        KLING_CONFIG_DIR=str(config_dir),
        KLING_RUNWARE_BASE_URL=f"{origin}/runware/v1",
        KLING_RUNWARE_API_KEY=EMULATOR_KEY,
    )
    return env


def prompts(count: int) -> list[str]:
    return [f"benchmark item {number} a red fox on a snowy ridge" for number in range(count)]


def run_batch(
    origin: str,
    workdir: Path,
    items: int,
    policy: dict[str, float],
    pool_shard: int | None,
    *,
    report: bool = True,
    profile: str | None = None,
) -> Result:
    run_dir = workdir / f"batch-{items}"
    run_dir.mkdir()
    manifest = run_dir / "items.jsonl"
    lines = [
        json.dumps({"id": f"item-{number}", "prompt": prompt})
        for number, prompt in enumerate(prompts(items))
    ]
    manifest.write_text("\n".join(lines) + "\n")
    output = run_dir / "out"
    command = kling_command(policy)
    if pool_shard is not None:
        command = [sys.executable, "-c", SHARD_SHIM, str(pool_shard)]
    profile_report = workdir / f"profile-{profile}-{items}.txt"
    if profile is not None:
        command = [sys.executable, "-c", PROFILE_SHIM, profile, str(profile_report)]
    argv = [*command, "batch", str(manifest), "-p", "runware"]
    argv += ["-n", str(IMAGES_PER_ITEM), "-R", RESOLUTION, "--concurrency", str(CONCURRENCY)]
    argv += ["-o", str(output)] + ([] if report else ["--no-report"])
    env = base_env(origin, run_dir / "config")
    result = run_measured(f"kling batch {items}", argv, env, workdir, items, output)
    if profile is not None and profile_report.exists():
        print(f"\n## {profile}, {items} items\n{profile_report.read_text()}")
        raw = profile_report.with_name(profile_report.name + ".pstats")
        if PROFILE_OUT is not None and raw.exists():
            shutil.copy(raw, PROFILE_OUT)
    manifest_json = output / "manifest.json"
    if manifest_json.exists():
        entries = json.loads(manifest_json.read_text())["items"]
        if len(entries) != items:
            print(f"! {result.label}: manifest.json holds {len(entries)} items, not {items}")
    return result


def run_xargs(origin: str, workdir: Path, items: int, policy: dict[str, float]) -> Result:
    run_dir = workdir / f"xargs-{items}"
    run_dir.mkdir()
    listing = run_dir / "prompts.txt"
    listing.write_text("\n".join(prompts(items)) + "\n")
    output = run_dir / "out"
    generate = [*kling_command(policy), "generate", "{}", "-p", "runware"]
    generate += ["-n", str(IMAGES_PER_ITEM), "-R", RESOLUTION, "-o", str(output)]
    argv = ["xargs", "-a", str(listing), "-d", "\n", "-P", str(CONCURRENCY), "-I{}", *generate]
    env = base_env(origin, run_dir / "config")
    return run_measured(f"xargs -P {CONCURRENCY} generate", argv, env, workdir, items, output)


def transfer_seconds(origin: str, workdir: Path, images: int) -> float:
    """All of a run's images, served by the same emulator to curl with 32 connections."""
    from _common import runware_image_urls

    curl = shutil.which("curl")
    if curl is None:
        sys.exit("curl is needed to measure the transfer time: apt-get install -y curl")
    side = {"1k": 1024, "2k": 2048}[RESOLUTION]
    urls = runware_image_urls(origin, IMAGES_PER_ITEM, side, side)
    target = workdir / "transfer"
    target.mkdir()
    config = workdir / "transfer.curl"
    config.write_text(
        "".join(
            f'url = "{urls[n % len(urls)]}"\noutput = "{target}/{n}.png"\n' for n in range(images)
        )
    )
    argv = [curl, "-sS", "--fail", "--parallel", "--parallel-max", str(CONCURRENCY)]
    start = time.perf_counter()
    completed = subprocess.run(
        [*argv, "-K", str(config)],
        check=False,
        capture_output=True,  # --parallel draws its meter on stderr even with -s
    )
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(f"curl --parallel failed: {completed.stderr.decode(errors='replace')[-500:]}")
    shutil.rmtree(target)
    return elapsed


def batch_available() -> bool:
    completed = subprocess.run(
        [kling_executable(), "batch", "--help"], capture_output=True, check=False
    )
    return completed.returncode == 0


def main() -> int:
    global CONCURRENCY, IMAGES_PER_ITEM, RESOLUTION, PROFILE_OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--scale-items", type=int, default=1000, help="0: skip the scale run")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the xargs baseline")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument(
        "--poll-policy",
        type=parse_policy,
        default={},
        help="PollPolicy fields to override, e.g. max_interval=0.5 (experiments only)",
    )
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--images", type=int, default=IMAGES_PER_ITEM, help="-n per item")
    parser.add_argument("--resolution", choices=("1k", "2k"), default="2k")
    parser.add_argument("--no-report", action="store_true", help="run kling batch with --no-report")
    parser.add_argument("--profile", choices=("cprofile", "tracemalloc"), default=None)
    parser.add_argument(
        "--profile-out", default=None, help="with --profile cprofile: keep the raw pstats here"
    )
    parser.add_argument(
        "--pool-shard",
        type=int,
        default=None,
        help="connections per HTTP pool in kling (experiments; >= concurrency: one pool)",
    )
    options = parser.parse_args()
    CONCURRENCY, IMAGES_PER_ITEM = options.concurrency, options.images
    RESOLUTION = options.resolution
    PROFILE_OUT = options.profile_out
    banner(
        f"batch throughput: {options.items} items x {IMAGES_PER_ITEM} images at {RESOLUTION}, "
        f"concurrency {CONCURRENCY}, emulator latency {options.latency:g} s"
    )
    print(f"# poll policy: {describe_policy(options.poll_policy)}")
    print(f"# pool shard: {options.pool_shard or 'default'}")
    has_batch = batch_available()
    if not has_batch:
        print("# `kling batch` does not exist yet: batch figures are PENDING; baseline only")
    results: list[Result] = []
    ideals: dict[int, tuple[float, float]] = {}
    with (
        emulator_server(options.latency) as (origin, emulator),
        tempfile.TemporaryDirectory(prefix="kling-bench-", dir=options.dir) as temporary,
    ):
        workdir = Path(temporary)
        sizes = [options.items] + ([options.scale_items] if options.scale_items else [])
        for items in sizes:
            waves = math.ceil(items / CONCURRENCY)
            transfer = transfer_seconds(origin, workdir, items * IMAGES_PER_ITEM)
            ideals[items] = (waves * options.latency + transfer, transfer)
        if has_batch:
            for items in sizes:
                emulator_before = process_cpu_seconds(emulator.pid)
                result = run_batch(
                    origin,
                    workdir,
                    items,
                    options.poll_policy,
                    options.pool_shard,
                    report=not options.no_report,
                    profile=options.profile,
                )
                result.emulator_cpu = process_cpu_seconds(emulator.pid) - emulator_before
                results.append(result)
                control_reset(origin)
            emulator_peak = process_rss_bytes(emulator.pid)
        if not options.no_baseline:
            results.append(run_xargs(origin, workdir, options.items, options.poll_policy))
    rows = []
    for result in results:
        ideal, transfer = ideals[result.items]
        rows.append(
            [
                result.label,
                str(result.items),
                str(result.images),
                f"{result.wall:.1f}",
                f"{ideal:.1f} ({transfer:.1f})",
                f"{result.wall / ideal:.2f}x",
                f"{result.cpu:.1f}",
                f"{result.cpu / result.items * 1000:.1f}",
                f"{result.emulator_cpu / result.items * 1000:.1f}" if result.emulator_cpu else "-",
                f"{result.peak_rss_mb:.0f}",
                result.rss_note,
            ]
        )
    headers = ["run", "items", "images", "wall s", "ideal s (transfer)", "wall/ideal"]
    headers += ["CPU s", "CPU ms/item", "emulator CPU ms/item", "peak RSS MB", "RSS measured by"]
    print(table(headers, rows))
    if has_batch:
        print(f"(emulator peak RSS over the whole run: {emulator_peak / 1e6:.0f} MB)")
    batches = [r for r in results if r.label.startswith("kling batch")]
    baseline = next((r for r in results if r.label.startswith("xargs")), None)
    if not batches:
        print("\nbatch targets: PENDING (`kling batch` is not there yet)")
        return 0
    first = batches[0]
    if baseline is not None:
        print(
            f"\nkling batch vs xargs baseline ({first.items} items): wall "
            f"{baseline.wall / first.wall:.2f}x faster, CPU {baseline.cpu / first.cpu:.2f}x less, "
            f"peak memory {baseline.peak_rss_mb / first.peak_rss_mb:.1f}x less"
        )
    wall_met = first.wall <= TARGET_IDEAL_RATIO * ideals[first.items][0]
    rss_met = all(r.peak_rss_mb <= TARGET_RSS_MB for r in batches)
    print(f"wall <= {TARGET_IDEAL_RATIO}x ideal: {verdict(wall_met)}")
    print(f"peak RSS <= {TARGET_RSS_MB:.0f} MB: {verdict(rss_met)}")
    if len(batches) > 1:
        growth = batches[1].peak_rss_mb / first.peak_rss_mb - 1
        print(
            f"RSS flat from {first.items} to {batches[1].items} items "
            f"({growth:+.0%}, tolerance {FLAT_TOLERANCE:.0%}): {verdict(growth <= FLAT_TOLERANCE)}"
        )
        scaled = batches[1]
        print(
            f"({scaled.items} items: wall {scaled.wall:.1f} s = "
            f"{scaled.wall / ideals[scaled.items][0]:.2f}x ideal)"
        )
    return 0


def control_reset(origin: str) -> None:
    """Forget finished tasks between runs (issued image URLs keep working)."""
    from _common import control

    control(origin, "POST", "/reset")


if __name__ == "__main__":
    sys.exit(main())
