"""What several commands share: the provider and JSON options, the values the shell completes
(`kling completion`), and sessions opened with the command's own output for notes and warnings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kling_cli.config import ConfigFile
from kling_cli.limits import ASPECT_RATIOS, RESOLUTIONS
from kling_cli.providers.catalog import CATALOG
from kling_cli.ui import Output

if TYPE_CHECKING:
    from kling_cli.session import ProviderSession

DEFAULT_OUTPUT_DIR = Path("kling-output")


def _switch(name: str, text: str) -> Any:
    """An option that is off unless given."""
    return typer.Option(False, name, help=text)


def _setting(name: str, text: str, metavar: str | None = None) -> Any:
    """An option that is None unless given."""
    return typer.Option(None, name, metavar=metavar, help=text)


JSON_OPTION = _switch("--json", "Print one JSON object on stdout.")
# Looking at saved images (kling_cli.commands.look does it, imported when used).
OPEN_OPTION = _switch("--open", "Open each saved image in the system's image viewer.")
REVEAL_OPTION = _switch("--reveal", "Show the saved images' folder in the file manager.")
PREVIEW_OPTION = _switch(
    "--preview",
    "Show the saved images in the terminal (Sixel, Kitty graphics, or coloured blocks); "
    "only on a terminal, never with --json.",
)

# The delivery options `generate` and `batch` share (kling_cli.delivery).
WEBHOOK_OPTION = _setting(
    "--webhook",
    "https URL the provider POSTs to when the job ends, where it has webhooks "
    "(see `kling providers show`); `kling ingest` reads what it receives.",
    metavar="URL",
)
QUALITY_OPTION = _setting("--quality", "JPEG/WebP quality 20-99, where the provider offers it.")
UPLOAD_TO_OPTION = _setting(
    "--upload-to",
    "https URL (e.g. a presigned PUT) the provider uploads each image to, where "
    "offered (generate saves nothing here then, unless --download).",
    metavar="URL",
)
DOWNLOAD_OPTION = _switch("--download", "With --upload-to: save the images here as well.")
SAFETY_OPTION = _setting("--safety", "fast: the provider's content check, where offered.")
URL_TTL_OPTION = _setting(
    "--url-ttl",
    "How long the provider keeps the result URL (60 or more), where offered.",
    metavar="SECONDS",
)


def load_config(output: Output) -> ConfigFile:
    from kling_cli.config import load_config as load

    return load(output.warn)


@contextmanager
def open_session(
    provider_id: str | None, *, emulate: bool, output: Output, config: ConfigFile | None = None
) -> Iterator[ProviderSession]:
    # kling_cli.session is imported only by the commands that open one: `kling config` and
    # `kling providers` start faster without it.
    from kling_cli.session import open_session as open_one

    config = config or load_config(output)
    with open_one(provider_id, emulate=emulate, config=config, note=output.note) as session:
        yield session


@contextmanager
def open_sessions(
    provider_ids: Iterable[str], *, emulate: bool, output: Output, config: ConfigFile | None = None
) -> Iterator[dict[str, ProviderSession]]:
    from kling_cli.session import open_sessions as open_all

    config = config or load_config(output)
    with open_all(provider_ids, emulate=emulate, config=config, note=output.note) as found:
        yield found


# Completers run on every TAB, so they never fail loudly: a broken config or journal completes
# less, never prints a traceback into the user's prompt.


def _starting(values: list[str], incomplete: str) -> list[str]:
    return [value for value in values if value.startswith(incomplete)]


def provider_ids(incomplete: str) -> list[str]:
    """The built-in providers, and the named copies the config file adds."""
    ids = list(CATALOG)
    try:
        from kling_cli.config import load_config

        ids = list(load_config().registry.infos())
    except Exception:  # a config that cannot be read still completes the built-in ids
        pass
    return _starting(ids, incomplete)


def aspect_ratios(incomplete: str) -> list[str]:
    return _starting(list(ASPECT_RATIOS), incomplete)


def resolutions(incomplete: str) -> list[str]:
    return _starting(list(RESOLUTIONS), incomplete)


def job_ids(incomplete: str) -> list[str]:
    """The newest jobs of the journal, newest first."""
    try:
        from kling_cli.jobs.record import open_journal

        journal = open_journal()
        try:
            ids = [job.id for job in journal.recent(limit=50)]
        finally:
            journal.close()
    except Exception:  # no journal yet, or one held by another process: nothing to offer
        return []
    return _starting(ids, incomplete)


def latest_job_argument(text: str) -> Any:
    """`[ID]`: a job or task id, completed with the newest jobs; the latest job when none is
    given (`text` says so)."""
    return typer.Argument(
        None, metavar="[ID]", help=text, autocompletion=job_ids, show_default=False
    )


def uploaded_note(provider_name: str, upload_to: str, download: bool, job_id: str) -> str:
    """What --upload-to did, as far as kling knows: the provider was asked to PUT the images
    there; whether the PUT worked only the receiver knows (Runware's docs are silent on a
    failed upload)."""
    from kling_cli.delivery import recorded_url

    where = f"{provider_name} was asked to upload the images to {recorded_url(upload_to)}"
    if download:
        return f"{where} (--upload-to); saved here as well."
    return (
        f"{where} (--upload-to); nothing was saved here (`kling status {job_id} --download` "
        "saves them while the provider keeps them)."
    )


def _provider_option(text: str) -> Any:
    """`--provider`/`-p`, completed with the known ids."""
    return typer.Option(
        None, "--provider", "-p", help=text, show_default=False, autocompletion=provider_ids
    )


PROVIDER_OPTION = _provider_option(
    f"Provider id: {', '.join(CATALOG)} [default: $KLING_PROVIDER or default_provider]."
)
GENERATE_PROVIDER_OPTION = _provider_option(
    f"Provider id: {', '.join(CATALOG)}; a,b,c tries them in order, moving on only when "
    "one provably created nothing; auto: the cheapest with a key that can serve the request "
    "[default: $KLING_PROVIDER, default_provider, or route]."
)
BATCH_PROVIDER_OPTION = _provider_option(
    f"Provider id: {', '.join(CATALOG)}; a,b,c spreads the items over them "
    "[default: $KLING_PROVIDER or default_provider]."
)
