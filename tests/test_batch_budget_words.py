"""`kling batch` budgets that cannot be switched off by accident, and counts that agree with
their nouns; on the installed `kling` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from tests.test_entry_point import run


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "-0.01"])
def test_a_max_cost_that_is_no_cap_is_refused_before_any_request(
    use_emulator: Emulator, value: str
) -> None:
    Path("items.jsonl").write_text('{"id": "a", "prompt": "a red fox"}\n')
    result = run("batch", "items.jsonl", "-p", "runware", f"--max-cost={value}", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--max-cost must be a finite number" in json.loads(result.stdout)["error"]["message"]
    assert use_emulator.requests == []
    assert not Path("kling-output").exists()


def test_max_cost_zero_is_a_cap_not_a_switch(use_emulator: Emulator) -> None:
    Path("items.jsonl").write_text('{"id": "a", "prompt": "a red fox"}\n')
    result = run("batch", "items.jsonl", "-p", "runware", "--max-cost", "0")
    assert result.returncode == 2 and "over --max-cost $0.00" in result.stderr
    assert use_emulator.requests == []


def test_counts_agree_with_their_nouns(use_emulator: Emulator) -> None:
    Path("items.jsonl").write_text('{"id": "a", "prompt": "a red fox"}\n')
    result = run("batch", "items.jsonl", "-p", "runware", "-o", "out")
    assert result.returncode == 0, result.stderr
    assert "(1 image)" in result.stderr and "; 1 image;" in result.stderr
    assert "1 images" not in result.stderr
    dry = run("batch", "items.jsonl", "-p", "runware", "--dry-run")
    assert "1 item;" in dry.stderr and "1 items" not in dry.stderr
