"""Values the shell completes (`kling completion`): provider ids, aspect ratios, resolutions and
job ids. A completer runs on every TAB, so it never fails loudly: a broken config or journal
completes less, never prints a traceback into the user's prompt."""

from __future__ import annotations

from kling_cli.limits import ASPECT_RATIOS, RESOLUTIONS
from kling_cli.providers.catalog import CATALOG


def _starting(values: list[str], incomplete: str) -> list[str]:
    return [value for value in values if value.startswith(incomplete)]


def provider_ids(incomplete: str) -> list[str]:
    """The built-in providers, and the named copies the config file adds."""
    ids = list(CATALOG)
    try:
        from kling_cli.session import load_config

        ids = list(load_config(lambda _warning: None).registry.infos())
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
