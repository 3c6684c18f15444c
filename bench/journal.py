"""Journal size: `kling jobs`, `kling jobs --json` and `kling status` (the latest job) with a
journal of N jobs against one holding only the 20 jobs they show, timed in the same run,
interleaved in shuffled order. A third journal, the big one with the indices of migration 5
dropped (the schema before it), shows what the indices buy.

    python bench/journal.py                     # 1,000,000 jobs (the fill takes minutes)
    python bench/journal.py --jobs 200000 --rounds 20

The journals are filled through kling's own `Journal` API (create_job, add_task,
update_task, record_output, set_job_state: one task and one saved image per job), inside one
transaction: a fixture, not how kling writes. The 20 newest jobs of both journals point at a
real file, so `kling status` answers from the journal with no network call.

Target: each command's median CPU time (user + system, wait4) <= 1.05x the small journal's;
wall time is shown too (median, and the ratio of the minima), but on a shared machine its
spread is wider than 5%. Then the journal calls themselves, timed in this process.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import banner, kling_executable, median, table, verdict

from kling_cli.journal import DATABASE_NAME, Journal, OutputRecord

TARGET_RATIO = 1.05
SHOWN = 20  # what `kling jobs` lists by default
COMMANDS = (("jobs",), ("jobs", "--json"), ("status", "--json"))
# The indices migration 5 adds (kling_cli.journal_schema); the batch-key one existed before.
NEW_INDICES = ("jobs_by_created_at", "jobs_by_state", "jobs_by_provider")


class _OneTransaction(Journal):
    """The journal's own writes, inside the one transaction the fill opens."""

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        yield self._db


def _add_job(journal: Journal, number: int, image: str) -> None:
    request = {"prompt": f"a red fox, take {number}", "num_images": 1, "resolution": "2k"}
    job_id = journal.create_job("runware", request, "out", name_template="{id}")
    position = journal.add_task(job_id, f"c-{number:08d}", 1)
    journal.update_task(job_id, position, task_id=f"t-{number:08d}", state="succeeded")
    journal.record_output(
        job_id, position, OutputRecord(f"https://cdn.example/{number}.png", image, "0" * 64)
    )
    journal.set_job_state(job_id, "succeeded")


def fill(config_dir: Path, jobs: int, image: Path) -> float:
    """`jobs` jobs, the last SHOWN with `image` on disk; returns the seconds it took."""
    config_dir.mkdir(parents=True)
    journal = _OneTransaction(config_dir / DATABASE_NAME)
    started = time.perf_counter()
    db = journal.connection
    db.execute("BEGIN")
    for number in range(jobs):
        shown = number >= jobs - SHOWN
        _add_job(journal, number, str(image) if shown else f"out/{number}.png")
        if number and number % 100_000 == 0:
            print(f"  {number:,} jobs, {time.perf_counter() - started:.0f} s", flush=True)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    journal.close()
    return time.perf_counter() - started


def time_once(argv: list[str], config_dir: Path, workdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + system, from wait4) is what the machine's
    other load disturbs least."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KLING_")},
        "KLING_CONFIG_DIR": str(config_dir),
        "COLUMNS": "100",
        "NO_COLOR": "1",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(argv)} failed ({code}): {errors.decode()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def query_ms(config_dir: Path, repeat: int = 25) -> tuple[float, float]:
    """Median ms of the journal calls the commands make, in this process: `recent(20)` (what
    `kling jobs` reads) and `latest()` (`kling status`)."""
    journal = Journal(config_dir / DATABASE_NAME)
    try:
        found = []
        for call in (lambda: journal.recent(limit=SHOWN), journal.latest):
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                call()
                samples.append((time.perf_counter() - started) * 1000)
            found.append(median(samples))
        return found[0], found[1]
    finally:
        journal.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the big journal")
    parser.add_argument("--rounds", type=int, default=15, help="timed runs of each")
    parser.add_argument("--keep", action="store_true", help="leave the journals in place")
    args = parser.parse_args()
    kling = kling_executable()
    root = Path(tempfile.mkdtemp(prefix="kling-bench-journal-"))
    try:
        image = root / "work" / "fox.png"
        image.parent.mkdir()
        image.write_bytes(b"\x89PNG\r\n\x1a\n")
        banner(f"Journal: {args.jobs:,} jobs against {SHOWN}, {args.rounds} rounds")
        small, big, before = root / "small", root / "big", root / "before"
        fill(small, SHOWN, image)
        seconds = fill(big, args.jobs, image)
        size = (big / DATABASE_NAME).stat().st_size
        print(f"filled {args.jobs:,} jobs in {seconds:.0f} s ({size / 1e6:.0f} MB)")
        before.mkdir()
        shutil.copy(big / DATABASE_NAME, before / DATABASE_NAME)
        with sqlite3.connect(before / DATABASE_NAME) as db:
            for name in NEW_INDICES:
                db.execute(f"DROP INDEX {name}")
        journals = {"small": small, "big": big, "big, no index": before}
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        variants = [(" ".join(c), name) for c in COMMANDS for name in journals]
        for _ in range(2):  # warm-up: page cache, .pyc
            for command, name in variants:
                time_once([kling, *command.split()], journals[name], image.parent)
        for _ in range(args.rounds):
            random.shuffle(variants)
            for command, name in variants:
                wall, used = time_once([kling, *command.split()], journals[name], image.parent)
                times.setdefault((command, name), []).append(wall)
                cpu.setdefault((command, name), []).append(used)
        rows = []
        met = True
        for command in (" ".join(c) for c in COMMANDS):
            key = (command, "small")
            base_cpu, base_wall = median(cpu[key]), median(times[key])
            ratio = median(cpu[(command, "big")]) / base_cpu
            met &= ratio <= TARGET_RATIO
            rows.append(
                (
                    f"kling {command}",
                    f"{base_cpu * 1000:.0f} ms",
                    f"{median(cpu[(command, 'big')]) * 1000:.0f} ms",
                    f"{ratio:.3f}x",
                    f"{median(cpu[(command, 'big, no index')]) / base_cpu:.2f}x",
                    f"{median(times[(command, 'big')]) / base_wall:.2f}x"
                    f" ({min(times[(command, 'big')]) / min(times[key]):.2f}x)",
                    f"{median(times[(command, 'big, no index')]) / base_wall:.2f}x",
                )
            )
        headers = (
            "command",
            f"CPU, {SHOWN} jobs",
            f"CPU, {args.jobs:,} jobs",
            "CPU ratio",
            "CPU ratio, no index",
            "wall ratio (of minima)",
            "wall ratio, no index",
        )
        print(table(headers, rows))
        print(f"target: each CPU ratio <= {TARGET_RATIO}x  {verdict(met)}")
        print("\njournal calls in this process, median of 25 (ms):")
        rows = []
        for name, where in journals.items():
            recent, latest = query_ms(where)
            rows.append((name, f"{recent:.3f}", f"{latest:.3f}"))
        print(table(("journal", f"recent({SHOWN})", "latest()"), rows))
    finally:
        if args.keep:
            print(f"journals kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
