"""Helpers the benchmark scripts share: statistics, tables, and an emulator in its own process.

Not a test module (no `test_` prefix): pytest never collects anything under bench/.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
EMULATOR_KEY = "emulator-key"


def kling_executable() -> str:
    """The `kling` console script next to this interpreter (the venv's), else on PATH."""
    beside = Path(PYTHON).with_name("kling")
    if beside.exists():
        return str(beside)
    from shutil import which

    found = which("kling")
    if found is None:
        sys.exit("kling is not installed in this environment (pip install -e .)")
    return found


# Runs `kling` with other PollPolicy defaults, to try a change without editing the package:
# the engine builds `PollPolicy()` whenever it is given none. For experiments only.
POLICY_SHIM = """
import functools, json, sys
import kling_cli.engine, kling_cli.retry
overrides = json.loads(sys.argv.pop(1))
kling_cli.engine.PollPolicy = functools.partial(kling_cli.retry.PollPolicy, **overrides)
from kling_cli.cli import main
sys.argv[0] = "kling"
sys.exit(main())
"""


def kling_command(poll_policy: dict[str, float] | None = None) -> list[str]:
    """The argv prefix that runs kling: the console script, or the policy shim."""
    if poll_policy:
        return [PYTHON, "-c", POLICY_SHIM, json.dumps(poll_policy)]
    return [kling_executable()]


def parse_policy(text: str | None) -> dict[str, float]:
    """`max_interval=0.5,first_delay=0.25` -> PollPolicy keyword arguments."""
    if not text:
        return {}
    pairs = (item.split("=", 1) for item in text.split(","))
    return {name.strip(): float(value) for name, value in pairs}


def describe_policy(overrides: dict[str, float]) -> str:
    from kling_cli.retry import PollPolicy

    policy = PollPolicy(**overrides)  # type: ignore[arg-type]
    return f"{policy}" + (" (overridden by --poll-policy)" if overrides else " (default)")


def banner(title: str) -> None:
    load = os.getloadavg()
    print(f"# {title}")
    print(
        f"# {datetime.now():%Y-%m-%d %H:%M}  python {platform.python_version()}  "
        f"{os.cpu_count()} cores  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """min-max and the interquartile range, for a line in a table."""
    if len(values) < 2:
        return f"n={len(values)}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"min {min(values):.3f} max {max(values):.3f} IQR {q3 - q1:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def free_port_pair() -> int:
    """A port p such that p and p+1 were both free a moment ago (`kling emulate` binds both)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


@contextmanager
def emulator_process(latency: float) -> Iterator[str]:
    """`kling emulate` in a process of its own (so its threads never share a GIL with the
    code under test); yields the API origin, e.g. http://127.0.0.1:8765."""
    with emulator_server(latency) as (origin, _):
        yield origin


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_bytes(pid: int) -> int:
    """A running process's resident set now, and its peak (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def emulator_server(latency: float) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`emulator_process`, also yielding the process (to measure its CPU time apart)."""
    port = free_port_pair()
    process = subprocess.Popen(
        [kling_executable(), "emulate", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                control(origin, "GET", "/events")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("`kling emulate` did not start") from None
                time.sleep(0.05)
        yield origin, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def control(origin: str, method: str, route: str, body: object | None = None) -> object:
    """The emulator's control API (`/_emulator/...`)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{origin}/_emulator{route}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def runware_image_urls(api_origin: str, count: int, width: int, height: int) -> list[str]:
    """Ask an emulator (latency 0) for `count` finished Runware images and return their URLs,
    through Runware's public wire protocol only."""
    import uuid

    task_uuid = str(uuid.uuid4())
    submit = [
        {
            "taskType": "imageInference",
            "taskUUID": task_uuid,
            "model": "klingai:kling-image@o1",
            "positivePrompt": "a benchmark image",
            "numberResults": count,
            "outputType": "URL",
            "outputFormat": "PNG",
            "deliveryMethod": "async",
            "width": width,
            "height": height,
        }
    ]
    _runware_call(api_origin, submit)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = _runware_call(api_origin, [{"taskType": "getResponse", "taskUUID": task_uuid}])
        items = [item for item in answer.get("data", []) if item.get("imageURL")]
        if len(items) >= count:
            return [item["imageURL"] for item in items[:count]]
        time.sleep(0.05)
    raise RuntimeError(f"the emulator gave no images: {answer}")


def _runware_call(api_origin: str, tasks: list[dict[str, object]]) -> dict[str, list[dict]]:
    request = urllib.request.Request(
        f"{api_origin}/runware/v1",
        data=json.dumps(tasks).encode(),
        headers={"Authorization": f"Bearer {EMULATOR_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]
