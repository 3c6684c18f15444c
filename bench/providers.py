"""A batch spread over providers: `kling batch -p runware,unifically,wavespeed` against the same
batch on one of them (`-p runware`), each provider capped at 4 in flight (`--concurrency 4`),
emulator latency 2 s, 300 items of one 1K image, measured in the same run.

The emulator runs in a process of its own (`kling emulate`). Each run gets a fresh
KLING_CONFIG_DIR (journal) and output directory; every image is counted on disk. Peak RSS of
`kling batch` comes from wait4().

    python bench/providers.py                   # 300 items (~4 min)
    python bench/providers.py --items 60        # a quick look

Targets: the spread batch >= 2.7x faster than the one-provider batch; peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import EMULATOR_KEY, banner, emulator_process, kling_executable, table, verdict

SPREAD = ("runware", "unifically", "wavespeed")


def environment(origin: str, config_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KLING_")}
    env["KLING_CONFIG_DIR"] = str(config_dir)
    paths = {"runware": "/runware/v1", "unifically": "/unifically", "wavespeed": "/wavespeed"}
    for provider in SPREAD:
        env[f"KLING_{provider.upper()}_BASE_URL"] = origin + paths[provider]
        env[f"KLING_{provider.upper()}_API_KEY"] = EMULATOR_KEY
    return env


def run(label: str, providers: str, origin: str, workdir: Path, items: int, limit: int) -> dict:
    run_dir = workdir / label
    run_dir.mkdir()
    manifest = run_dir / "items.jsonl"
    lines = [
        json.dumps({"id": f"item-{n}", "prompt": f"benchmark item {n}", "aspect_ratio": "1:1"})
        for n in range(items)
    ]
    manifest.write_text("\n".join(lines) + "\n")
    output = run_dir / "out"
    argv = [kling_executable(), "batch", str(manifest), "-p", providers]
    argv += ["--concurrency", str(limit), "-o", str(output)]
    log = (run_dir / "kling.log").open("wb")
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, env=environment(origin, run_dir / "config"), stdout=log, stderr=subprocess.STDOUT
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    log.close()
    images = sum(1 for _ in output.glob("*.png"))
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or images != items:
        print(f"! {label}: exit {code}, {images} images; see {log.name}")
    entries = json.loads((output / "manifest.json").read_text())["items"]
    made: dict[str, int] = {}
    for entry in entries:
        made[entry["provider"]] = made.get(entry["provider"], 0) + 1
    return {
        "label": label,
        "wall": wall,
        "rss": usage.ru_maxrss * 1024 / 1e6,  # KiB on Linux
        "images": images,
        "made": made,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--limit", type=int, default=4, help="in flight per provider")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    options = parser.parse_args()
    banner(
        f"batch spread over providers: {options.items} items, {options.limit} in flight per "
        f"provider, emulator latency {options.latency:g} s"
    )
    with (
        tempfile.TemporaryDirectory(dir=options.dir) as scratch,
        emulator_process(options.latency) as origin,
    ):
        workdir = Path(scratch)
        one = run("one provider", "runware", origin, workdir, options.items, options.limit)
        three = run(
            "three providers", ",".join(SPREAD), origin, workdir, options.items, options.limit
        )
    rows = [
        [
            r["label"],
            f"{r['wall']:.1f} s",
            f"{r['rss']:.0f} MB",
            r["images"],
            " ".join(f"{k}:{v}" for k, v in sorted(r["made"].items())),
        ]
        for r in (one, three)
    ]
    print(table(["run", "wall", "peak RSS", "images", "made by"], rows))
    speedup = one["wall"] / three["wall"]
    peak = max(one["rss"], three["rss"])
    print(f"speed-up {speedup:.2f}x (target >= 2.7x): {verdict(speedup >= 2.7)}")
    print(f"peak RSS {peak:.0f} MB (target <= 150 MB): {verdict(peak <= 150)}")
    return 0 if speedup >= 2.7 and peak <= 150 else 1


if __name__ == "__main__":
    raise SystemExit(main())
