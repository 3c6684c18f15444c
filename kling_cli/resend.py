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
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

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
