"""`kling batch` under a provider's limits: 429s slow the run down instead of failing it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.limiter import ProviderLimiter
from tests.test_batch import write_jsonl


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
