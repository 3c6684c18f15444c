"""The `kling` command: the typer app, and the one place exceptions become exit codes.

A command's module is imported only when that command runs or shows its own help: `kling --help`
lists the commands from `COMMANDS`, and `kling --version` loads none of them.
"""

from __future__ import annotations

import io
import os
import sys
import traceback
from importlib import import_module
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from kling_cli import DISTRIBUTION, __version__
from kling_cli.errors import ExitCode, InvalidRequestError, KlingError
from kling_cli.help import humanize, word
from kling_cli.ui import Output, envelope

if TYPE_CHECKING:
    # typer vendors click and exports neither type.
    from typer._click import Command, Context

HELP = """Generate still images with Kling Image O1 through the API providers that serve it.

Try it offline first: kling generate "a red fox on a snowy ridge at dawn" --emulate"""

EPILOG = (
    "Exit codes: 0 ok · 1 unexpected or provider unreachable · 2 invalid arguments · "
    "3 task failed · 4 key or config · 5 timed out · 6 rate limited or out of credits · "
    "7 download failed · 8 partial (some batch items or images missing) · "
    "129, 130, 143 interrupted (SIGHUP, Ctrl-C, SIGTERM)."
)

# name: ("module:attribute", one-line help), in the order `kling --help` lists them. The attribute
# is a command function or a typer app of subcommands; the help line is the first paragraph of
# that command's own help (tests/test_cli_commands.py holds them to it).
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": (
        "kling_cli.commands.generate:generate",
        "Generate images from a prompt and optional reference images.",
    ),
    "batch": (
        "kling_cli.commands.batch:batch",
        "Run every item of a manifest; re-running it skips what is done and resumes the rest.",
    ),
    "report": (
        "kling_cli.commands.report:report",
        "Build an HTML gallery of batch results from one or more manifests.",
    ),
    "status": (
        "kling_cli.commands.status:status",
        "Ask the provider where a job stands; with --wait and --download, finish it.",
    ),
    "ingest": (
        "kling_cli.commands.ingest:ingest",
        "Finish a job from a saved webhook body, as `kling status --download` would.",
    ),
    "open": (
        "kling_cli.commands.open_images:open_job",
        "Open a job's saved images in the system's image viewer (the latest job by default).",
    ),
    "emulate": (
        "kling_cli.commands.emulate:emulate",
        "Serve every provider's API offline on 127.0.0.1, to exercise scripts and pipelines.",
    ),
    "jobs": (
        "kling_cli.commands.jobs:app",
        "List the jobs kling has submitted (the local journal).",
    ),
    "providers": (
        "kling_cli.commands.providers:app",
        "List the providers, their capabilities and price, and key status.",
    ),
    "config": (
        "kling_cli.commands.config:app",
        "Manage API keys and settings (stored in a private TOML file).",
    ),
    "schema": (
        "kling_cli.commands.schema:schema",
        "Print the JSON Schema of a command's --json output (all commands if none is named).",
    ),
    "completion": (
        "kling_cli.commands.completion:completion",
        "Print the shell completion script for bash, zsh or fish.",
    ),
}


# Subcommands of a command that is not a group: `kling batch merge DIR...` while
# `kling batch FILE` runs a manifest (a manifest file named `merge` is `./merge`).
SUBCOMMANDS: dict[tuple[str, str], str] = {
    ("batch", "merge"): "kling_cli.commands.batch:merge",
}


class CommandSummary(TyperCommand):
    """A command's name and help line, standing in for it in listings until it is run."""


