"""--name templates: the names users ask for, and safe ones whatever the prompt or id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from kling_cli.naming import safe_name


def test_a_template_with_every_placeholder(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate",
        "A Red Fox!",
        "-p",
        "runware",
        "-a",
        "16:9",
        "-R",
        "2k",
        "-n",
        "2",
        "--json",
        "--name",
        "{provider}_{aspect}_{resolution}_{slug}_{index}-of-job-{job}_{date}T{time}.{ext}",
    )
    assert result.exit_code == 0, result.stderr
    body = result.json()
    names = sorted(Path(f["path"]).name for f in body["files"])
    job = body["job"]["id"]
    assert [n.split("-of-job-")[0] for n in names] == [
        "runware_16x9_2k_a-red-fox_1",
        "runware_16x9_2k_a-red-fox_2",
    ]
    assert all(f"-of-job-{job}_" in n and n.endswith(".png") for n in names)


def test_fanned_out_images_are_numbered_across_the_job(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "a fox", "-p", "unifically", "-n", "3", "--name", "fox", "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(Path(f["path"]).name for f in result.json()["files"]) == [
        "fox-1.png",
        "fox-2.png",
        "fox-3.png",
    ]


def test_names_are_never_overwritten_unless_asked(run_cli, use_emulator: Emulator) -> None:
    for _ in range(2):
        assert run_cli("generate", "a fox", "-p", "runware", "--name", "same").exit_code == 0
    assert sorted(p.name for p in Path("kling-output").glob("*.png")) == ["same-1.png", "same.png"]
    assert (
        run_cli("generate", "a fox", "-p", "runware", "--name", "same", "--overwrite").exit_code
        == 0
    )
    assert len(list(Path("kling-output").glob("*.png"))) == 2


@pytest.mark.parametrize(
    "template, message",
    [
        ("{colour}.png", "unknown placeholder {colour}"),
        ("{ext}-{id}", "{ext} only at its end"),
        ("../{id}", "a file name, not a path"),
    ],
)
def test_bad_templates_are_refused_before_any_request(
    run_cli, use_emulator: Emulator, template: str, message: str
) -> None:
    result = run_cli("generate", "a fox", "-p", "runware", "--name", template)
    assert result.exit_code == 2
    assert message in result.stderr
    assert use_emulator.requests == []


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "CON", "com1.txt", 'a/b\\\\c:d*e?f"g<h>i|j', "🦊" * 300, " . ", "\\x00x"],
)
def test_safe_name_is_one_harmless_path_component(hostile: str) -> None:
    name = safe_name(hostile)
    assert name and "/" not in name and "\\\\" not in name and not name.startswith(".")
    assert not any(c in name for c in '<>:"|?*')
    assert name.split(".")[0].upper() not in {"CON", "COM1"}
    assert len(name) <= 120


def test_hostile_prompts_make_safe_slugs(run_cli, use_emulator: Emulator) -> None:
    prompts = ["../../../etc/passwd", "CON", "🦊🦊🦊 fox", "x" * 2500, "a/b\\c"]
    for prompt in prompts:
        result = run_cli("generate", prompt, "-p", "runware", "--name", "{slug}", "--json")
        assert result.exit_code == 0, result.stderr
    names = [p.name for p in Path("kling-output").iterdir() if p.suffix == ".png"]
    assert len(names) == len(prompts)
    assert all(
        Path("kling-output", n).resolve().parent == Path("kling-output").resolve() for n in names
    )
    sidecars = [json.loads(p.read_text()) for p in Path("kling-output").glob("*.json")]
    assert len(sidecars) == len(prompts)


def test_skip_existing_submits_nothing_when_the_files_are_there(
    run_cli, use_emulator: Emulator
) -> None:
    args = ("generate", "a red fox", "-p", "runware", "-n", "2", "--name", "fox-{index}")
    first = run_cli(*args, "--skip-existing")
    assert first.exit_code == 0, first.stderr
    submits = len([r for r in use_emulator.requests if r.server == "api"])
    second = run_cli(*args, "--skip-existing")
    assert second.exit_code == 0
    assert sorted(second.stdout.split()) == sorted(first.stdout.split())
    assert "nothing was submitted" in second.stderr
    assert len([r for r in use_emulator.requests if r.server == "api"]) == submits
    refused = run_cli("generate", "a red fox", "-p", "runware", "--skip-existing")
    assert refused.exit_code == 2 and "{task} is not" in refused.stderr
