"""Which submit failures are safe to send again: the one place that decides, per provider.

A submit costs money once it reaches the provider, so after a failure the question is always
"may it have arrived, and if so, can sending it again create a second, paid task?":

- `NEVER_SENT`: the connection was refused or timed out while connecting; nothing arrived, so
  any provider may be sent it again.
- `IDEMPOTENT`: the provider documents that the same request with the same key is the same
  call (Comfy Router's `Idempotency-Key`, kept 24 h: "Reuse it for every attempt of that
  logical call", docs.comfy.org/development/comfy-router/errors, "Retry safely"); resending
  it is how a lost or timed-out answer is collected.
- `LOOKUP`: the id is ours (Runware's `taskUUID`, Kling's `external_task_id`): the task is
  looked up by it, never sent again.
- `UNKNOWN`: anything else may have created a task that nothing can find again: never resent;
  the job is recorded as `may_exist`.

The journal records each task's case (`tasks.resend`), so `kling status` knows what it may do.

`refusal` decides the other question a failure raises: does it prove that nothing was created
and nothing charged, so that the same request may go to the next provider (failover)?
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from kling_cli.errors import (
    AuthError,
    KlingError,
    NetworkError,
    OutOfCreditsError,
    ProviderRequestError,
    RateLimitedError,
)

if TYPE_CHECKING:
    from kling_cli.providers.catalog import Capabilities


class SubmitCase(StrEnum):
    NEVER_SENT = "never_sent"
    IDEMPOTENT = "idempotent"
    LOOKUP = "lookup"
    UNKNOWN = "unknown"


def arrived_case(capabilities: Capabilities) -> SubmitCase:
    """What a submit that may have reached this provider is: how its task is found again."""
    if capabilities.idempotent_submit:
        return SubmitCase.IDEMPOTENT
    if capabilities.client_task_id_lookup:
        return SubmitCase.LOOKUP
    return SubmitCase.UNKNOWN


def failure_case(capabilities: Capabilities, *, reached: bool) -> SubmitCase:
    """The case of one failed submit: `reached` is False only when the request provably never
    left (connection refused, connect timeout)."""
    return arrived_case(capabilities) if reached else SubmitCase.NEVER_SENT


def may_resend(case: SubmitCase) -> bool:
    """Whether the very same request may be sent again after a failure of this case: never
    for a task that might exist and that only a lookup, or nothing, can find."""
    return case in (SubmitCase.NEVER_SENT, SubmitCase.IDEMPOTENT)


class Refusal(StrEnum):
    """A failed job that provably created nothing and charged nothing, so the same request
    may go to another provider (failover). The word is the attempt's `outcome`."""

    NEVER_SENT = "never_sent"
    KEY_REJECTED = "key_rejected"
    OUT_OF_CREDITS = "out_of_credits"
    RATE_LIMITED = "rate_limited"
    REFUSED = "refused"


# Refusals that speak for the account, not the request: until the key or the credit is
# changed, the provider refuses every request, so nothing more is sent to it.
ACCOUNT_REFUSALS = frozenset({Refusal.KEY_REJECTED, Refusal.OUT_OF_CREDITS})

# The HTTP statuses that are a provider's documented refusal of a request it did not take:
# every provider documents 400 and 422 as validation errors answered before any task exists
# (Runware "Errors"; fal "Errors" 422; WaveSpeed "API errors"; Kling "Error codes" 1200-1203).
_VALIDATION_STATUSES = frozenset({400, 422})
# Where a provider's docs say otherwise, the statuses that are its refusal; none differ yet.
_VALIDATION_BY_PROVIDER: dict[str, frozenset[int]] = {}


def refusal(
    provider_id: str, failure: KlingError | None, task_states: Sequence[str]
) -> Refusal | None:
    """Whether a failed job proves that nothing was created and nothing charged: every task
    it recorded is `not_created` (or it recorded none, e.g. an upload was refused) and the
    failure is one of: the submit never left (connection refused), the key was rejected, the
    account is out of credits, a 429 on the submit, a documented validation refusal. Anything
    else (a lost answer, a 5xx after sending, a task that failed) is None: it stays with the
    provider that may have it."""
    if failure is None or any(state != "not_created" for state in task_states):
        return None
    if isinstance(failure, NetworkError):
        # No task recorded: the submit never started (an upload could not connect).
        return Refusal.NEVER_SENT if failure.never_sent or not task_states else None
    if isinstance(failure, AuthError):
        return Refusal.KEY_REJECTED
    if isinstance(failure, OutOfCreditsError):
        return Refusal.OUT_OF_CREDITS
    if isinstance(failure, RateLimitedError):
        return Refusal.RATE_LIMITED
    if type(failure) is ProviderRequestError:  # not an unreadable answer: that may be a task
        statuses = _VALIDATION_BY_PROVIDER.get(provider_id, _VALIDATION_STATUSES)
        return Refusal.REFUSED if failure.http_status in statuses else None
    return None
