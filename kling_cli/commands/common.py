"""What several commands share: the provider and JSON options, and sessions opened with the
command's own output for notes and warnings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from kling_cli.commands import completers
from kling_cli.config import ConfigFile
from kling_cli.providers.catalog import CATALOG
from kling_cli.session import ProviderSession
from kling_cli.session import load_config as _load_config
from kling_cli.session import open_session as _open_session
from kling_cli.session import open_sessions as _open_sessions
from kling_cli.ui import Output

DEFAULT_OUTPUT_DIR = Path("kling-output")

PROVIDER_OPTION = typer.Option(
    None,
    "--provider",
    "-p",
    help=f"Provider id: {', '.join(CATALOG)} [default: $KLING_PROVIDER or default_provider].",
    show_default=False,
    autocompletion=completers.provider_ids,
)
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def load_config(output: Output) -> ConfigFile:
    return _load_config(output.warn)


@contextmanager
def open_session(
    provider_id: str | None, *, emulate: bool, output: Output, config: ConfigFile | None = None
) -> Iterator[ProviderSession]:
    config = config or load_config(output)
    with _open_session(provider_id, emulate=emulate, config=config, note=output.note) as session:
        yield session


@contextmanager
def open_sessions(
    provider_ids: Iterable[str], *, emulate: bool, output: Output, config: ConfigFile | None = None
) -> Iterator[dict[str, ProviderSession]]:
    config = config or load_config(output)
    with _open_sessions(provider_ids, emulate=emulate, config=config, note=output.note) as found:
        yield found
