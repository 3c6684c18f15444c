"""`kling emulate`: run the built-in provider emulator in the foreground."""

from __future__ import annotations

import typer

from kling_cli.errors import ExitCode, InvalidRequestError
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

    # The images are served on the next port up.
    if not 0 <= port <= 65534:
        raise InvalidRequestError(f"--port {port} is not a port; use 1 to 65534, or 0 for any.")
    try:
        serve(port=port, latency=latency, log=announce)
    except OSError as exc:
        raise InvalidRequestError(
            f"Cannot listen on 127.0.0.1 port {port} or {port + 1} ({exc.strerror or exc}); "
            "pick another --port, or 0 for any free one."
        ) from None
    return ExitCode.OK
