"""Seventh round of breaks, against the streamed gallery and `--summary-md` (a `manifest.json`
read one entry at a time with ijson), each reproduced on the installed `kling` in a real
process on a real manifest file."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from tests.test_entry_point import kling_command, run
from tests.test_money_rule import tmpfs

__all__ = ["tmpfs"]  # a fixture, used by name


def _manifest(folder: Path, text: str | bytes) -> Path:
    folder.mkdir()
    path = folder / "manifest.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return folder


def _limit_memory() -> None:
    # A gigabyte and a half of address space: a streamed reader of one small entry fits
    # in a tenth of it.
    cap = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def test_a_deeply_nested_item_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """An item holding a list nested 40,000 deep (a 400 KB manifest): ijson's `parse`
    names every event by its full path, so the reader held gigabytes of ever longer
    prefixes; at 100,000 levels `kling report` was OOM-killed at 24 GB. Here, capped at
    1.5 GB, it ended "Unexpected MemoryError ... This is a bug"."""
    depth = 40_000
    folder = _manifest(
        tmp_path / "run", '{"items":[{"id":"a","x":' + "[" * depth + "]" * depth + "}]}"
    )
    result = subprocess.run(
        [*kling_command(), "report", str(folder), "-o", str(folder / "report.html"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limit_memory,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["report"].endswith("report.html")
    assert (folder / "report.html").read_text(encoding="utf-8").count("<article") == 1


@pytest.mark.parametrize(
    "item",
    [
        '{"id":"a","files":5}',
        '{"id":"a","files":[5, "x"]}',
        '{"id":"a","request":"a fox"}',
        '{"id":"a","task_ids":7}',
        '{"id":"a","status":["failed"]}',
    ],
)
@pytest.mark.parametrize("summary", [False, True])
def test_an_item_with_a_field_of_the_wrong_type_still_makes_the_views(
    tmp_path: Path, item: str, summary: bool
) -> None:
    """A hand-edited or foreign manifest whose item has `files: 5` (or `request` a string,
    `task_ids` a number) ended `kling report` with exit 1 "Unexpected TypeError ... This is
    a bug in kling-cli": the streamed views walked those fields without a look at their
    type. The item is shown with what it holds."""
    folder = _manifest(tmp_path / "run", '{"items":[' + item + ',{"id":"b"}]}')
    args = ["report", str(folder), "-o", str(folder / "report.html"), "--json"]
    if summary:
        args += ["--summary-md", str(tmp_path / "summary.md")]
    result = run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.count("<article") == 2
    if summary:
        table = (tmp_path / "summary.md").read_text(encoding="utf-8")
        assert "| a |" in table and "| b |" in table


def test_invalid_utf8_is_refused_in_one_plain_sentence(tmp_path: Path) -> None:
    """A manifest with bytes that are not UTF-8 was refused (exit 2, right) with a message
    holding the repr of yajl's bytes: `b'lexical error ...\\n  {"items":[{"id":"a\\xff...`,
    the manifest's own text and yajl's drawing escaped into one line. The first line of
    yajl's message is said, as for every other parse error."""
    folder = _manifest(tmp_path / "run", b'{"items":[{"id":"a\xff\xfe"}]}')
    result = run("report", str(folder), "-o", str(folder / "report.html"), "--json")
    assert result.returncode == 2, result.stdout
    message = json.loads(result.stdout)["error"]["message"]
    assert "invalid bytes in UTF8 string" in message
    assert "b'" not in message and "\\n" not in message and "right here" not in message
    assert not os.path.exists(folder / "report.html")


@pytest.mark.parametrize("field", ["error", "id", "status"])
def test_a_deeply_nested_shown_field_is_shown_not_a_crash(tmp_path: Path, field: str) -> None:
    """An item whose `error` (or `id`, `status`) is a list nested 100,000 deep: read fine
    since the reader streams, then the card's `str()` of it ended exit 1 "Unexpected
    RecursionError ... This is a bug in kling-cli" (a `status` list: "unhashable type")."""
    depth = 100_000
    folder = _manifest(
        tmp_path / "run",
        '{"items":[{"id":"a","status":"failed","' + field + '":'
        + "[" * depth + "]" * depth + '},{"id":"b","status":"succeeded"}]}',
    )  # fmt: skip
    result = run(
        "report", str(folder), "-o", str(folder / "report.html"),
        "--summary-md", str(tmp_path / "summary.md"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / "report.html").read_text(encoding="utf-8").count("<article") == 2
    assert "| b | succeeded |" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_a_summary_that_fills_the_disk_is_cut_back_and_named(tmp_path: Path, tmpfs: Path) -> None:
    """`kling report big.json --summary-md FULL/summary.md` with the summary's disk filling
    midway: the page was fine, yet the refusal said "Cannot write report.html: No space left
    on device" and the summary kept the header and half a table, its last row cut mid-word,
    for `$GITHUB_STEP_SUMMARY` to show. The summary is left as it was and is the file named."""
    items = [
        {"id": f"item-{i:05}", "status": "succeeded", "request": {"prompt": "a fox"}}
        for i in range(8000)
    ]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"items": items}), encoding="utf-8")
    summary = tmpfs / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    page = tmp_path / "report.html"
    result = run(
        "report", str(manifest), "-o", str(page), "--summary-md", str(summary), "--json"
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    message = json.loads(result.stdout)["error"]["message"]
    assert str(summary) in message and "No space left" in message
    assert summary.read_text(encoding="utf-8") == "# earlier step\n"
