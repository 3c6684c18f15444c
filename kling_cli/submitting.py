"""Submitting a task, and when a submit may be sent again (the resend rules).

A submit costs money, so it is sent again only where `kling_cli.resend` says that cannot pay
twice, or on a 429 (which created nothing). A submit whose answer was lost is never sent
again: the task is looked up by the id we chose, or reported as one that may exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from kling_cli.errors import KlingError, NetworkError
from kling_cli.providers.base import Submission, TaskHandle, TaskStatus, redact_error, redact_status
from kling_cli.resend import arrived_case, may_resend
from kling_cli.status_follow import find_by_our_id

if TYPE_CHECKING:
    from kling_cli.limiter import ProviderLimiter
    from kling_cli.sending import Sender


async def send_submit(
    sender: Sender, submission: Submission, limiter: ProviderLimiter | None
) -> tuple[TaskHandle, TaskStatus]:
    """Send the submit, again only when that is safe (`kling_cli.engine.Engine.submit`)."""
    provider, listener, deadline = sender.provider, sender.listener, sender.deadline
    case = arrived_case(provider.capabilities)
    client_id = submission.client_task_id
    # What `kling status` needs to find the task again if no answer ever comes (Comfy's
    # request body, resent with the same key), recorded before anything is sent.
    extra = dict(provider.handle(client_id, submission).extra) if client_id else {}
    if deadline.expired:
        # Past --timeout before the submit left: nothing was sent, so nothing may exist.
        raise deadline.error(f"submitting to {provider.name}", "before_submit")
    listener.submitting(client_id, submission.expected_images, resend=case.value, extra=extra)
    step = f"waiting for {provider.name} to answer the submit"
    attempt, resent = 0, False
    while True:
        last_attempt = attempt + 1 >= sender.retry_policy.attempts
        epoch = limiter.epoch if limiter is not None else 0
        try:
            response = await sender.send(submission.request, step, "submit")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if last_attempt:
                error = sender.unreachable(exc)
                error.never_sent = True
                raise error from None
            reason = f"cannot connect ({type(exc).__name__})"
            await sender.back_off(attempt, reason, None, "submit")
            attempt += 1
            continue
        except httpx.TransportError as exc:
            if may_resend(case) and not last_attempt:
                reason = f"no answer ({type(exc).__name__}); resending with the same key"
                await sender.back_off(attempt, reason, None, "submit")
                attempt, resent = attempt + 1, True
                continue
            return await _after_ambiguous_submit(sender, submission, exc)
        refused = response.status_code == 429 and provider.is_retryable(response)
        if refused and not last_attempt and limiter is not None:
            delay = limiter.rate_limited(response.retry_after, epoch)
            listener.retrying(f"{provider.name} rate limited the submits", delay)
            async with deadline.guard("waiting for a turn to submit", "submit"):
                await limiter.requeue()
            attempt += 1
            continue
        if refused and response.retry_after is not None and not last_attempt:
            await sender.back_off(attempt, "rate limited", response.retry_after, "submit")
            attempt += 1
            continue
        transient = response.status_code >= 500 and provider.is_retryable(response)
        if transient and may_resend(case) and not last_attempt:
            reason = f"{provider.name} answered HTTP {response.status_code}; resending"
            await sender.back_off(attempt, reason, response.retry_after, "submit")
            attempt, resent = attempt + 1, True
            continue
        try:
            task, status = provider.parse_submit(response, submission)
        except KlingError as exc:
            exc = redact_error(exc, sender.secrets)
            if resent:
                # The refusal answers the resend, not the first send, which may have
                # created (and charged) the task: never a refusal to fail over on.
                raise _refused_resend(sender, exc) from None
            raise exc from None
        status = redact_status(status, sender.secrets)
        if limiter is not None:
            limiter.accepted()
        listener.submitted(task)
        listener.status_changed(task, status)
        return task, status


def _refused_resend(sender: Sender, refusal: KlingError) -> NetworkError:
    """A resend (same Idempotency-Key) refused after a first send that may have arrived:
    the job may exist, and `kling status` finds it by its key."""
    return NetworkError(
        f"{sender.provider.name} refused the resend of a submit whose first send may have "
        f"arrived ({refusal.message}); the first may have been created and charged.",
        hint="`kling status` looks it up by its key: run it before submitting again.",
    )


async def _after_ambiguous_submit(
    sender: Sender, submission: Submission, exc: httpx.TransportError
) -> tuple[TaskHandle, TaskStatus]:
    """The request may have reached the provider. Never send it again: look the task up
    by the id we chose, where the provider has one, or say it may exist."""
    provider = sender.provider
    reason = (
        f"the connection to {provider.name} broke after the job was sent ({type(exc).__name__})"
    )
    sender.listener.submit_uncertain(reason)
    client_task_id = submission.client_task_id
    if client_task_id is None or not provider.capabilities.client_task_id_lookup:
        raise NetworkError(
            f"{reason[0].upper()}{reason[1:]}; it may have been created and charged.",
            hint="Check the provider's dashboard (and `kling jobs`) before submitting again.",
        )
    task = provider.handle(client_task_id, submission)
    status = await find_by_our_id(sender, task)
    if status is not None:
        sender.listener.submitted(task)
        sender.listener.status_changed(task, status)
        return task, status
    raise NetworkError(
        f"{reason[0].upper()}{reason[1:]}, and {provider.name} does not know task "
        f"{client_task_id} yet; it may still have been created and charged.",
        hint="`kling status` looks it up by that id: run it before submitting again.",
    )
