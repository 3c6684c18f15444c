"""`kling emulate`: run the built-in provider emulator in the foreground."""

from __future__ import annotations

import typer

from kling_cli.errors import ExitCode
from kling_cli.ui import Output


def emulate(
    ctx: typer.Context,
    port: int = typer.Option(
        8765, "--port", help="API port on 127.0.0.1; images are served on port+1 (0: any)."
    ),
    latency: float = typer.Option(2.0, "--latency", help="Seconds until a job completes."),
) -> int:
    """Serve every provider's API offline on 127.0.0.1, to exercise scripts and pipelines."""
    from kling_cli.emulator import EMULATOR_API_KEY, serve

    output: Output = ctx.obj

    def announce(text: str) -> None:
        output.result(text)
        output.note(
            f"Point kling at it with KLING_<ID>_BASE_URL and any provider key set to "
            f"{EMULATOR_API_KEY!r}. Ctrl-C stops it."
        )

    serve(port=port, latency=latency, log=announce)
    return ExitCode.OK