class LazyCommandGroup(TyperGroup):
    """Lists every command of `COMMANDS` as a `CommandSummary`, and imports a command's module
    only when the command is resolved to be run (or to show its own help, or complete its
    options)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        humanize(self)
        for name, (_, help_line) in COMMANDS.items():
            self.commands.setdefault(
                name, CommandSummary(name, help=help_line, rich_markup_mode=self.rich_markup_mode)
            )

    def get_params(self, ctx: Context) -> list[Any]:
        # typer adds --install-completion and --show-completion here, after construction.
        params = super().get_params(ctx)
        for param in params:
            word(param)
        return params

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        if len(args) >= 2 and (args[0], args[1]) in SUBCOMMANDS:
            path = f"{args[0]} {args[1]}"
            return path, self._load(path, SUBCOMMANDS[(args[0], args[1])]), args[2:]
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, CommandSummary):
            command = self.commands[name] = self.load_command(name)
        return name, command, rest

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # typer turns a KeyboardInterrupt that leaves a command into a silent exit 130:
            # no message, no --json object, and 130 for SIGTERM too. Raised as our own error,
            # `main` reports it with the signal's exit code.
            from kling_cli.errors import InterruptedByUser, signal_number

            raise InterruptedByUser("Interrupted.", signum=signal_number(exc)) from exc

    def load_command(self, name: str) -> Command:
        return self._load(name, COMMANDS[name][0])

    def _load(self, name: str, target: str) -> Command:
        module, _, attribute = target.partition(":")
        loaded = getattr(import_module(module), attribute)
        return humanize(self._command_from(name, loaded))

    def _command_from(self, name: str, loaded: Any) -> Command:
        if isinstance(loaded, typer.Typer):
            return get_group_from_info(
                TyperInfo(loaded, name=name),
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=self.rich_markup_mode,
                suggest_commands=self.suggest_commands,
            )
        return get_command_from_info(
            CommandInfo(name=name, callback=loaded),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
        )


app = typer.Typer(
    name="kling",
    cls=LazyCommandGroup,
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    # Tracebacks with locals would print API keys.
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{DISTRIBUTION} {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Show the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Generate still images with Kling Image O1."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    output = Output(json_mode="--json" in args)
    from kling_cli import interrupts

    interrupts.install()
    _read_stdin_as_utf8()
    try:
        result = app(args=args, prog_name="kling", standalone_mode=False, obj=output)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt) as exc:
        from kling_cli.errors import InterruptedByUser, signal_number

        return report(output, InterruptedByUser("Interrupted.", signum=signal_number(exc)))
    except typer.TyperException as exc:
        if not exc.format_message():
            # `kling` alone: typer has printed the help already.
            return ExitCode.INVALID_ARGUMENTS
        # typer's own parsing errors (a missing argument, `-n abc`): same exit code as our own
        # validation.
        return report(output, InvalidRequestError(_usage_message(exc)))
    except KlingError as exc:
        return report(output, exc)
    except UnicodeDecodeError as exc:
        # Only the user's input is decoded as strict UTF-8 (stdin, manifests); provider
        # answers are read leniently.
        return report(
            output,
            InvalidRequestError(
                f"The input is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); save it as UTF-8."
            ),
        )
    except Exception as exc:
        if os.environ.get("KLING_DEBUG"):
            traceback.print_exc()
        unexpected = KlingError(
            f"Unexpected {type(exc).__name__}: {exc}",
            hint="This is a bug in kling-cli; rerun with KLING_DEBUG=1 for a traceback "
            "and report it.",
        )
        return report(output, unexpected)
    return int(result) if isinstance(result, int) else ExitCode.OK


def _read_stdin_as_utf8() -> None:
    """Prompts and manifests piped in are UTF-8 whatever the locale says, and a byte order
    mark before them (Excel's "CSV UTF-8", Windows editors) is not part of the text."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(encoding="utf-8-sig", errors="strict")


def report(output: Output, exc: KlingError) -> int:
    if output.json_mode:
        output.emit_json(envelope(exit_code=exc.exit_code, job=exc.job, error=exc))
    else:
        output.error(exc)
    return int(exc.exit_code)


def _usage_message(exc: typer.TyperException) -> str:
    message = exc.format_message()
    context = getattr(exc, "ctx", None)
    command_path = getattr(context, "command_path", None)
    return f"{message} (see `{command_path} --help`)." if command_path else message
