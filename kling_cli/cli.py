"""The `kling` command: the typer app, and the one place exceptions become exit codes."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from kling_cli import __version__
from kling_cli.commands import batch, config, emulate, generate, jobs, providers, status
from kling_cli.errors import ExitCode, InvalidRequestError, KlingError
from kling_cli.ui import Output, envelope

HELP = """Generate still images with Kling Image O1 through the API providers that serve it.

Try it offline first: kling generate "a red fox on a snowy ridge at dawn" --emulate"""

EPILOG = (
    "Exit codes: 0 ok · 1 unexpected · 2 invalid arguments · 3 task failed · "
    "4 key or config · 5 timed out · 6 rate limited or out of credits · "
    "7 download failed · 8 some batch items failed · 130 interrupted."
)

app = typer.Typer(
    name="kling",
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
        typer.echo(f"kling {__version__}")
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


app.command("generate")(generate.generate)
app.command("batch")(batch.batch)
app.command("status")(status.status)
app.add_typer(jobs.app, name="jobs")
app.add_typer(providers.app, name="providers")
app.add_typer(config.app, name="config")
app.command("emulate")(emulate.emulate)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    output = Output(json_mode="--json" in args)
    try:
        result = app(args=args, prog_name="kling", standalone_mode=False, obj=output)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        output.note("Interrupted.")
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:
        if not exc.format_message():
            # `kling` alone: typer has printed the help already.
            return ExitCode.INVALID_ARGUMENTS
        # typer's own parsing errors (a missing argument, `-n abc`): same exit code as our own
        # validation.
        return report(output, InvalidRequestError(_usage_message(exc)))
    except KlingError as exc:
        return report(output, exc)
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
