"""Every documented limit is checked before any network call: exit 2, one sentence naming the
bad value and what is allowed, and the provider (the emulator) sees no request at all."""

from __future__ import annotations

import pytest

from kling_cli.emulator import Emulator

TWO_REFS = ["-r", "https://example.com/a.png", "-r", "https://example.com/b.png"]
ELEVEN_REFS = [arg for i in range(11) for arg in ("-r", f"https://example.com/{i}.png")]

CASES = [
    pytest.param(
        ["a fox", "-n", "0"], "Number of images 0 is out of range; ask for 1 to 9", id="n=0"
    ),
    pytest.param(["a fox", "-n", "10"], "Number of images 10 is out of range", id="n=10"),
    pytest.param(
        ["a fox", "-a", "5:4"],
        "Aspect ratio '5:4' is not supported; use one of auto, 1:1",
        id="aspect 5:4",
    ),
    pytest.param(
        ["a fox", "-R", "4k"], "Resolution '4k' is not supported; use 1k, 2k", id="resolution 4k"
    ),
    pytest.param(
        ["a fox", *ELEVEN_REFS],
        "11 reference images given; Kling Image O1 accepts at most 10",
        id="11 refs",
    ),
    pytest.param([""], "The prompt is empty", id="empty prompt"),
    pytest.param(["   "], "The prompt is empty", id="blank prompt"),
    pytest.param(
        ["x" * 2501],
        "The prompt is 2501 characters long; Kling Image O1 accepts at most 2500",
        id="2501 chars",
    ),
    pytest.param(
        ["@image_1 next to @image_3", *TWO_REFS],
        "mentions @image_3 but only 2 reference images were given",
        id="@image_3 with 2 refs",
    ),
    pytest.param(
        ["@image_1 in the rain"],
        "mentions @image_1 but no reference images were given",
        id="@image_1 no refs",
    ),
    pytest.param(
        ["a fox", "-r", "htp:/example"],
        "'htp:/example' is not a valid http(s) URL",
        id="malformed url",
    ),
    pytest.param(
        ["a fox", "-r", "https://"], "'https://' is not a valid http(s) URL", id="url without host"
    ),
    pytest.param(
        ["a fox", "-r", "./hero.png"], "Reference './hero.png' does not exist", id="missing file"
    ),
    pytest.param(
        ["a fox", "-p", "nosuch"],
        "Unknown provider 'nosuch'; choose one of runware, unifically, ",
        id="unknown provider",
    ),
    pytest.param(
        ["a fox", "-p", "runware", "--negative-prompt", "blur"],
        "Runware has no negative prompt",
        id="runware negative prompt",
    ),
    pytest.param(
        ["a fox", "-p", "runware", "--mode", "multi-shot"],
        "Runware does not offer --mode multi-shot",
        id="runware multi-shot",
    ),
    pytest.param(["a fox", "--mode", "cinema"], "Mode 'cinema' is not supported", id="mode"),
    pytest.param(
        ["a fox", "-p", "unifically", "-f", "webp"],
        "Unifically cannot choose the output format webp",
        id="unifically format",
    ),
    pytest.param(
        ["a fox", "-p", "runware", "-a", "auto"],
        "needs at least one --ref",
        id="runware auto without refs",
    ),
    pytest.param(
        ["ox", "-p", "runware"],
        "Runware needs a prompt of at least 3 characters",
        id="runware short prompt",
    ),
    pytest.param(
        ["a fox", "-f", "gif"],
        "Output format 'gif' is not supported; use png, jpeg, webp",
        id="format gif",
    ),
    pytest.param(
        ["a fox", "--timeout", "0"],
        "--timeout must be a positive, finite number of seconds",
        id="timeout 0",
    ),
    pytest.param(["a fox", "-n", "abc"], "'--num-images'", id="n not a number"),
]


@pytest.mark.parametrize("args, message", CASES)
def test_bad_input_is_refused_before_any_request(
    run_cli, use_emulator: Emulator, args: list[str], message: str
) -> None:
    if "-p" not in args:
        args = [*args, "-p", "runware"]
    result = run_cli("generate", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr or message in result.stdout
    assert "Traceback" not in result.stderr
    assert use_emulator.requests == []


@pytest.mark.parametrize("args, message", CASES[:6])
def test_json_mode_reports_validation_errors_as_one_object(
    run_cli, use_emulator: Emulator, args: list[str], message: str
) -> None:
    result = run_cli("generate", *args, "--json")
    assert result.exit_code == 2
    body = result.json()
    assert body == {
        "schema_version": 1,
        "status": "error",
        "exit_code": 2,
        "job": None,
        "files": [],
        "error": {"code": "invalid_arguments", "message": body["error"]["message"], "hint": None},
    }
    assert message in body["error"]["message"]
    assert use_emulator.requests == []


def test_validation_runs_before_the_key_is_needed(run_cli) -> None:
    result = run_cli("generate", "a fox", "-n", "12", "-p", "runware")
    assert result.exit_code == 2
    assert "out of range" in result.stderr


def test_prompt_can_come_from_stdin(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "-", "-p", "runware", "-n", "0", stdin="a fox from stdin\n")
    assert result.exit_code == 2
    assert use_emulator.requests == []


def test_an_unset_aspect_ratio_never_becomes_a_refused_auto(
    run_cli, use_emulator: Emulator
) -> None:
    # inference.sh has no `auto`: a reference without -a must not be refused for a value the
    # user never typed.
    result = run_cli(
        "generate",
        "restyle @image_1",
        "-r",
        "https://example.com/a.png",
        "-p",
        "inferencesh",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    body = next(r for r in use_emulator.requests if r.server == "api" and r.method == "POST").json()
    assert body["input"]["aspect_ratio"] == "1:1"
    refused = run_cli(
        "generate",
        "restyle @image_1",
        "-r",
        "https://example.com/a.png",
        "-p",
        "inferencesh",
        "-a",
        "auto",
    )
    assert refused.exit_code == 2
