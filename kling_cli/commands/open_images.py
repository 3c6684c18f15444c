"""`kling open [ID]`: a job's saved images in the system's viewer (the latest job by default)."""

from __future__ import annotations

import typer

from kling_cli.commands import common
from kling_cli.commands.common import REVEAL_OPTION
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output


def open_job(
    ctx: typer.Context,
    identifier: str | None = common.latest_job_argument(
        "A job id or a provider task id [default: the latest job]."
    ),
    reveal: bool = REVEAL_OPTION,
) -> int:
    """Open a job's saved images in the system's image viewer (the latest job by default).

    Reads the journal only: nothing is asked of the provider. Images not on disk yet are
    fetched with `kling status ID --download`."""
    from kling_cli.commands.look import images_on_disk, launch_saved
    from kling_cli.jobs.lookup import find_job
    from kling_cli.jobs.record import open_journal
    from kling_cli.jobs.views import shown_path
    from kling_cli.journal import NOT_CREATED

    output: Output = ctx.obj
    journal = open_journal()
    try:
        job = find_job(journal, identifier, None)
    finally:
        journal.close()
    assert job is not None  # find_job raises for an id it does not know, given no provider
    paths = images_on_disk(job)
    fetchable = [t for t in job.tasks if t.task_id and t.state not in (NOT_CREATED, "failed")]
    if not paths and not fetchable:
        # Refused, interrupted before its submit, or failed: `kling status` has nothing to get.
        raise InvalidRequestError(
            f"Job {job.id} has no image to open or to fetch (its state is {job.state})."
        )
    if not paths:
        raise InvalidRequestError(
            f"Job {job.id} has no saved image on disk (its state is {job.state}); fetch its images "
            f"with: kling status {job.id} --download"
        )
    for path in paths:
        output.result(shown_path(str(path)))
    launch_saved(output, paths, open_images=not reveal, reveal=reveal)
    return ExitCode.OK
