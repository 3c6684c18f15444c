"""Start-up: wall time of `kling --help`, `--version`, `providers` and `config list` against
the minimal typer app in bench/baseline_app.py, both timed in the same run, interleaved round
by round so machine noise hits both alike. Then `python -X importtime` for a set of commands:
which of httpx, PIL, sqlite3 and kling_cli.emulator each one imports without using it, who
imports them, and which other packages kling loads that the baseline does not.

    python bench/startup.py                 # 30 rounds (about a minute)
    python bench/startup.py --rounds 60 --no-imports

Target: each command's median <= 1.15x the baseline's median.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass

from _common import BENCH_DIR, PYTHON, banner, kling_executable, median, spread, table, verdict

TARGET_RATIO = 1.15
TIMED = (("--help",), ("--version",), ("providers",), ("config", "list"))

# Modules that must not be imported unless the command uses them; per command, the ones it
# does use.
WATCHED = ("httpx", "PIL", "sqlite3", "kling_cli.emulator")
IMPORT_CHECKS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("--help",), frozenset()),
    (("--version",), frozenset()),
    (("providers",), frozenset()),
    (("config", "list"), frozenset()),
    (("config", "path"), frozenset()),
    (("jobs",), frozenset({"sqlite3"})),  # reads the journal
    (("generate", "--help"), frozenset()),
    (("batch", "--help"), frozenset()),
    (("status", "--help"), frozenset()),
    (("emulate", "--help"), frozenset()),
)


def bench_env(config_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("KLING_") or name.endswith("_API_KEY"):
            del env[name]
    # Pipes, a fixed width and no colour: both apps render the same way in every run.
    env.update(KLING_CONFIG_DIR=config_dir, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    return env


Variant = tuple[list[str], dict[str, str]]  # argv, environment


def commands(
    args: tuple[str, ...], env: dict[str, str], candidate: str | None = None
) -> dict[str, Variant]:
    """kling, the baseline, and (with --candidate) kling imported from another source tree."""
    variants = {
        "kling": ([kling_executable(), *args], env),
        "baseline": ([PYTHON, str(BENCH_DIR / "baseline_app.py"), *args], env),
    }
    if candidate:
        variants["candidate"] = ([kling_executable(), *args], {**env, "PYTHONPATH": candidate})
    return variants


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {completed.returncode}: {completed.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def time_commands(rounds: int, env: dict[str, str], candidate: str | None) -> bool:
    samples: dict[tuple[tuple[str, ...], str], list[float]] = defaultdict(list)
    cpu: dict[tuple[tuple[str, ...], str], list[float]] = defaultdict(list)
    order = random.Random(1)
    for args in TIMED:  # warm the page cache and the .pyc files; not counted
        for argv, variant_env in commands(args, env, candidate).values():
            run_once(argv, variant_env)
            run_once(argv, variant_env)
    for _ in range(rounds):
        for args in TIMED:
            pairs = list(commands(args, env, candidate).items())
            order.shuffle(pairs)  # neither side always runs first
            for name, (argv, variant_env) in pairs:
                wall, used = run_once(argv, variant_env)
                samples[(args, name)].append(wall)
                cpu[(args, name)].append(used)
    rows = []
    all_met = True
    for args in TIMED:
        kling, base = samples[(args, "kling")], samples[(args, "baseline")]
        ratio = median(kling) / median(base)
        met = ratio <= TARGET_RATIO
        all_met &= met
        kling_cpu, base_cpu = cpu[(args, "kling")], cpu[(args, "baseline")]
        rows.append(
            [
                "kling " + " ".join(args),
                f"{median(kling) * 1000:.0f}",
                f"{median(base) * 1000:.0f}",
                f"{ratio:.2f}x",
                f"{min(kling) / min(base):.2f}x",
                f"{median(kling_cpu) * 1000:.0f} / {median(base_cpu) * 1000:.0f}",
                f"{median(kling_cpu) / median(base_cpu):.2f}x",
                verdict(met),
            ]
        )
    print(f"\nWall time, median of {rounds} interleaved runs (ms); target <= {TARGET_RATIO}x")
    headers = ["command", "kling", "baseline", "ratio", "ratio of mins"]
    headers += ["CPU ms kling / base", "CPU ratio", "target (wall)"]
    print(table(headers, rows))
    if candidate:
        print(f"\nCandidate ({candidate}), timed in the same rounds:")
        rows = []
        for args in TIMED:
            ours, base = samples[(args, "candidate")], samples[(args, "baseline")]
            ratio = median(ours) / median(base)
            rows.append(
                [
                    "kling " + " ".join(args),
                    f"{median(ours) * 1000:.0f}",
                    f"{median(base) * 1000:.0f}",
                    f"{ratio:.2f}x",
                    f"{median(cpu[(args, 'candidate')]) / median(cpu[(args, 'baseline')]):.2f}x",
                    verdict(ratio <= TARGET_RATIO),
                ]
            )
        print(table(["command", "candidate", "baseline", "ratio", "CPU ratio", "target"], rows))
    print("Spread of the wall times (ms):")
    for args in TIMED:
        for name in ("kling", "baseline", *(("candidate",) if candidate else ())):
            values = [s * 1000 for s in samples[(args, name)]]
            print(f"  {name:<8} {' '.join(args):<12} {spread(values)}")
    return all_met


# -- python -X importtime ---------------------------------------------------------------------


@dataclass
class Imported:
    name: str
    depth: int
    self_us: int
    importer: str | None = None  # the module whose import triggered this one


def import_trace(argv: list[str], env: dict[str, str]) -> list[Imported]:
    """Every module the command imports, in completion order, with who imported it."""
    if argv[0] == PYTHON:
        argv = argv[1:]
    completed = subprocess.run(
        [PYTHON, "-X", "importtime", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    modules: list[Imported] = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        raw_name = fields[2]
        stripped = raw_name.lstrip(" ")
        depth = (len(raw_name) - len(stripped) - 1) // 2
        modules.append(Imported(stripped.strip(), depth, int(fields[0])))
    # importtime prints a module when its import completes, so children come before their
    # parent: the parent of a module is the next one printed one level up.
    for index, module in enumerate(modules):
        for later in modules[index + 1 :]:
            if later.depth < module.depth:
                module.importer = later.name if later.depth == module.depth - 1 else None
                break
    return modules


def chain(modules: list[Imported], name: str) -> str:
    by_name = {module.name: module for module in modules}
    links = [name]
    current = by_name.get(name)
    while current is not None and current.importer is not None and len(links) < 12:
        links.append(current.importer)
        current = by_name.get(current.importer)
    if current is not None and current.depth == 0 and len(links) == 1:
        links.append("(imported at run time)")
    return " <- ".join(links)


def first_of(modules: list[Imported], package: str) -> str | None:
    for module in modules:
        if module.name == package or module.name.startswith(package + "."):
            top = module
            while top.importer is not None and (
                top.importer == package or top.importer.startswith(package + ".")
            ):
                top = next(m for m in modules if m.name == top.importer)
            return top.name
    return None


def package_costs(modules: list[Imported]) -> dict[str, int]:
    costs: dict[str, int] = defaultdict(int)
    for module in modules:
        costs[module.name.split(".")[0]] += module.self_us
    return costs


def own_modules(modules: list[Imported]) -> str:
    """kling_cli's modules by subpackage: how many, and their own import time."""
    groups: dict[str, list[int]] = defaultdict(list)
    for module in modules:
        parts = module.name.split(".")
        if parts[0] == "kling_cli" and len(parts) > 1:
            groups[".".join(parts[1:3]) if parts[1] == "commands" else parts[1]].append(
                module.self_us
            )
    total = sum(sum(times) for times in groups.values()) / 1000
    listed = ", ".join(
        f"{name} {sum(times) / 1000:.1f}" + (f" ({len(times)} modules)" if len(times) > 1 else "")
        for name, times in sorted(groups.items(), key=lambda item: -sum(item[1]))
    )
    return f"{total:.1f} ms: {listed}"


