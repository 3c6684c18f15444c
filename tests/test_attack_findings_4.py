"""Fourth round of breaks of the money rule, against issue #17's failover and spread batches,
each reproduced with the installed `kling` against the emulator over HTTP."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from tests.test_entry_point import run


def _created(emulator: Emulator) -> Counter[str]:
    return Counter(provider for _, kind, provider, _ in emulator.events if kind == "created")


def _manifest(path: Path, count: int) -> Path:
    lines = [
        {"id": f"fox-{n}", "prompt": f"a red fox, study {n}", "aspect_ratio": "1:1"}
        for n in range(count)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(
    "again",
    ["unifically,runware", "runware,unifically,wavespeed", "unifically"],
)
def test_a_spread_batch_run_again_with_another_list_finds_its_items(
    use_emulator: Emulator, tmp_path: Path, again: str
) -> None:
    """`kling batch m.jsonl -p runware,unifically`, then the same with the list reordered,
    a provider added (say the first ran out of credits) or one of them alone: every item was
    made and saved, yet the re-run bought each one again, because an item's journal key named
    the exact provider list. README: "a re-run finds each item where it was made"."""
    source = _manifest(tmp_path / "m.jsonl", 4)
    out = tmp_path / "out"
    first = run("batch", str(source), "-p", "runware,unifically", "-o", str(out))
    assert first.returncode == 0, first.stderr
    made = _created(use_emulator)
    assert sum(made.values()) == 4
    entries = json.loads((out / "manifest.json").read_text())["items"]
    where = {entry["id"]: entry["provider"] for entry in entries}
    second = run("batch", str(source), "-p", again, "-o", str(out))
    assert _created(use_emulator) == made, "an item was bought a second time"
    entries = json.loads((out / "manifest.json").read_text())["items"]
    mine = [e for e in entries if e["provider"] in again.split(",")]
    # The items made by a provider of the new list are found there, done.
    assert mine and {e["status"] for e in mine} == {"skipped"}, second.stdout[-800:]
    assert {e["skip_reason"] for e in mine} == {"done"}
    assert all(where[e["id"]] == e["provider"] for e in mine)


def test_a_spread_item_made_by_a_provider_the_re_run_drops_is_not_bought_again(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    source = _manifest(tmp_path / "m.jsonl", 2)
    out = tmp_path / "out"
    use_emulator.out_of_credits_after("runware", 0)
    first = run("batch", str(source), "-p", "runware,unifically", "-o", str(out))
    assert first.returncode == 0, first.stderr
    assert _created(use_emulator) == {"unifically": 2}
    second = run("batch", str(source), "-p", "runware,wavespeed", "-o", str(out))
    assert _created(use_emulator) == {"unifically": 2}, "an item was bought a second time"
    entries = json.loads((out / "manifest.json").read_text())["items"]
    assert {e["status"] for e in entries} == {"skipped"}, second.stdout[-800:]
    assert all("add unifically to -p" in e["error"] for e in entries)


def test_a_spread_batch_whose_first_provider_cannot_serve_an_item_gives_it_to_the_next(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """`kling batch m.jsonl -p fal,runware` with text-only items: fal needs a reference, and
    the batch refused to start ("line 1: fal.ai's Kling O1 endpoint ... needs at least one
    --ref") although Runware, on the list, serves them, as `kling generate -p fal,runware`
    does. README: the items are spread over the providers that can serve them."""
    source = _manifest(tmp_path / "m.jsonl", 3)
    out = tmp_path / "out"
    result = run("batch", str(source), "-p", "fal,runware", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert _created(use_emulator) == {"runware": 3}
    entries = json.loads((out / "manifest.json").read_text())["items"]
    assert {(e["provider"], e["status"]) for e in entries} == {("runware", "succeeded")}
    # When no provider on the list can serve an item, the first one's reason is given.
    refused = run("batch", str(source), "-p", "fal,aimlapi", "-o", str(out))
    assert refused.returncode == 2
    assert "line 1: fal.ai's Kling O1 endpoint edits reference images" in refused.stderr


def test_an_item_a_provider_answered_with_a_5xx_is_not_bought_elsewhere_on_a_re_run(
    use_emulator: Emulator, tmp_path: Path, isolated_environment: Path
) -> None:
    """A 5xx to a submit may hide a task the provider made and charged (README: failover
    "never moves on after ... a 5xx"), and failover keeps the item where it is; but the
    journal recorded the task `not_created`, so the next run of the same spread batch sent
    the item to another provider (or again to the same one): two paid tasks for one item."""
    from kling_cli.emulator import Fault

    source = _manifest(tmp_path / "m.jsonl", 1)
    out = tmp_path / "out"
    use_emulator.inject("unifically", Fault(kind="server_error", on="submit", times=1))
    first = run("batch", str(source), "-p", "unifically,runware", "-o", str(out))
    assert first.returncode != 0
    assert sum(1 for r in use_emulator.requests if r.method == "POST") == 1
    job_id = json.loads((out / "manifest.json").read_text())["items"][0]["job_id"]
    shown = json.loads(run("jobs", "show", job_id, "--json").stdout)["job"]
    assert [task["state"] for task in shown["tasks"]] == ["may_exist"]
    again = run("batch", str(source), "-p", "unifically,runware", "-o", str(out))
    assert sum(1 for r in use_emulator.requests if r.method == "POST") == 1, again.stderr
    entry = json.loads((out / "manifest.json").read_text())["items"][0]
    assert entry["status"] == "skipped" and entry["skip_reason"] == "unknown_outcome"


def test_a_provider_that_answers_every_submit_with_a_5xx_gets_no_more_items(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """`kling batch -p unifically,runware` while Unifically answers each submit with a 500:
    every item sent there may have been made and charged, and cannot be sent elsewhere, yet
    the spread kept handing it half the batch. Like one that keeps refusing, it now gets no
    more after three in a row; the rest are made by the others."""
    from kling_cli.emulator import Fault

    use_emulator.inject("unifically", Fault(kind="server_error", on="submit", times=None))
    source = _manifest(tmp_path / "m.jsonl", 12)
    out = tmp_path / "out"
    run("batch", str(source), "-p", "unifically,runware", "-o", str(out), "--concurrency", "1")
    sent = [r for r in use_emulator.requests if r.method == "POST" and r.provider == "unifically"]
    assert len(sent) == 3
    entries = json.loads((out / "manifest.json").read_text())["items"]
    made = [e for e in entries if e["status"] == "succeeded"]
    assert len(made) == 9 and {e["provider"] for e in made} == {"runware"}
