"""Completion-to-disk latency: how long after the provider finishes a task the image is in
place on disk, for one 2K PNG with the default poll policy.

The emulator runs in this process (latency 3 s); `kling generate` runs as a subprocess pointed
at it with KLING_<ID>_BASE_URL and the key `emulator-key` (KLING_RUNWARE_... by default), with
a private KLING_CONFIG_DIR.
The emulator's `events` say when the task completed (its clock is time.time()); the final
file's ctime says when it was put in place (the hard link that publishes the `.part` file,
and the unlink of the `.part` right after it, change the inode's ctime; its mtime is the last
byte written). The request log gives the polls, so each run is split into: waiting for the
next poll, poll to image request, transfer and write, and fsync + verify + rename.

    python bench/latency.py                   # 7 runs after one warm-up (about 40 s)
    python bench/latency.py --runs 15 --latency 3
    python bench/latency.py --poll-policy max_interval=0.5   # try another policy (bench only)
    python bench/latency.py --latency-spread 1   # latencies 3, 3.14, ... 3.86 s: every phase

With a fixed latency the poll schedule meets the completion at the same phase every run, so
the spread is small and the median says as much about that phase as about the policy;
--latency-spread S spreads the runs' latencies evenly over [latency, latency + S) to average
over phases.

Runware (the default provider here) is asked with `deliveryMethod: sync` when kling is going to
wait anyway, so its answer arrives when the task completes and there are no polls at all. The
poll policy is exercised by providers without push delivery, e.g. `--provider unifically`
(its emulator also serves the 2K image as PNG).

Target: median <= 0.5 s, reported with the number of poll requests per job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    EMULATOR_KEY,
    banner,
    describe_policy,
    kling_command,
    median,
    parse_policy,
    spread,
    table,
    verdict,
)

TARGET_SECONDS = 0.5
PROMPT = "a red fox on a snowy ridge at dawn"


@dataclass
class Run:
    total: float  # completed -> file in place (ctime)
    poll_wait: float  # completed -> the poll that saw it
    to_request: float  # that poll -> the image request
    transfer: float  # image request -> last byte written (mtime)
    publish: float  # mtime -> ctime: fsync, decode check, link into place
    polls: int
    wall: float  # the whole `kling generate`


def run_once(
    emulator: object, options: argparse.Namespace, workdir: Path, index: int, latency: float
) -> Run:
    from kling_cli.emulator import Emulator

    assert isinstance(emulator, Emulator)
    emulator.reset()
    emulator.latency = latency
    config_dir = workdir / f"config-{index}"
    output_dir = workdir / f"out-{index}"
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("KLING_"):
            del env[name]
    env.update(
        KLING_CONFIG_DIR=str(config_dir),
        **{
            f"KLING_{options.provider.upper()}_BASE_URL": emulator.base_url(options.provider),
            f"KLING_{options.provider.upper()}_API_KEY": EMULATOR_KEY,
        },
    )
    argv = kling_command(options.poll_policy)
    argv += ["generate", PROMPT, "-p", options.provider, "-R", "2k"]
    argv += ["-o", str(output_dir), "--json"]
    start = time.time()
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.time() - start
    if completed.returncode != 0:
        sys.exit(f"kling generate failed ({completed.returncode}):\n{completed.stderr}")
    result = json.loads(completed.stdout)
    path = Path(result["files"][0]["path"])
    task_id = result["job"]["task_id"]
    stat = path.stat()
    done = [t for t, event, _, tid in emulator.events if event == "completed" and tid == task_id]
    if not done:
        sys.exit(f"the emulator has no completion event for {task_id}")
    completed_at = done[0]
    api = [r for r in emulator.requests if r.server == "api"]
    images = [r for r in emulator.requests if r.server == "images"]
    saw_it = [r.time for r in api if r.time >= completed_at]
    seen_at = saw_it[0] if saw_it else completed_at
    requested_at = images[0].time if images else seen_at
    return Run(
        total=stat.st_ctime - completed_at,
        poll_wait=seen_at - completed_at,
        to_request=requested_at - seen_at,
        transfer=stat.st_mtime - requested_at,
        publish=stat.st_ctime - stat.st_mtime,
        polls=len(api) - 1,  # everything after the submit request (none with sync push)
        wall=wall,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--latency", type=float, default=3.0, help="emulator latency (s)")
    parser.add_argument(
        "--provider", default="runware", help="provider to emulate (unifically: one that polls)"
    )
    parser.add_argument(
        "--latency-spread",
        type=float,
        default=0.0,
        help="spread the runs' latencies evenly over [latency, latency + S)",
    )
    parser.add_argument(
        "--poll-policy",
        type=parse_policy,
        default={},
        help="PollPolicy fields to override, e.g. max_interval=0.5 (experiments only)",
    )
    options = parser.parse_args()
    from kling_cli.emulator import Emulator

    latencies = [
        options.latency + options.latency_spread * index / options.runs
        for index in range(options.runs)
    ]
    described = f"{options.latency:g} s"
    if options.latency_spread:
        described += f" to {latencies[-1]:.2f} s"
    banner(
        f"completion-to-disk latency, one 2K PNG from the {options.provider} emulator, "
        f"latency {described}"
    )
    print(f"# poll policy: {describe_policy(options.poll_policy)}")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as temporary:
        workdir = Path(temporary)
        with Emulator(latency=options.latency) as emulator:
            # The warm-up renders the 2K image once (the emulator caches it, like a CDN).
            warm = run_once(emulator, options, workdir, 0, options.latency)
            for index, latency in enumerate(latencies, start=1):
                runs.append(run_once(emulator, options, workdir, index, latency))
    rows = [
        [
            str(number),
            f"{latency:.2f}",
            f"{run.total:.3f}",
            f"{run.poll_wait:.3f}",
            f"{run.to_request:.3f}",
            f"{run.transfer:.3f}",
            f"{run.publish:.3f}",
            str(run.polls),
            f"{run.wall:.2f}",
        ]
        for number, (run, latency) in enumerate(zip(runs, latencies, strict=True), start=1)
    ]
    print(
        table(
            [
                "run",
                "latency",
                "completed->on disk",
                "->poll saw it",
                "->image GET",
                "->written",
                "->in place",
                "polls",
                "kling wall",
            ],
            rows,
        )
    )
    totals = [run.total for run in runs]
    polls = [run.polls for run in runs]
    print(f"(warm-up run, not counted: {warm.total:.3f} s, {warm.polls} polls)")
    if not any(run.polls for run in runs):
        print(
            "(no polls: the provider answered the submit request itself when the task completed "
            "(sync push), so `->poll saw it` is 0 and the poll policy was not used)"
        )
    print(
        f"\ncompleted -> on disk: median {median(totals):.3f} s ({spread(totals)}); "
        f"polls per job: median {median(polls):g} ({min(polls)}-{max(polls)})"
    )
    for name in ("poll_wait", "to_request", "transfer", "publish"):
        values = [getattr(run, name) for run in runs]
        print(f"  {name:<11} median {median(values):.3f} s")
    met = median(totals) <= TARGET_SECONDS
    print(f"\ntarget median <= {TARGET_SECONDS} s: {verdict(met)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
