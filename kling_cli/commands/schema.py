"""`kling schema`: the JSON Schema of each command's `--json` output (kling_cli/schemas.py)."""

from __future__ import annotations

import json
from importlib.resources import files

import typer

from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output


def schema(
    ctx: typer.Context,
    command: list[str] | None = typer.Argument(
        None, metavar="[COMMAND]", help="A command, e.g. `generate` or `jobs show`; all if none."
    ),
) -> int:
    """Print the JSON Schema of a command's --json output (all commands if none is named).

    Every --json object has "schema_version"; within a version fields are only added."""
    output: Output = ctx.obj
    # The shipped file, generated from the models: printing it needs no pydantic.
    shipped = json.loads(files("kling_cli").joinpath("schemas.json").read_text(encoding="utf-8"))
    if not command:
        output.result(json.dumps(shipped, indent=2))
        return ExitCode.OK
    name = " ".join(command)
    if name not in shipped["commands"]:
        known = ", ".join(shipped["commands"])
        raise InvalidRequestError(f"No --json output named {name!r}; use one of: {known}.")
    output.result(json.dumps(shipped["commands"][name], indent=2))
    return ExitCode.OK
