"""`kling batch` under a provider's limits and the user's budget: 429s slow the run down
instead of failing it, out of credits stops it, and `--max-cost` stops submitting in time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.limiter import ProviderLimiter
from tests.test_batch import submit_count, write_jsonl


@pytest.fixture
def emu(use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)  # Kling signs with a pair
    return use_emulator


def manifest_of(tmp_path: Path, provider: str, count: int) -> str:
    """`count` items for `provider`, with ids k0, k1, ... (Kling) or r0, r1, ... (Runware)."""
    items = [
        {"id": f"{provider[0]}{i}", "prompt": f"a fox number {i}", "provider": provider}
        for i in range(count)
    ]
    return str(write_jsonl(tmp_path / "items.jsonl", items))


def kling_submits(emu: Emulator) -> list:
    return [r for r in emu.requests if r.provider == "kling" and r.method == "POST"]


def manifest_items() -> list[dict]:
    items: list[dict] = json.loads(Path("out/manifest.json").read_text())["items"]
    return items


def test_429s_without_retry_after_pause_the_provider_and_every_item_completes(
    run_cli, emu: Emulator, tmp_path: Path
) -> None:
    emu.inject("kling", Fault(kind="rate_limit", retry_after=None, times=3))  # code 1302
    result = run_cli("batch", manifest_of(tmp_path, "kling", 6), "-o", "out", "-j", "3")
    assert result.exit_code == 0, result.stderr
    assert "0 failed" in result.stderr and "6 images" in result.stderr
    assert "Kling rate limited the submits; retrying in" in result.stderr
    entries = manifest_items()
    assert [e["status"] for e in entries] == ["succeeded"] * 6
    # Each item was created exactly once: the refused submits created nothing.
    created = [event[3] for event in emu.events if event[1] == "created"]
    assert sorted(created) == sorted(task for e in entries for task in e["task_ids"])
    assert len(created) == 6
    posts = sorted(r.time for r in kling_submits(emu))
    assert len(posts) == 6 + 3
    # The first three submits were refused together; nothing more went to Kling before the
    # shortest backoff (half of 1 s, with jitter) was over.
    assert posts[3] - posts[2] >= 0.5


def test_an_item_refused_429_again_and_again_fails_with_the_rate_limit(
    run_cli, emu: Emulator, tmp_path: Path
) -> None:
    emu.inject("kling", Fault(kind="rate_limit", retry_after=0, times=50))
    result = run_cli("batch", manifest_of(tmp_path, "kling", 2), "-o", "out", "-j", "1")
    assert result.exit_code == 8, result.stderr
    assert [e["status"] for e in manifest_items()] == ["failed", "failed"]
    assert all("1302" in e["error"] or "rate" in e["error"].lower() for e in manifest_items())
    assert len(kling_submits(emu)) == 2 * 5  # five 429s in a row each, the retry policy's bound


def test_out_of_credits_stops_submitting(run_cli, emu: Emulator, tmp_path: Path) -> None:
    # Kling's 429 with code 1102 (resource pack used up) must not be retried like a rate limit.
    emu.inject("kling", Fault(kind="out_of_credits", times=20))
    result = run_cli("batch", manifest_of(tmp_path, "kling", 6), "-o", "out", "-j", "2", "--json")
    assert result.exit_code == 8, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])["summary"]
    failed = [e for e in manifest_items() if e["status"] == "failed"]
    assert 1 <= len(failed) <= 2  # only what was already on its way when the first answer came
    assert len(kling_submits(emu)) == len(failed)  # each sent once, never retried
    not_submitted = [e["id"] for e in manifest_items() if e["skip_reason"] == "out_of_credits"]
    assert len(not_submitted) == 6 - len(failed)
    assert [entry["id"] for entry in summary["not_submitted"]] == not_submitted
    assert summary["failed"] == len(failed) and summary["succeeded"] == 0


def test_max_cost_stops_submitting_when_the_reported_spend_would_pass_it(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    # Runware reports $0.05 an image, more than the $0.028 estimate: the estimate of ten items
    # ($0.28) fits $0.30, the real spend does not.
    use_emulator.cost_per_image = 0.05
    manifest_in = manifest_of(tmp_path, "runware", 10)
    result = run_cli("batch", manifest_in, "-o", "out", "-j", "1", "--max-cost", "0.30")
    assert result.exit_code == 8, result.stderr
    # Five items reported $0.25; the sixth fits ($0.25 + $0.028 estimate); then $0.30 is spent.
    assert submit_count(use_emulator) == 6
    assert "6 succeeded, 0 failed, 0 skipped (already done), 4 skipped (budget)" in result.stderr
    for i in range(6, 10):
        assert f"skipped (budget): r{i} (line {i + 1})" in result.stderr
    assert "--max-cost $0.30" in result.stderr
    entries = manifest_items()
    assert [e["skip_reason"] for e in entries] == [None] * 6 + ["budget"] * 4
    assert sum(e["cost"] for e in entries if e["cost"]) == pytest.approx(0.30)
    assert len(list(Path("out").glob("*.png"))) == 6


def test_max_cost_waits_for_what_is_in_flight(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    use_emulator.cost_per_image = 0.05
    manifest_in = manifest_of(tmp_path, "runware", 10)
    result = run_cli("batch", manifest_in, "-o", "out", "-j", "4", "--max-cost", "0.30", "--json")
    assert result.exit_code == 8, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])["summary"]
    submitted = submit_count(use_emulator)
    # Everything submitted was finished and downloaded; the rest was not sent at all.
    assert summary["succeeded"] == submitted == len(list(Path("out").glob("*.png")))
    assert {entry["reason"] for entry in summary["not_submitted"]} == {"budget"}
    assert len(summary["not_submitted"]) == 10 - submitted > 0


def test_the_limiter_halves_once_per_burst_and_grows_back_by_one() -> None:
    async def scenario() -> list[int]:
        limiter = ProviderLimiter(8, initial=4)
        seen = [limiter.limit]
        burst = limiter.epoch
        for _ in range(3):  # three submits sent together, all refused
            limiter.rate_limited(0.0, burst)
        seen.append(limiter.limit)
        limiter.rate_limited(0.0, limiter.epoch)  # refused again after the pause
        seen.append(limiter.limit)
        for _ in range(10):
            limiter.accepted()
        seen.append(limiter.limit)
        return seen

    assert asyncio.run(scenario()) == [4, 2, 1, 8]
