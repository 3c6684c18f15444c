"""A job finished from a webhook body a receiver saved (`kling ingest`): the body is read by
the provider's own adapter, matched to the journal's job by provider and task id, and the
task then goes the way `kling status ID --download` takes it (`run.resume_job`), with the
body's state instead of a poll. Deliveries may repeat (providers say so); one that brings
nothing new changes nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.errors import (
    InvalidRequestError,
    KlingError,
    TaskFailedError,
    TaskNotFoundError,
    UnreadableResponseError,
)
from kling_cli.jobs.life import JobOptions
from kling_cli.jobs.record import open_journal
from kling_cli.providers.base import OutputImage, TaskHandle, TaskState, TaskStatus

if TYPE_CHECKING:
    from kling_cli.config import ConfigFile
    from kling_cli.jobs.generation import ProgressFor
    from kling_cli.jobs.life import JobResult
    from kling_cli.journal import JobRecord, Journal, TaskRecord
    from kling_cli.providers import Registry
    from kling_cli.providers.base import Provider
    from kling_cli.session import Notify


def ingest_webhook(
    config: ConfigFile,
    body: Any,
    *,
    timeout: float = 600.0,
    output_dir: Path | None = None,
    progress_for: ProgressFor | None = None,
    note: Notify = lambda text: None,
) -> tuple[JobRecord, JobResult | None, KlingError | None]:
    """Record what `body` reports and save the images not on disk yet. Returns the job, the
    result (None when the delivery brought nothing new: a repeat) and the error to exit
    with: the provider's reason when the body reports the task failed (exit 3), as a wait
    for it would have. `TaskNotFoundError` (exit 3) when no job of the journal matches."""
    from kling_cli.jobs.generation import progress_context
    from kling_cli.jobs.preflight import check_output_dir
    from kling_cli.jobs.run import resume_job
    from kling_cli.naming import DEFAULT_TEMPLATE
    from kling_cli.session import open_session

    journal = open_journal()
    try:
        job, provider, task = _match(journal, config.registry, body)
        task_id = task.task_id or task.client_task_id or ""
        handle = TaskHandle(provider.id, task_id, task.expected_images or None, task.extra)
        status = _reported(provider, body, handle, task)
        failure = None
        if status is not None and status.state is TaskState.FAILED:
            reason = status.error or "no reason given"
            failure = TaskFailedError(f"{provider.name} reports task {task_id} failed: {reason}")
        if status is not None and _nothing_new(task, status):
            return job, None, failure
        if job.emulated:
            raise InvalidRequestError(
                f"Job {job.id} ran against the built-in emulator, which stopped with it; "
                "there is nothing to ingest."
            )
        if output_dir is not None:
            check_output_dir(output_dir)
        with open_session(job.provider, emulate=False, config=config, note=note) as session:
            options = JobOptions(
                output_dir or Path(job.output_dir),
                timeout,
                wait=False,
                name_template=job.name_template or DEFAULT_TEMPLATE,
            )
            with progress_context(progress_for, session.provider.name, [task_id]) as progress:
                result = resume_job(
                    session,
                    journal,
                    job,
                    options,
                    download=True,
                    progress=progress,
                    known=None if status is None else {task_id: status},
                )
            return result.record or journal.job(job.id) or job, result, result.error or failure
    finally:
        journal.close()


def _match(
    journal: Journal, registry: Registry, body: Any
) -> tuple[JobRecord, Provider, TaskRecord]:
    """The job, its provider's adapter and the task a webhook body is about: each provider's
    adapter names the task its own bodies are about, and the journal must hold that task
    for that provider."""
    named: list[str] = []
    for provider_id in registry:
        provider = registry[provider_id]
        task_id = provider.webhook_task_id(body)
        if task_id is None:
            continue
        named.append(task_id)
        job = journal.find(task_id)
        if job is None or job.provider != provider.id:
            continue
        for task in job.tasks:
            if task_id in (task.task_id, task.client_task_id):
                return job, provider, task
    if not named:
        raise InvalidRequestError(
            "This is not a webhook body of any provider kling-cli knows (no task id where "
            "a provider puts it); pass the JSON body the provider POSTed, as received."
        )
    raise TaskNotFoundError(
        f"No job in the journal has task {named[0]!r}; it was submitted from another "
        "machine or journal, or already pruned.",
        hint="Ingest it where it was submitted, or fetch it with `kling status TASK_ID -p ID`.",
    )


def _reported(
    provider: Provider, body: Any, handle: TaskHandle, task: TaskRecord
) -> TaskStatus | None:
    """What the body says of the task; None when it says the task ended but carries no
    result that can be read (no images, a result the provider could not serialize): the
    provider is asked then, as `kling status ID --download` would, rather than a paid job
    recorded failed or dropped."""
    try:
        return _with_recorded_outputs(task, provider.parse_webhook(body, handle))
    except UnreadableResponseError:
        return None


def _with_recorded_outputs(task: TaskRecord, status: TaskStatus) -> TaskStatus:
    """The body's state with the images earlier deliveries recorded: Runware sends one
    body per finished image, so a task is done once the bodies together hold every image
    it was asked for."""
    if status.state is TaskState.FAILED:
        return status
    known = [OutputImage(output.url) for output in task.outputs]
    new = [output for output in status.outputs if output.url not in {o.url for o in known}]
    outputs = (*known, *new)
    expected = task.expected_images or 1
    state = status.state
    if outputs and len(outputs) >= expected:
        state = TaskState.SUCCEEDED
    elif outputs:
        state = TaskState.RUNNING
    return dataclasses.replace(status, state=state, outputs=outputs)


def _nothing_new(task: TaskRecord, status: TaskStatus) -> bool:
    """A delivery that repeats what the journal has: the same end, every image on disk."""
    if task.state != status.state.value or not status.state.is_terminal:
        return False
    saved = {output.url for output in task.outputs if output.path and Path(output.path).exists()}
    return all(output.url in saved for output in status.outputs)