def check_imports(env: dict[str, str], candidate: str | None) -> bool:
    baseline = {args: import_trace(*commands(args, env)["baseline"]) for args, _ in IMPORT_CHECKS}
    label = "candidate" if candidate else "kling"
    baseline_help = baseline[("--help",)]
    rows = []
    details = []
    clean = True
    for args, allowed in IMPORT_CHECKS:
        modules = import_trace(*commands(args, env, candidate)[label])
        flags = []
        for watched in WATCHED:
            first = first_of(modules, watched)
            if first is None:
                flags.append("-")
            elif watched in allowed:
                flags.append("yes (uses it)")
            else:
                flags.append("YES")
                clean = False
                details.append(f"  kling {' '.join(args)}: {chain(modules, first)}")
        ours = package_costs(modules)
        theirs = package_costs(baseline.get(args, baseline_help))
        extra = sorted(
            ((pkg, us) for pkg, us in ours.items() if pkg not in theirs and pkg != "kling_cli"),
            key=lambda item: -item[1],
        )
        total_ms = sum(module.self_us for module in modules) / 1000
        base_ms = sum(module.self_us for module in baseline.get(args, baseline_help)) / 1000
        rows.append(["kling " + " ".join(args), *flags, f"{total_ms:.0f} / {base_ms:.0f}"])
        if extra:
            listed = ", ".join(f"{pkg} {us / 1000:.1f}" for pkg, us in extra[:12])
            details.append(f"  kling {' '.join(args)}: beyond the baseline (ms): {listed}")
            details.append(f"      kling_cli's own modules: {own_modules(modules)}")
            for pkg, _ in extra[:4]:
                first = first_of(modules, pkg)
                if first is not None:
                    details.append(f"      {chain(modules, first)}")
    print(f"\nImports of {label} (python -X importtime); YES = imported without being used")
    print(
        table(
            ["command", *WATCHED, "import ms kling / baseline"],
            rows,
        )
    )
    print("\nWho imports what (first import chain, importer on the right):")
    print("\n".join(details) if details else "  nothing beyond the baseline")
    return clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed runs per command")
    parser.add_argument("--no-imports", action="store_true", help="skip the importtime check")
    parser.add_argument("--no-timing", action="store_true", help="only the importtime check")
    parser.add_argument(
        "--candidate",
        metavar="DIR",
        help="also time kling imported from DIR/kling_cli (a scratch copy or another "
        "worktree, via PYTHONPATH); the import check then looks at it instead",
    )
    options = parser.parse_args()
    banner("kling start-up vs a minimal typer app (bench/baseline_app.py)")
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as config_dir:
        env = bench_env(config_dir)
        met = True if options.no_timing else time_commands(options.rounds, env, options.candidate)
        clean = True if options.no_imports else check_imports(env, options.candidate)
    print(f"\nstart-up target: {verdict(met)}; import hygiene: {verdict(clean)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
