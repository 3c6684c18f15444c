"""What may be done with a job an earlier run left behind, before anything is paid for again.

One place decides, so a batch re-run and `kling status` agree. A job stands in one of five
ways (`Standing`), from its tasks as the journal recorded them:

- `DONE`: every task succeeded and every image it made is on disk.
- `FOLLOW`: some task can be asked about: by the id the provider gave, or, for a submit that
  was never answered, by the id we chose before sending it (Runware's `taskUUID`, Kling's
  `external_task_id`, Comfy's `Idempotency-Key`; the `resend` case the journal recorded for
  the task, `kling_cli.resend`). It is resumed, never submitted again.
- `UNKNOWN_OUTCOME`: a submit that may have created a task (and a charge) that nothing can
  find again. Submitting it again may pay twice, so only an explicit choice does.
- `TASK_NOT_FOUND`: the provider no longer knows a task it accepted (its results expired).
  The images cannot be fetched; making them again is a new, paid task, so again only an
  explicit choice does it.
- `FRESH`: nothing of it can be running or be paid for (never created, refused, failed):
  submitting it is a first attempt.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from kling_cli.errors import KlingError, ProviderRequestError, TaskFailedError, TaskNotFoundError
from kling_cli.journal import MAY_EXIST, NOT_CREATED, NOT_FOUND, SUBMITTING
from kling_cli.resend import SubmitCase

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord, TaskRecord
    from kling_cli.providers.catalog import Capabilities


class Standing(StrEnum):
    DONE = "done"
    FOLLOW = "follow"
    UNKNOWN_OUTCOME = "unknown_outcome"
    TASK_NOT_FOUND = "task_not_found"
    FRESH = "fresh"


# Submits whose task the provider can be asked for by our own id (kling_cli.resend).
_FINDABLE_CASES = frozenset({SubmitCase.LOOKUP.value, SubmitCase.IDEMPOTENT.value})
UNANSWERED = frozenset({SUBMITTING, MAY_EXIST})
# A submit still unknown this long after it was sent never arrived.
NOT_CREATED_AFTER_SECONDS = 600
# ...unless it is so old that the provider may have made it and forgotten it since: how long
# a finished task stays known is undocumented (Runware's task polling docs give no retention),
# so past a day "unknown" no longer proves "never made" (inferred), and only an explicit
# choice submits it again.
MAY_HAVE_EXPIRED_AFTER_SECONDS = 24 * 3600


def findable_by_our_id(task: TaskRecord, capabilities: Capabilities | None) -> bool:
    """An unanswered submit whose task can be looked up by the id we chose. The journal's
    `resend` case decides; rows recorded before it existed (NULL) fall back to what the
    provider can do (`capabilities`; without them, having an id of ours is enough)."""
    if task.task_id is not None or task.state not in UNANSWERED or not task.client_task_id:
        return False
    if task.resend is not None:
        return task.resend in _FINDABLE_CASES
    return capabilities is None or capabilities.client_task_id_lookup


def _task_standing(task: TaskRecord, capabilities: Capabilities | None, asked: bool) -> Standing:
    if task.state == NOT_FOUND:
        return Standing.TASK_NOT_FOUND
    if task.state in ("failed", NOT_CREATED):
        return Standing.FRESH
    if task.state == "succeeded" and _saved(task):
        return Standing.DONE
    if task.task_id is not None:
        return Standing.FOLLOW
    if findable_by_our_id(task, capabilities):
        # Just asked for and not known yet: it may still be on its way.
        return Standing.UNKNOWN_OUTCOME if asked else Standing.FOLLOW
    return Standing.UNKNOWN_OUTCOME  # sent (or about to be), unanswered, and unfindable


def standing(
    job: JobRecord | None, capabilities: Capabilities | None = None, *, asked: bool = False
) -> Standing:
    """How `job` stands (None: no job yet, so `FRESH`). A task that can be followed wins over
    the rest (following it costs nothing and settles it); then one that may exist unseen;
    then one the provider forgot. A job partly done and partly failed is followed too (its
    missing images fetched, its failure reported): submitting it again would pay again for
    what is done. `capabilities`: the job's provider's, for journal rows that recorded no
    `resend` case. `asked`: the provider was just asked (a resume ran to its end), so a
    submit still unanswered is one it does not know yet: `UNKNOWN_OUTCOME` until it is old
    enough to be sure it never arrived (`NOT_CREATED_AFTER_SECONDS`)."""
    if job is None or not job.tasks:
        return Standing.FRESH
    found = {_task_standing(task, capabilities, asked) for task in job.tasks}
    if found == {Standing.DONE}:
        return Standing.DONE
    for first in (Standing.FOLLOW, Standing.UNKNOWN_OUTCOME, Standing.TASK_NOT_FOUND):
        if first in found:
            return first
    return Standing.FOLLOW if Standing.DONE in found else Standing.FRESH


def _saved(task: TaskRecord) -> bool:
    return bool(task.outputs) and all(out.path and Path(out.path).exists() for out in task.outputs)


def provider_forgot(error: KlingError) -> bool:
    """A status check answered "no such task" (HTTP 404) for a task the provider accepted:
    its results expired. Asking again will not bring it back."""
    if isinstance(error, TaskNotFoundError):
        return True
    return isinstance(error, ProviderRequestError) and error.http_status == 404


def explain(job: JobRecord, provider_name: str, *, asked: bool = False) -> str | None:
    """What to tell the user about a job that cannot be resumed without paying again (None
    for the other standings), as a clause that starts lower case. Callers add how to make
    it again (a batch's `--resubmit-unknown`, `kling generate`)."""
    state = standing(job, asked=asked)
    if state is Standing.TASK_NOT_FOUND:
        return (
            f"{provider_name} no longer knows its task (its results expired), so its images "
            "cannot be fetched; making them again is a new, paid task"
        )
    if state is not Standing.UNKNOWN_OUTCOME:
        return None
    old = time.time() - job.created_at > MAY_HAVE_EXPIRED_AFTER_SECONDS
    if not old and any(findable_by_our_id(task, None) for task in job.tasks):
        return (
            f"its submit was never answered and {provider_name} does not know it yet; once it "
            "is sure not to have arrived (10 minutes after it was sent), the next run submits "
            "it, nothing having been charged"
        )
    if old:
        return (
            f"its submit was never answered and {provider_name} does not know it a day later: "
            "it never arrived, or it was made and has expired since, so it may have been "
            "charged: check its dashboard before submitting it again"
        )
    return (
        f"its submit was never answered and {provider_name} cannot be asked for it by our "
        "id, so it may exist and be charged: check its dashboard before submitting it again"
    )


def cannot_fetch(job: JobRecord) -> KlingError | None:
    """The error of a job answered from the journal that has nothing left to fetch and did
    not succeed: the provider no longer knows its task (`TaskNotFoundError`), or its task
    failed or was refused at submit (`TaskFailedError`); both exit 3. None for any other
    job, whose journal record is its whole answer."""
    state = standing(job)
    if state is Standing.TASK_NOT_FOUND:
        message = explain(job, job.provider) or "the task is gone"
        return TaskNotFoundError(
            f"Job {job.id}: {message}.",
            hint="Generate it again with `kling generate` if you need it.",
        )
    if state is not Standing.FRESH:
        return None
    ended = [task for task in job.tasks if task.state == "failed"]
    ended = ended or [task for task in job.tasks if task.state == NOT_CREATED and task.error]
    if not ended:
        return None
    how = "failed" if ended[0].state == "failed" else "was refused before it was created"
    return TaskFailedError(
        f"Job {job.id} {how}: {(ended[0].error or 'no reason given').rstrip('.')}.",
        hint="Nothing more can be fetched for it; generate it again with `kling generate`.",
    )
