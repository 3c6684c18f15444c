"""Batch resume never pays twice, proved on the installed `kling` in real processes against
the emulator: a batch stopped at any point (SIGINT or SIGKILL; during a synchronous submit,
between a submit and its first poll, mid-download) and run again makes one task per item and
writes every image once; a submit that may have created a task nothing can find, and a task
the provider forgot, are reported and made again only when asked (`--resubmit-unknown`); and
files on disk count when the journal is gone (`--skip-existing`)."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run
from tests.test_money_rule import start

ITEMS = 3


@pytest.fixture(autouse=True)
def kling_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_cli.emulator import EMULATOR_API_KEY

    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)


def manifest(provider: str, count: int = ITEMS) -> Path:
    path = Path("items.jsonl")
    items = [
        {"id": f"i{n}", "prompt": f"a fox number {n}", "provider": provider} for n in range(count)
    ]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def created(emulator: Emulator) -> int:
    """The tasks the emulator created: what a provider would charge for."""
    return sum(1 for event in emulator.events if event[1] == "created")


def images(directory: str = "out") -> list[str]:
    return sorted(p.name for p in Path(directory).glob("*") if p.suffix in (".png", ".jpg"))


def api(emulator: Emulator, method: str) -> int:
    return sum(1 for r in emulator.requests if r.server == "api" and r.method == method)


def downloads(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.server == "images")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


# (provider, where the batch is stopped, what to arm first, when it is there)
POINTS: list[tuple[str, str, Fault | None, Callable[[Emulator], bool]]] = [
    # Runware holds its synchronous submit open until the image exists.
    ("runware", "sync-submit", None, lambda e: created(e) == ITEMS),
    # Comfy Router's synchronous call, collected again with the same Idempotency-Key.
    ("comfy", "sync-submit", None, lambda e: created(e) == ITEMS),
    # Kling answers the submit at once; the first poll comes later.
    ("kling", "submit-to-first-poll", None, lambda e: api(e, "POST") == ITEMS),
    # An image host that sends one byte a second.
    (
        "unifically",
        "mid-download",
        Fault(kind="trickle", delay=1.0, times=ITEMS),
        lambda e: downloads(e) == ITEMS,
    ),
]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize(
    ("provider", "point", "fault", "there"), POINTS, ids=[f"{p[0]}-{p[1]}" for p in POINTS]
)
def test_a_batch_stopped_anywhere_and_run_again_pays_once_per_item(
    use_emulator: Emulator,
    provider: str,
    point: str,
    fault: Fault | None,
    there: Callable[[Emulator], bool],
    stop: signal.Signals,
) -> None:
    use_emulator.latency = 3
    if fault is not None:
        use_emulator.inject("images", fault)
    arguments = ["batch", str(manifest(provider)), "-o", "out", "-a", "1:1"]
    first = start(*arguments)
    wait_until(lambda: there(use_emulator), point)
    first.send_signal(stop)
    first.communicate(timeout=30)
    assert first.returncode in (130, -signal.SIGKILL), first.returncode
    again = run(*arguments, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert created(use_emulator) == ITEMS
    assert images() == [f"i{n}.png" for n in range(ITEMS)]  # once each, no `i0-1.png`


def test_a_submit_that_may_exist_unseen_is_reported_and_made_again_only_when_asked(
    use_emulator: Emulator,
) -> None:
    """WaveSpeed has no id of ours to look a task up by: a batch killed while its submits
    are on their way (they arrive, and are charged) must not submit them again silently."""
    use_emulator.latency = 1
    use_emulator.inject("wavespeed", Fault(kind="slow", delay=1.0, times=ITEMS))
    arguments = ["batch", str(manifest("wavespeed")), "-o", "out", "-a", "1:1", "--json"]
    first = start(*arguments)
    wait_until(lambda: api(use_emulator, "POST") == ITEMS, "the submits")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    wait_until(lambda: created(use_emulator) == ITEMS, "the tasks created")
    again = run(*arguments)
    assert again.returncode == 8, again.stderr
    *lines, summary = [json.loads(line) for line in again.stdout.splitlines()]
    assert {line["item"]["skip_reason"] for line in lines} == {"unknown_outcome"}
    assert all("dashboard" in line["item"]["error"] for line in lines)
    assert [r["reason"] for r in summary["summary"]["not_submitted"]] == ["unknown_outcome"] * 3
    assert created(use_emulator) == ITEMS
    manifest_items = json.loads(Path("out/manifest.json").read_text())["items"]
    assert {entry["skip_reason"] for entry in manifest_items} == {"unknown_outcome"}
    plain = run(*arguments[:-1])
    assert "--resubmit-unknown" in plain.stderr and "may charge twice" in plain.stderr
    assert created(use_emulator) == ITEMS
    forced = run(*arguments, "--resubmit-unknown")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert created(use_emulator) == 2 * ITEMS
    assert images() == [f"i{n}.png" for n in range(ITEMS)]


def recorded_task_ids(config_dir: Path) -> int:
    from tests.test_money_rule import journal_rows

    if not (config_dir / "jobs.sqlite3").exists():
        return 0
    return sum(1 for row in journal_rows(config_dir) if row["task_id"])


def test_a_task_the_provider_forgot_is_reported_and_made_again_only_when_asked(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    use_emulator.latency = 3
    arguments = ["batch", str(manifest("unifically", 2)), "-o", "out", "-a", "1:1", "--json"]
    first = start(*arguments)
    wait_until(lambda: api(use_emulator, "POST") == 2, "the submits")
    # Both answers recorded (their task ids in the journal), so the tasks are known, not
    # unanswered submits, when the provider forgets them.
    wait_until(lambda: recorded_task_ids(isolated_environment) == 2, "the task ids recorded")
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    use_emulator.reset()  # its results expired: the provider answers 404 for the tasks
    for _ in range(2):  # reported, the same way, on every run: never a failure for good
        again = run(*arguments)
        assert again.returncode == 8, again.stderr
        *lines, _ = [json.loads(line) for line in again.stdout.splitlines()]
        assert {line["item"]["status"] for line in lines} == {"skipped"}
        assert {line["item"]["skip_reason"] for line in lines} == {"task_not_found"}
        assert all("no longer knows" in line["item"]["error"] for line in lines)
    assert created(use_emulator) == 0
    job_id = lines[0]["item"]["job_id"]
    status = run("status", job_id, "--json")
    assert status.returncode == 3, status.stdout
    assert json.loads(status.stdout)["error"]["code"] == "task_not_found"
    forced = run(*arguments, "--resubmit-unknown")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert created(use_emulator) == 2
    assert images() == ["i0.png", "i1.png"]


def test_files_on_disk_count_when_the_journal_is_gone(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    arguments = ["batch", str(manifest("runware")), "-o", "out", "-a", "1:1", "--skip-existing"]
    assert run(*arguments).returncode == 0
    assert created(use_emulator) == ITEMS
    shutil.rmtree(isolated_environment)  # a fresh CI cache: no journal
    again = run(*arguments, "--json")
    assert again.returncode == 0, again.stderr
    *lines, _ = [json.loads(line) for line in again.stdout.splitlines()]
    assert {line["item"]["skip_reason"] for line in lines} == {"exists"}
    assert created(use_emulator) == ITEMS
    assert images() == [f"i{n}.png" for n in range(ITEMS)]


def test_skip_existing_needs_names_known_before_the_run(use_emulator: Emulator) -> None:
    result = run("batch", str(manifest("runware")), "--skip-existing", "--name", "{id}-{task}")
    assert result.returncode == 2 and "--skip-existing" in result.stderr
    assert use_emulator.requests == []


def test_a_submit_looked_up_by_our_id_and_not_found_is_never_called_done(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """Runware is asked for the task by our `taskUUID`. While it does not know it, the item
    is reported (it may still arrive), never "succeeded" with no image; once the submit is
    old enough to be sure it never arrived, the run submits it (nothing was charged)."""
    import sqlite3

    use_emulator.latency = 3
    arguments = ["batch", str(manifest("runware", 2)), "-o", "out", "-a", "1:1", "--json"]
    first = start(*arguments)
    wait_until(lambda: created(use_emulator) == 2, "the submits")
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)
    use_emulator.reset()  # as if the submits never arrived
    again = run(*arguments)
    assert again.returncode == 8, again.stdout + again.stderr
    *lines, _ = [json.loads(line) for line in again.stdout.splitlines()]
    assert {line["item"]["skip_reason"] for line in lines} == {"unknown_outcome"}
    assert all("does not know it yet" in line["item"]["error"] for line in lines)
    assert created(use_emulator) == 0
    with sqlite3.connect(isolated_environment / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET created_at = created_at - 700")  # ten minutes later
    later = run(*arguments)
    assert later.returncode == 0, later.stdout + later.stderr
    assert created(use_emulator) == 2
    assert images() == ["i0.png", "i1.png"]
