"""A submit sent again after its first send may have arrived (Comfy Router's documented
resend with the same Idempotency-Key, after a lost answer or a 5xx), whose resend is then
refused: the refusal is the resend's, and says nothing of the first send, which may have
created (and charged) the task. Such a job is not a refusal: it may exist, and is found
again by its key (`kling status`), never sent to another provider (failover)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from kling_cli.errors import KlingError, NetworkError, WaitTimeoutError
from kling_cli.events import NullListener

if TYPE_CHECKING:
    from kling_cli.providers.base import TaskHandle


class ResendWatch(NullListener):
    """Whether the submit in flight was sent again after a send that may have arrived."""

    def __init__(self) -> None:
        self.resent_after_arrival = False

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.resent_after_arrival = False

    def retrying(self, reason: str, delay: float) -> None:
        # The engine says "resending" only when it sends a submit again after no answer or a
        # 5xx (kling_cli.resend.may_resend); a refused connection or a 429 created nothing.
        if "resending" in reason:
            self.resent_after_arrival = True

    def submitted(self, task: TaskHandle) -> None:
        self.resent_after_arrival = False

    def judged(self, error: KlingError, provider_name: str) -> KlingError:
        """`error`, or, when it answered a resend after a send that may have arrived, the
        ambiguous failure it really is."""
        if not self.resent_after_arrival or isinstance(error, NetworkError | WaitTimeoutError):
            return error
        return NetworkError(
            f"{provider_name} refused the resend of a submit whose first send may have "
            f"arrived ({error.message}); the first may have been created and charged.",
            hint="`kling status` looks it up by its key: run it before submitting again.",
        )
