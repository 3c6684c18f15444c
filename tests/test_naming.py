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


@pytest.mark.parametrize(
    ("prompt", "stem"),
    [
        ("狐狸在雪山上", "hu-li-zai-xue-shan-shang"),
        ("Лиса на снегу", "lisa-na-snegu"),
        ("Ünïcödé Straße im Schnee bei Nacht", "unicode-strasse-im-schnee"),
    ],
)
def test_slugs_keep_the_meaning_of_any_script(
    run_cli, use_emulator: Emulator, prompt: str, stem: str
) -> None:
    result = run_cli("generate", prompt, "-p", "runware", "--name", "{slug}", "--json")
    assert result.exit_code == 0, result.stderr
    [file] = result.json()["files"]
    assert Path(file["path"]).name == f"{stem}.png"


@pytest.mark.parametrize(
    ("command", "template", "names"),
    [
        ("generate", "{slug}-{index:02d}", ["a-red-fox-01.png", "a-red-fox-02.png"]),
        ("generate", "fox-{index:03d}.{ext}", ["fox-001.png", "fox-002.png"]),
        ("batch", "{id}-{index:02d}", ["hero-01.png", "hero-02.png"]),
    ],
)
def test_format_specs_work_in_templates(
    run_cli, use_emulator: Emulator, tmp_path: Path, command: str, template: str, names: list
) -> None:
    if command == "batch":
        manifest = tmp_path / "m.jsonl"
        manifest.write_text('{"id": "hero", "prompt": "a red fox", "num_images": 2}\n')
        args = ["batch", str(manifest)]
    else:
        args = ["generate", "a red fox", "-n", "2"]
    result = run_cli(*args, "-p", "runware", "-o", "out", "--name", template)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in Path("out").glob("*.png")) == names


def test_format_specs_work_when_a_job_is_resumed(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli(
        "generate",
        "a red fox",
        "-p",
        "unifically",
        "-n",
        "2",
        "--name",
        "{slug}-{index:02d}",
        "--no-wait",
        "--json",
    )
    assert submitted.exit_code == 0, submitted.stderr
    job = submitted.json()["job"]["id"]
    resumed = run_cli("status", job, "--wait", "--download", "-o", "out")
    assert resumed.exit_code == 0, resumed.stderr
    assert sorted(p.name for p in Path("out").glob("*.png")) == [
        "a-red-fox-01.png",
        "a-red-fox-02.png",
    ]
    # Images a resume saves get their sidecar like any other.
    assert all(
        Path(f"out/{name}.json").exists() for name in ("a-red-fox-01.png", "a-red-fox-02.png")
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{slug}-{index:02q}", "does not render"),
        ("{slug:d}", "does not render"),
        ("{slug", "has an unbalanced brace"),
        ("fox}", "has an unbalanced brace"),
        ("{nosuch}", "unknown placeholder {nosuch}"),
        ("{slug.upper}", "unknown placeholder {slug.upper}"),
        ("{}", "unknown placeholder {}"),
        ("狐" * 76, "makes file names of 228 bytes; with the suffixes kling adds, a name may"),
        ("{slug:x>300}", "makes file names of 300 bytes"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "batch"])
def test_templates_that_cannot_name_every_image_are_refused_before_any_request(
    run_cli, use_emulator: Emulator, tmp_path: Path, command: str, template: str, message: str
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "hero", "prompt": "a red fox", "num_images": 2}\n')
    args = ["batch", str(manifest)] if command == "batch" else ["generate", "a fox", "-n", "2"]
    result = run_cli(*args, "-p", "runware", "--name", template, "--json")
    assert result.exit_code == 2, result.stdout
    text = result.stdout if command == "generate" else result.stdout + result.stderr
    assert message in text and "This is a bug" not in text
    assert use_emulator.requests == []


def test_the_longest_name_that_fits_is_saved(run_cli, use_emulator: Emulator) -> None:
    from kling_cli.naming import MAX_STEM_BYTES

    stem = "狐" * (MAX_STEM_BYTES // 3)
    result = run_cli("generate", "a fox", "-p", "runware", "--name", stem, "-o", "out")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in Path("out").glob("*.png")] == [f"{stem}.png"]


@pytest.mark.parametrize(
    ("values", "count", "refused"),
    [
        ({"prompt": "狐" * 2500}, 9, False),
        ({"provider": "p" * 400}, 1, False),
        ({"item_id": "🦊" * 52 + "a"}, 9, False),  # 226 bytes: the longest that fits
        ({"item_id": "🦊" * 52 + "a"}, 10, True),  # -10 makes it 227
        ({"item_id": "🦊" * 300}, 1, True),
    ],
)
def test_check_names_refuses_only_names_that_do_not_fit(
    values: dict, count: int, refused: bool
) -> None:
    from kling_cli.errors import InvalidRequestError
    from kling_cli.naming import check_names

    if not refused:
        check_names("{id}-{slug}-{provider}-{index}", count=count, **values)
        return
    with pytest.raises(InvalidRequestError, match=r"makes file names of 2[0-9][0-9] bytes"):
        check_names("{id}-{slug}-{provider}-{index}", count=count, **values)


def test_safe_names_fit_the_file_system_in_bytes() -> None:
    from kling_cli.naming import MAX_STEM_BYTES

    for text in ("🦊" * 300, "狐" * 200, "é" * 250):
        name = safe_name(text)
        assert len(name.encode()) <= MAX_STEM_BYTES
        assert len((f".{name}-9999.webp.json.4194304.part").encode()) <= 255
