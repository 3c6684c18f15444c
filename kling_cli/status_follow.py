"""Following a task's status: asking the provider once, or until the task ends.

A provider's status stream is followed where it has one, else the task is polled on the poll
policy (`kling_cli.retry.PollPolicy`); a task whose submit answer was lost is looked up by the
id we chose. Every wait is held to the job's deadline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from kling_cli.errors import KlingError, TaskFailedError, UnreadableResponseError, WaitTimeoutError
from kling_cli.providers.base import (
    HttpRequest,
    TaskHandle,
    TaskState,
    TaskStatus,
    redact_error,
    redact_status,
)
from kling_cli.retry import PollPolicy, parse_retry_after
from kling_cli.transport import REQUEST_TIMEOUT

if TYPE_CHECKING:
    from kling_cli.sending import Sender

# After a submit whose answer was lost: when to look the task up by our own id.
AMBIGUOUS_SUBMIT_LOOKUPS = (0.5, 1.5, 3.0)


async def find_by_our_id(sender: Sender, task: TaskHandle) -> TaskStatus | None:
    """Look a task up by the id we chose, after its submit answer was lost. The request
    may still be on its way, so "unknown" is only believed after a grace period; None:
    still unknown then."""
    for delay in AMBIGUOUS_SUBMIT_LOOKUPS:
        await sender.deadline.sleep(delay, f"looking task {task.task_id} up", "submit")
        try:
            return await refresh(sender, task)
        except WaitTimeoutError:
            raise
        except KlingError:
            continue
    return None


async def refresh(sender: Sender, task: TaskHandle) -> TaskStatus:
    """Ask the provider once for the task's state, and for its outputs when a queue API
    keeps them behind a separate result request."""
    provider, endpoint = sender.provider, sender.endpoint
    status = await _ask(sender, provider.build_poll(task, endpoint), task, "poll")
    if status.state is TaskState.SUCCEEDED and not status.outputs:
        result_request = provider.build_result(task, endpoint)
        if result_request is not None:
            status = await _ask(sender, result_request, task, "result")
    return status


async def _ask(sender: Sender, request: HttpRequest, task: TaskHandle, step: str) -> TaskStatus:
    """Send a poll or result request, retrying transport errors, transient answers and
    answers that cannot be read."""
    provider, secrets = sender.provider, sender.secrets
    attempt = 0
    while True:
        response = await sender.exchange(request, "status check failed")
        try:
            if step == "result":
                return redact_status(provider.parse_result(response, task), secrets)
            return redact_status(provider.parse_poll(response, task), secrets)
        except UnreadableResponseError as exc:
            if attempt + 1 >= sender.retry_policy.attempts:
                raise redact_error(exc, secrets) from None
            await sender.back_off(attempt, "unreadable answer")
        except KlingError as exc:
            raise redact_error(exc, secrets) from None
        attempt += 1


async def wait(
    sender: Sender, poll_policy: PollPolicy, task: TaskHandle, status: TaskStatus
) -> TaskStatus:
    """Follow the provider's status stream where it has one, else poll, until the task
    ends; raise TaskFailedError, or WaitTimeoutError when the deadline passes."""
    name = sender.provider.name
    try:
        status = await _wait(sender, poll_policy, task, status)
    except WaitTimeoutError as exc:
        if exc.phase == "wait":
            exc.message = f"{exc.message[:-1]}; {name} may still finish task {task.task_id}."
            exc.args = (exc.message,)
        exc.hint = exc.hint or resume_command(task)
        exc.job = job_summary(task, status)
        raise
    if status.error and not status.outputs:
        raise TaskFailedError(
            f"{name} reports that task {task.task_id} failed: {status.error}",
            job=job_summary(task, status),
        )
    return status


async def _wait(
    sender: Sender, poll_policy: PollPolicy, task: TaskHandle, status: TaskStatus
) -> TaskStatus:
    if not status.state.is_terminal:
        status = await _follow_stream(sender, task, status)
    poll_number = 0
    while not status.state.is_terminal:
        delay = max(poll_policy.delay(poll_number), status.poll_after or 0.0)
        await sender.deadline.sleep(delay, f"waiting for {sender.provider.name}")
        poll_number += 1
        new_status = await refresh(sender, task)
        if new_status != status:
            sender.listener.status_changed(task, new_status)
        status = new_status
    return status


async def _follow_stream(sender: Sender, task: TaskHandle, status: TaskStatus) -> TaskStatus:
    """Read status events as the provider pushes them; once one says the task ended, one
    regular poll fetches the outputs. Any trouble (an error, a dropped stream, a stream
    that ends early) leaves the rest to polling; a 429 with `Retry-After` makes the
    first poll wait that long. The deadline bounds the stream like any request."""
    provider, listener = sender.provider, sender.listener
    request = provider.build_stream(task, sender.endpoint)
    if request is None:
        return status
    sender.check_key_destination(request)
    timeout = sender.timeout(REQUEST_TIMEOUT, request.read_timeout)
    doing = f"reading {provider.name}'s status stream"
    try:
        async with (
            sender.deadline.guard(doing),
            sender.clients.api.stream(
                "GET", request.url, headers=dict(request.headers), timeout=timeout
            ) as response,
        ):
            if response.status_code == 429:
                # inference.sh names a `rate_limited` error (its SDK's ErrorCode) but
                # no Retry-After; one it sends is honoured (RFC 9110 section 10.2.3): no
                # status request sooner, on the stream or the polls after it.
                after = parse_retry_after(response.headers.get("retry-after"))
                return replace(status, poll_after=after) if after else status
            if response.status_code != 200:
                return status
            async for line in response.aiter_lines():
                event = provider.parse_stream_line(line, task)
                if event is None:
                    continue
                if event != status:
                    listener.status_changed(task, event)
                status = event
                if status.state.is_terminal:
                    break
    except WaitTimeoutError:
        raise
    except (TimeoutError, httpx.HTTPError, KlingError):
        return status
    if not status.state.is_terminal:
        return status
    final = await refresh(sender, task)
    if final != status:
        listener.status_changed(task, final)
    return final


def resume_command(task: TaskHandle) -> str:
    return f"kling status {task.task_id} --provider {task.provider}"


def job_summary(task: TaskHandle, status: TaskStatus | None) -> dict[str, Any]:
    return {
        "provider": task.provider,
        "task_id": task.task_id,
        "state": status.state.value if status else None,
    }
