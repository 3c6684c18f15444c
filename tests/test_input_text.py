"""Text as users really give it: byte order marks, manifests of the wrong shape, control and
invisible characters, `@image_N` look-alikes, and prompts that grow on the wire. Everything
bad is refused with exit 2 before any request."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from tests.test_entry_point import kling_command

REF = "https://example.com/a.png"
BOM = "\ufeff"


def sent_prompt(emu: Emulator) -> str:
    """The prompt field of the first submit, wherever the provider keeps it."""

    def find(value: Any) -> str | None:
        if isinstance(value, dict):
            for key in ("prompt", "positivePrompt"):
                if isinstance(value.get(key), str):
                    return str(value[key])
            value = list(value.values())
        if isinstance(value, list):
            for entry in value:
                found = find(entry)
                if found is not None:
                    return found
        return None

    first = next(r for r in emu.requests if r.server == "api" and r.method == "POST")
    prompt = find(first.json())
    assert prompt is not None
    return prompt


def run_kling(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [*kling_command(), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


# --- manifests -------------------------------------------------------------------------------

MANIFEST_SHAPES = [
    pytest.param("m.csv", BOM + "id,prompt\nfox,a red fox\n", 0, "", id="BOM CSV"),
    pytest.param("m.jsonl", BOM + '{"id": "fox", "prompt": "a red fox"}\n', 0, "", id="BOM JSONL"),
    pytest.param(
        "m.json",
        '[{"id": "fox", "prompt": "a red fox"}]\n',
        2,
        "m.json is a JSON array; expected JSONL (one JSON object per line) or CSV",
        id="JSON array",
    ),
    pytest.param(
        "m.csv", BOM + "id,prompt\n", 2, "m.csv has a header row but no items", id="header only"
    ),
    pytest.param(
        "m.txt",
        "a red fox on a ridge\n",
        2,
        "m.txt is neither JSONL nor CSV with a header row naming the fields",
        id="neither",
    ),
    pytest.param("m.csv", BOM + "\n  \n", 2, "m.csv has no items", id="BOM and blanks"),
]


@pytest.mark.parametrize(("name", "text", "code", "message"), MANIFEST_SHAPES)
def test_manifest_shapes(
    run_cli, use_emulator: Emulator, tmp_path: Path, name: str, text: str, code: int, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    result = run_cli("batch", str(path), "-p", "runware", "-o", "out", "--json")
    assert result.exit_code == code, result.stdout + result.stderr
    if code == 0:
        summary = json.loads(result.stdout.splitlines()[-1])["summary"]
        assert summary["succeeded"] == 1
        assert Path("out/fox.png").exists()
    else:
        assert message in result.json()["error"]["message"]  # type: ignore[index]
        assert use_emulator.requests == []
        assert not Path("out/manifest.json").exists()


def test_a_bom_manifest_on_stdin_runs_its_items(use_emulator: Emulator, tmp_path: Path) -> None:
    text = BOM + '{"id": "fox", "prompt": "a red fox"}\n'
    result = run_kling(
        "batch", "-", "-p", "runware", "-o", str(tmp_path / "out"), stdin=text.encode("utf-8")
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "fox.png").exists()


def test_csv_refs_are_split_on_the_bar_only(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "My Refs"
    folder.mkdir()
    for name in ("hero shot.png", "side view.png"):
        Image.new("RGB", (400, 400), "red").save(folder / name)
    (tmp_path / "m.csv").write_text(
        "id,prompt,refs\n"
        f'hero,@image_1 and @image_2 in snow,"{folder}/hero shot.png | {folder}/side view.png"\n'
    )
    result = run_cli("batch", str(tmp_path / "m.csv"), "-p", "runware", "-o", "out", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    [item] = json.loads(Path("out/manifest.json").read_text())["items"]
    assert [Path(ref).name for ref in item["request"]["references"]] == [
        "hero shot.png",
        "side view.png",
    ]


@pytest.mark.parametrize(
    ("bad_lines", "shown", "more"),
    [(2, 2, ""), (25, 20, "and 5 more.")],
    ids=["two bad lines", "twenty-five bad lines"],
)
def test_batch_validation_names_every_bad_line(
    run_cli, use_emulator: Emulator, tmp_path: Path, bad_lines: int, shown: int, more: str
) -> None:
    good = {"prompt": "a red fox", "provider": "runware"}
    kinds = [
        {"prompt": "a red fox", "provider": "runware", "aspect_ratio": "5:4"},
        {"prompt": "a red fox", "colour": "red"},
        {"prompt": "", "provider": "runware"},
    ]
    items = [good] * 3 + [kinds[i % 3] for i in range(bad_lines)]
    lines = [json.dumps(item) for item in items] + ["{not json"]
    (tmp_path / "m.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    result = run_cli("batch", str(tmp_path / "m.jsonl"), "-o", "out")
    assert result.exit_code == 2
    named = [line for line in result.stderr.splitlines() if "m.jsonl line " in line]
    assert len(named) == shown
    assert f"line {3 + bad_lines}:" in result.stderr or bad_lines > 20
    assert "line 4: Aspect ratio '5:4'" in result.stderr
    assert "line 5: unknown field 'colour'" in result.stderr
    assert more in result.stderr
    assert use_emulator.requests == []


# --- prompts and references ------------------------------------------------------------------

REFUSED = [
    pytest.param(["a fox\x00 in snow"], "contains a control character (U+0000)", id="NUL"),
    pytest.param(["a fox\x1b[31m"], "contains a control character (U+001B)", id="escape"),
    pytest.param(["\u200b\u200b"], "empty once invisible characters are removed", id="ZWSP"),
    pytest.param([BOM], "The prompt is empty", id="BOM only"),
    pytest.param(["\u3164 \u2800"], "empty once invisible characters", id="filler and braille"),
    pytest.param(["\u00a0\u2060\ufe0f"], "empty once invisible characters", id="NBSP joiner VS"),
    pytest.param(
        ["a fox", "--negative-prompt", "blur\x00"],
        "The negative prompt contains a control character",
        id="NUL in negative prompt",
    ),
    pytest.param(
        ["a fox", "-r", "https://example.com/a\t.png"],
        "contains a control character (U+0009)",
        id="tab in URL",
    ),
    pytest.param(
        ["a fox", "-r", "https://example.com/a.png\n"],
        "contains a control character (U+000A)",
        id="newline in URL",
    ),
    pytest.param(
        ["a fox", "-r", "https://exa\x00mple.com/a.png"],
        "contains a control character (U+0000)",
        id="NUL in URL",
    ),
    pytest.param(
        ["a fox", "-r", "./a\x00.png"], "contains a control character (U+0000)", id="NUL in path"
    ),
    pytest.param(
        ["a fox", "-r", "https://example.com/a\u3000.png"],
        "is not a valid http(s) URL",
        id="ideographic space in URL",
    ),
    pytest.param(
        ["@image_01 in snow", "-r", REF],
        "names @image_01; write references without leading zeros",
        id="@image_01",
    ),
]


@pytest.mark.parametrize("provider", ["runware", "kling", "fal"])
@pytest.mark.parametrize("args, message", REFUSED)
def test_bad_text_is_refused_before_any_request(
    run_cli, use_emulator: Emulator, args: list[str], message: str, provider: str
) -> None:
    if provider == "fal" and "-r" not in args:
        args = [*args, "-r", REF]  # fal needs a reference whatever the prompt
    result = run_cli("generate", *args, "-p", provider, "-a", "1:1", "--json")
    assert result.exit_code == 2, result.stdout
    assert message in result.json()["error"]["message"]  # type: ignore[index]
    assert use_emulator.requests == []


def test_a_bom_on_stdin_is_not_part_of_the_prompt(use_emulator: Emulator) -> None:
    result = run_kling(
        "generate", "-", "-p", "runware", "--no-sidecar", stdin=b"\xef\xbb\xbfa lighthouse\n"
    )
    assert result.returncode == 0, result.stderr
    assert sent_prompt(use_emulator) == "a lighthouse"


def test_a_stdin_prompt_is_utf8_whatever_the_locale(use_emulator: Emulator) -> None:
    prompt = "un renard roux à l'aube, 狐狸"
    result = run_kling(
        "generate",
        "-",
        "-p",
        "runware",
        "--no-sidecar",
        stdin=prompt.encode("utf-8"),
        env={"PYTHONIOENCODING": "latin-1", "LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert sent_prompt(use_emulator) == prompt


def test_a_stdin_prompt_that_is_not_utf8_is_refused(use_emulator: Emulator) -> None:
    result = run_kling("generate", "-", "-p", "runware", stdin="un renard à".encode("latin-1"))
    assert result.returncode == 2, result.stderr
    assert b"not UTF-8 text" in result.stderr and b"Traceback" not in result.stderr
    assert use_emulator.requests == []


# --- @image_N tokens on the wire -------------------------------------------------------------

KLING_SPELLING = "<<<image_1>>> in snow, mail a@image_1.com"
FAL_SPELLING = "@Image1 in snow, mail a@image_1.com"
PLAIN_SPELLING = "@image_1 in snow, mail a@image_1.com"
WIRE_SPELLINGS = {
    "runware": PLAIN_SPELLING,
    "unifically": PLAIN_SPELLING,
    "apiinone": PLAIN_SPELLING,
    "inferencesh": PLAIN_SPELLING,
    "kling": KLING_SPELLING,
    "comfy": KLING_SPELLING,
    "wavespeed": KLING_SPELLING,
    "fal": FAL_SPELLING,
    "aimlapi": FAL_SPELLING,
}


@pytest.fixture
def emulated(use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)
    return use_emulator


@pytest.mark.parametrize("provider", list(WIRE_SPELLINGS))
def test_only_whole_tokens_are_references(run_cli, emulated: Emulator, provider: str) -> None:
    result = run_cli(
        "generate",
        "@Image_1 in snow, mail a@image_1.com",
        "-r",
        REF,
        "-a",
        "1:1",
        "-p",
        provider,
        "--json",
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sent_prompt(emulated) == WIRE_SPELLINGS[provider]


def test_an_address_is_not_a_reference(run_cli, emulated: Emulator) -> None:
    # With no reference at all, `a@image_1.com` must not be taken for a missing @image_1.
    result = run_cli("generate", "mail a@image_1.com a fox", "-p", "kling", "--json")
    assert result.exit_code == 0, result.stdout
    assert sent_prompt(emulated) == "mail a@image_1.com a fox"


# 2500 characters as typed; `<<<image_1>>>` is five characters longer than `@image_1`.
LONG_PROMPT = "@image_1 " * 250 + "x" * 250


def test_the_prompt_limit_holds_on_the_wire(run_cli, emulated: Emulator) -> None:
    assert len(LONG_PROMPT) == 2500
    for provider, spelling in WIRE_SPELLINGS.items():
        result = run_cli(
            "generate", LONG_PROMPT, "-r", REF, "-a", "1:1", "-p", provider, "--dry-run", "--json"
        )
        if spelling is not KLING_SPELLING:
            assert result.exit_code == 0, (provider, result.stdout)
            continue
        assert result.exit_code == 2, (provider, result.stdout)
        message = result.json()["error"]["message"]  # type: ignore[index]
        assert "The prompt is 3750 characters long as " in message
        assert "accepts at most 2500, so shorten it by 1250" in message
    assert emulated.requests == []
