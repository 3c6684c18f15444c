"""`kling emulate`: run the built-in provider emulator in the foreground."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output

if TYPE_CHECKING:
    from kling_cli.emulator import Emulator


def emulate(
    ctx: typer.Context,
    port: int = typer.Option(
        8765, "--port", help="API port on 127.0.0.1; images are served on port+1 (0: any)."
    ),
    latency: float = typer.Option(2.0, "--latency", help="Seconds until a job completes."),
    down: list[str] = typer.Option(
        [], "--down", metavar="ID", help="A provider that is down: connections are refused."
    ),
    reject_key: list[str] = typer.Option(
        [], "--reject-key", metavar="ID", help="A provider that refuses the key."
    ),
    out_of_credits: list[str] = typer.Option(
        [],
        "--out-of-credits",
        metavar="ID=N",
        help="A provider whose credit pays for N submits; later ones are refused.",
    ),
    slow: list[str] = typer.Option(
        [], "--slow", metavar="ID=SECONDS", help="A provider that answers each submit late."
    ),
) -> int:
    """Serve every provider's API offline on 127.0.0.1, to exercise scripts and pipelines."""
    from kling_cli.emulator import EMULATOR_API_KEY, serve

    output: Output = ctx.obj

    def announce(text: str) -> None:
        output.result(text)
        output.note(
            f"Point kling at it with KLING_<ID>_BASE_URL (and the variable named beside a "
            f"provider's other host) and any provider key set to {EMULATOR_API_KEY!r}. "
            "Ctrl-C stops it."
        )

    # The images are served on the next port up.
    if not 0 <= port <= 65534:
        raise InvalidRequestError(f"--port {port} is not a port; use 1 to 65534, or 0 for any.")
    faults = _faults(down, reject_key, out_of_credits, slow)
    try:
        serve(port=port, latency=latency, log=announce, configure=faults)
    except OSError as exc:
        raise InvalidRequestError(
            f"Cannot listen on 127.0.0.1 port {port} or {port + 1} ({exc.strerror or exc}); "
            "pick another --port, or 0 for any free one."
        ) from None
    return ExitCode.OK


def _faults(
    down: list[str], reject_key: list[str], out_of_credits: list[str], slow: list[str]
) -> Callable[[Emulator], None]:
    """The per-provider faults asked for, checked before the emulator starts."""
    from kling_cli.emulator.registry import PROVIDER_APIS

    known = {api.provider_id for api in PROVIDER_APIS}

    def provider(option: str, value: str) -> str:
        if value not in known:
            raise InvalidRequestError(
                f"{option} {value!r} is not an emulated provider; use one of "
                f"{', '.join(sorted(known))}."
            )
        return value

    def pair(option: str, value: str, kind: type[int] | type[float]) -> tuple[str, float]:
        name, _, number = value.partition("=")
        try:
            amount = kind(number)
        except ValueError:
            amount = -1
        if amount < 0:
            raise InvalidRequestError(
                f"{option} {value!r} needs the form ID={'N' if kind is int else 'SECONDS'} "
                "with a number of at least 0."
            )
        return provider(option, name), amount

    downs = [provider("--down", value) for value in down]
    rejected = [provider("--reject-key", value) for value in reject_key]
    credits = [pair("--out-of-credits", value, int) for value in out_of_credits]
    slows = [pair("--slow", value, float) for value in slow]

    def configure(emulator: Emulator) -> None:
        for name in downs:
            emulator.set_down(name)
        for name in rejected:
            emulator.reject_key(name)
        for name, submits in credits:
            emulator.out_of_credits_after(name, int(submits))
        for name, seconds in slows:
            emulator.slow_down(name, seconds)

    return configure
