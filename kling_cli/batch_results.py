"""A batch item's result: how it ended (succeeded, failed, skipped and why, interrupted), read
from its journal job, and its entry in `manifest.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.manifest import PlannedItem

# Why an item was skipped: done by an earlier run, or not submitted because the run stopped
# submitting (--max-cost would be passed; the provider said the account is out of credits).
SKIPPED_DONE = "done"
SKIPPED_BUDGET = "budget"
SKIPPED_OUT_OF_CREDITS = "out_of_credits"
SKIPPED_INTERRUPTED = "interrupted"
# Not submitted again because that may pay twice (kling_cli.jobs.pickup): an earlier submit
# may have created a task nothing can find, or the provider forgot the task it made.
SKIPPED_UNKNOWN = "unknown_outcome"
SKIPPED_NOT_FOUND = "task_not_found"
# `--skip-existing`: every file the item would write is on disk already.
SKIPPED_EXISTS = "exists"
NOT_SUBMITTED = {
    SKIPPED_BUDGET: "budget",
    SKIPPED_OUT_OF_CREDITS: "out of credits",
    SKIPPED_INTERRUPTED: "interrupted",
    SKIPPED_UNKNOWN: "unknown outcome",
    SKIPPED_NOT_FOUND: "task not found",
}
# What only `--resubmit-unknown` submits again.
MAY_PAY_TWICE = frozenset({SKIPPED_UNKNOWN, SKIPPED_NOT_FOUND})


@dataclass
class ItemResult:
    item: PlannedItem
    status: str  # "succeeded", "failed", "skipped", "interrupted" (in flight when stopped)
    job_id: str | None = None
    task_ids: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    cost: float | None = None
    error: str | None = None
    error_code: str | None = None
    skip_reason: str | None = None  # SKIPPED_* when status is "skipped"
    # What the user should read besides the outcome (a journal that could not be written).
    warnings: list[str] = field(default_factory=list)
    # A spread item: set when its provider provably created nothing (it may go elsewhere),
    # and the providers it was sent to.
    refusal: str | None = None
    attempts: list[Any] = field(default_factory=list)  # kling_cli.attempts.Attempt

    @property
    def not_submitted(self) -> bool:
        """Skipped because the run stopped submitting, so still to do."""
        return self.skip_reason in NOT_SUBMITTED


def may_pay_twice(planned: PlannedItem, job: Any, found: str) -> ItemResult:
    """An item not submitted again because that may pay twice: said why, and how to."""
    from kling_cli.jobs.pickup import Standing, explain

    reason = SKIPPED_NOT_FOUND if found == Standing.TASK_NOT_FOUND else SKIPPED_UNKNOWN
    result = result_from_job(planned, job, "skipped", reason)
    why = explain(job, planned.provider.name, asked=True) or "it may exist already"
    result.error = f"not submitted again: {why}."
    return result


def made_elsewhere(planned: PlannedItem, job: Any) -> ItemResult:
    """A spread item an earlier run sent to a provider this run does not list: never sent
    anywhere else, as that one may have made (and charged) it."""
    result = result_from_job(planned, job, "skipped", SKIPPED_UNKNOWN)
    result.error = (
        f"not submitted again: an earlier run sent it to {job.provider} (job {job.id}), which "
        f"this run does not list; add {job.provider} to -p to find it there."
    )
    return result


def result_from_outcome(planned: PlannedItem, outcome: Any, job: Any) -> ItemResult:
    """An item's result from its job's: an item is done only when every image it asked for
    was made and saved; one whose fan-out was cut short (images never requested, or a submit
    that may exist unseen) is not, whatever its tasks that did run say."""
    from kling_cli.jobs.state import incomplete
    from kling_cli.jobs.views import saved_file_entry

    error = outcome.error
    result = result_from_job(planned, job, "failed" if error else "succeeded")
    if outcome.record is None:
        # The journal fell behind (its disk is full, another process holds it): what this
        # run saved is the truth.
        result.files = [saved_file_entry(saved) for saved in outcome.files]
    result.warnings = list(outcome.warnings)
    result.refusal = outcome.refusal.value if outcome.refusal else None
    result.attempts = list(outcome.attempts)
    if error:
        result.error, result.error_code = error.message, error.code
        return result
    reason = incomplete(job)
    if reason is not None:
        result.status, result.error_code, result.error = "failed", "incomplete", reason
    return result


def result_from_job(
    planned: PlannedItem, job: Any, status: str, skip_reason: str | None = None
) -> ItemResult:
    from kling_cli.jobs.views import recorded_files

    files = recorded_files(job)
    costs = [task.cost for task in job.tasks if task.cost is not None]
    return ItemResult(
        planned,
        status,
        job_id=job.id,
        task_ids=[task.task_id for task in job.tasks if task.task_id],
        files=files,
        cost=round(sum(costs), 6) if costs else None,
        skip_reason=skip_reason,
    )


def manifest_entry(result: ItemResult) -> dict[str, Any]:
    return {
        "id": result.item.item.item_id,
        "line": result.item.item.line,
        "provider": result.item.provider.id,
        "status": result.status,
        "job_id": result.job_id,
        "task_ids": result.task_ids,
        "request": result.item.request.model_dump(mode="json"),
        "files": result.files,
        "cost": result.cost,
        "error": result.error,
        "skip_reason": result.skip_reason,
        **({"attempts": [a.to_json() for a in result.attempts]} if result.attempts else {}),
    }
