"""The --json contract: the real output of every command, and of its errors, validates against the
schema `kling schema` prints; the shipped schemas are the models' own; and within a version no
field is renamed, dropped or retyped (tests/contract/schemas-v<N>.json is that version's
snapshot: add fields freely, anything else bumps JSON_SCHEMA_VERSION and adds a snapshot)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

from kling_cli.schemas import SCHEMA_FILE, render
from kling_cli.ui import JSON_SCHEMA_VERSION
from tests.receiver import Receiver
from tests.test_entry_point import kling_command

SNAPSHOTS = Path(__file__).resolve().parent / "contract"


def kling(*args: str, cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    env = {**os.environ, "KLING_EMULATOR_LATENCY": "0"}
    done = subprocess.run(
        [*kling_command(), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"kling {' '.join(args)} printed no JSON: {done.stderr}"
    return done.returncode, lines


def schema_of(command: str) -> dict[str, Any]:
    done = subprocess.run(
        [*kling_command(), "schema", *command.split()], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    schema: dict[str, Any] = json.loads(done.stdout)
    return schema


def test_every_command_and_error_validates_against_its_schema(
    tmp_path: Path, use_emulator: object
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "fox", "prompt": "a red fox"}\n{"id": "owl", "prompt": "an owl"}\n')
    emulated = ["-p", "runware"]  # the emulator the fixture serves, over HTTP
    runs: list[tuple[str, int, list[dict[str, Any]]]] = []

    def run(command: str, *args: str) -> list[dict[str, Any]]:
        code, lines = kling(*args, cwd=tmp_path)
        runs.append((command, code, lines))
        return lines

    run("generate", "generate", "a red fox", *emulated, "--name", "fox")
    run("generate", "generate", "a red fox", *emulated, "--name", "fox", "--skip-existing")
    # Routed over two providers: the job carries its attempts.
    [routed] = run("generate", "generate", "a hare", "-p", "runware,unifically", "-a", "1:1")
    assert [attempt["provider"] for attempt in routed["job"]["attempts"]] == ["runware"]
    # Several aspect ratios: still one object, each job under `variants`, and the gallery.
    [variants] = run("generate", "generate", "a red fox", *emulated, "-a", "16:9,1:1")
    assert [v["aspect_ratio"] for v in variants["variants"]] == ["16:9", "1:1"]
    run("generate", "generate", "a red fox", *emulated, "--report", "one.html")
    [submitted] = run("generate", "generate", "an owl", *emulated, "--no-wait")
    run("generate", "generate", "a red fox", "-p", "runware", "--dry-run")
    run("generate", "generate", "a red fox", "-p", "auto", "--dry-run")
    run("generate", "generate", "", *emulated)  # invalid: exit 2
    run("generate", "generate", "a red fox", "-p", "nope")  # unknown provider
    job_id = submitted["job"]["id"]
    with Receiver() as receiver:
        run("generate", "generate", "a heron", *emulated, "--no-wait", "--webhook", receiver.url)
        [delivered] = receiver.wait_for(1)
    (tmp_path / "hook.json").write_bytes(delivered.body)
    run("ingest", "ingest", "hook.json")
    run("ingest", "ingest", "m.jsonl")  # not one JSON body: exit 2
    run("status", "status", job_id, "--wait", "--download")
    run("status", "status", job_id)
    run("status", "status", "no-such-job")
    run("jobs", "jobs")
    run("jobs", "jobs", "--state", "nope")
    run("jobs show", "jobs", "show", job_id)
    run("jobs show", "jobs", "show", routed["job"]["id"])
    run("jobs show", "jobs", "show", "no-such-job")
    run("jobs prune", "jobs", "prune", "--before", "2000-01-01")
    run("jobs prune", "jobs", "prune", "--before", "not-a-date")
    run("batch", "batch", str(manifest), *emulated, "-o", "out")
    run("batch", "batch", str(manifest), *emulated, "-o", "out", "--dry-run")
    run("batch", "batch", str(tmp_path / "missing.jsonl"), *emulated)
    run("batch merge", "batch", "merge", "out", "-o", "merged")
    run("batch merge", "batch", "merge", "nowhere", "-o", "merged")
    run("report", "report", "out", "-o", "gallery.html")
    run("report", "report", "nowhere", "-o", "gallery.html")
    run("providers", "providers")
    run("providers show", "providers", "show", "runware")
    run("providers show", "providers", "show", "nope")
    run("providers route", "providers", "route", "a red fox", "-a", "16:9")
    run("providers route", "providers", "route", "a red fox", "-p", "nope")
    run("config list", "config", "list")
    config_file = Path(
        subprocess.run(
            [*kling_command(), "config", "path"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("this is = = not TOML\n")  # a broken config: exit 4
    run("providers", "providers")
    run("config list", "config", "list")

    schemas = {command: schema_of(command) for command, _, _ in runs}
    outcomes = set()
    for command, code, lines in runs:
        for line in lines:
            jsonschema.validate(line, schemas[command])
            assert line["schema_version"] == JSON_SCHEMA_VERSION
            outcomes.add((command, "error" if line.get("status") == "error" else "ok"))
        if "exit_code" in lines[-1]:
            assert lines[-1]["exit_code"] == code
    # Each command was seen succeeding and failing (the error envelope); status also both.
    assert {command for command, outcome in outcomes if outcome == "error"} == set(schemas)
    assert {command for command, outcome in outcomes if outcome == "ok"} == set(schemas)


def test_a_renamed_field_fails_validation() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())["commands"]["jobs"]
    good = {"schema_version": 1, "jobs": []}
    jsonschema.validate(good, schema)
    try:
        jsonschema.validate({"schema_version": 1, "job_list": []}, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a renamed field validated")


def test_shipped_schemas_are_generated_from_the_models() -> None:
    assert SCHEMA_FILE.read_text() == render(), (
        "kling_cli/schemas.json is stale: regenerate it with `python -m kling_cli.schemas`"
    )


def _only_added(old: Any, new: Any, where: str) -> None:
    """`new` keeps everything `old` declares: same types and values, no property or required
    field dropped; new properties, and new definitions, are allowed."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for key, value in old.items():
            if key in ("description", "title"):
                continue
            assert key in new, f"{where}/{key} was dropped or renamed"
            if key == "required":
                missing = set(value) - set(new[key])
                assert not missing, f"{where}: no longer required: {missing}"
            else:
                _only_added(value, new[key], f"{where}/{key}")
    else:
        assert old == new, f"{where} changed: {old!r} -> {new!r}"


def test_no_field_is_renamed_dropped_or_retyped_within_a_version() -> None:
    snapshot = SNAPSHOTS / f"schemas-v{JSON_SCHEMA_VERSION}.json"
    assert snapshot.exists(), (
        f"JSON_SCHEMA_VERSION is {JSON_SCHEMA_VERSION}: copy kling_cli/schemas.json to {snapshot}"
    )
    _only_added(json.loads(snapshot.read_text()), json.loads(render()), "")
