"""Which job a command means: one named by its id or a task id, or the latest; and a task
submitted elsewhere (another machine, another tool), adopted into the journal once its
provider confirms it, so it is picked up like any other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError, KlingError, NetworkError, TaskNotFoundError

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord, Journal
    from kling_cli.providers.base import TaskStatus
    from kling_cli.session import ProviderSession


def find_job(journal: Journal, identifier: str | None, provider: str | None) -> JobRecord | None:
    """The job named by its id or a task id (the latest with none); None for a task id the
    journal does not know when a provider is given (`adopt_task` asks it), else
    `InvalidRequestError`."""
    if identifier is None:
        latest = journal.latest()
        if latest is None:
            raise InvalidRequestError("No jobs yet; `kling generate` records every job it submits.")
        return latest
    found = journal.find(identifier)
    if found is not None:
        return found
    if provider is None:
        raise InvalidRequestError(
            f"No job or task {identifier!r} in the journal; to ask a provider about a task "
            "submitted elsewhere, add --provider."
        )
    return None


def adopt_task(
    session: ProviderSession, journal: Journal, task_id: str, output_dir: Path | None = None
) -> JobRecord:
    """A task submitted from another machine or tool, recorded as a job once the provider
    confirms it exists (`TaskNotFoundError`, exit 3, when it does not), so it can be
    resumed like any other. `output_dir`: where its images go (`-o`; default
    ./kling-output), recorded so a later `kling status ID --download` saves there too."""
    asyncio.run(confirm_task(session, task_id))
    folder = (output_dir or Path("kling-output")).absolute()
    job_id = journal.create_job(session.provider.id, {}, str(folder))
    position = journal.add_task(job_id, None, 0)
    journal.update_task(job_id, position, task_id=task_id, state="pending")
    adopted = journal.job(job_id)
    assert adopted is not None
    return adopted


async def confirm_task(session: ProviderSession, task_id: str) -> TaskStatus:
    """Ask the provider about a task submitted elsewhere before adopting it into the journal:
    `TaskNotFoundError` when the provider does not know it."""
    from kling_cli.engine import Engine
    from kling_cli.providers.base import TaskHandle

    handle = TaskHandle(session.provider.id, task_id)
    async with Engine(session.provider, session.endpoint) as engine:
        try:
            return await engine.refresh(handle)
        except NetworkError:
            raise
        except KlingError as exc:
            if isinstance(exc, InvalidRequestError):
                raise
            raise TaskNotFoundError(
                f"{session.provider.name} does not know task {task_id!r} ({exc.message}); "
                "check the id and the provider.",
            ) from None
