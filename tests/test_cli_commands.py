"""The command tree: `kling --help` lists every command from a fixed table without importing the
commands, so the table must say what each command says of itself; each command still loads,
runs and explains itself; and start-up imports only what the command run needs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import typer

from kling_cli.cli import COMMANDS, CommandSummary, LazyCommandGroup, app
from kling_cli.providers.catalog import CATALOG


def command_tree() -> LazyCommandGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyCommandGroup)
    return group


def first_paragraph(help_text: str | None) -> str:
    return " ".join(inspect.cleandoc(help_text or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_help_line_is_the_first_paragraph_of_the_commands_own_help(name: str) -> None:
    command = command_tree().load_command(name)
    assert command.name == name
    assert COMMANDS[name][1] == first_paragraph(command.help)


def test_root_help_reads_the_same_as_with_every_command_loaded(
    run_cli, capsys: pytest.CaptureFixture[str]
) -> None:
    from_table = run_cli("--help")
    assert from_table.exit_code == 0

    group = command_tree()
    with group.make_context("kling", ["generate"]) as ctx:
        for name in COMMANDS:
            group.resolve_command(ctx, [name])
    assert not any(isinstance(cmd, CommandSummary) for cmd in group.commands.values())
    capsys.readouterr()
    group.main(["--help"], prog_name="kling", standalone_mode=False)
    assert capsys.readouterr().out == from_table.stdout


def test_root_help_lists_every_command_with_its_help_line(run_cli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    listed = [line.strip("│ ").split(None, 1) for line in result.stdout.splitlines()]
    rows = {row[0]: row[1].strip() for row in listed if len(row) == 2 and row[0] in COMMANDS}
    assert rows == {name: help_line for name, (_, help_line) in COMMANDS.items()}


def every_command_path() -> list[list[str]]:
    paths = []
    group = command_tree()
    for name in COMMANDS:
        paths.append([name])
        command = group.load_command(name)
        if isinstance(command, typer.core.TyperGroup):
            paths.extend([name, sub] for sub in command.commands)
    return paths


def test_every_command_and_subcommand_shows_its_own_help(run_cli) -> None:
    paths = every_command_path()
    assert ["config", "set-key"] in paths and ["jobs", "show"] in paths
    for path in paths:
        result = run_cli(*path, "--help")
        assert result.exit_code == 0, (path, result.stderr)
        assert f"Usage: kling {' '.join(path)} " in result.stdout
        if len(path) == 1:
            assert COMMANDS[path[0]][1] in " ".join(result.stdout.split())


def test_an_unknown_command_is_an_invalid_argument_with_a_suggestion(run_cli) -> None:
    result = run_cli("generat", "a fox")
    assert result.exit_code == 2
    assert "No such command 'generat'. Did you mean 'generate'?" in result.stderr
    result = run_cli("bogus")
    assert result.exit_code == 2
    assert "No such command 'bogus'" in result.stderr and "Did you mean" not in result.stderr
    result = run_cli("config", "lst")
    assert result.exit_code == 2
    assert "Did you mean 'list', 'set'?" in result.stderr
    as_json = run_cli("--json", "bogus")
    assert as_json.exit_code == 2
    assert as_json.json()["error"]["code"] == "invalid_arguments"


def test_version_is_printed_before_any_command_runs(run_cli) -> None:
    result = run_cli("--version", "generate")
    assert result.exit_code == 0
    assert result.stdout.startswith("kling-image-cli ")


WATCHED = ("httpx", "PIL", "sqlite3", "kling_cli.emulator", "kling_cli.engine")
ADAPTERS = (
    "kling_cli.providers.base",
    *(info.adapter.partition(":")[0] for info in CATALOG.values()),
)


def modules_imported_by(*args: str) -> set[str]:
    script = (
        "import json, sys\n"
        "from kling_cli.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    code, modules = json.loads(completed.stderr.strip().splitlines()[-1])
    assert code == 0, completed.stderr
    return set(modules)


@pytest.mark.parametrize(
    ("args", "own_modules"),
    [
        (("--help",), set()),
        (("--version",), set()),
        (("providers",), {"kling_cli.commands.providers", "kling_cli.commands.common"}),
        (("config", "list"), {"kling_cli.commands.config", "kling_cli.commands.common"}),
        (("generate", "--help"), {"kling_cli.commands.generate", "kling_cli.commands.common"}),
    ],
    # Sorted: a set's order changes with each process's string hash seed, and every xdist
    # worker must collect the same test ids.
    ids=lambda value: " ".join(sorted(value) if isinstance(value, set) else value),
)
def test_start_up_imports_only_the_command_being_run(
    args: tuple[str, ...], own_modules: set[str]
) -> None:
    modules = modules_imported_by(*args)
    commands = {name for name in modules if name.startswith("kling_cli.commands.")}
    assert commands == own_modules
    assert not [name for name in modules if name.startswith(WATCHED + ADAPTERS)]


def test_version_loads_neither_rich_nor_pydantic_nor_the_config() -> None:
    modules = modules_imported_by("--version")
    assert not {"rich", "pydantic", "kling_cli.config"} & modules


@pytest.mark.parametrize("args", [("providers",), ("config", "list")], ids=" ".join)
def test_commands_that_open_no_session_do_not_load_the_session_module(
    args: tuple[str, ...],
) -> None:
    # Sessions (keys, base URLs, the emulator's wiring) belong to the commands that talk to a
    # provider; `providers` and `config list` are the ones start-up is measured on.
    assert "kling_cli.session" not in modules_imported_by(*args)
