"""Injected faults: what can go wrong, on which requests, and how many times."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "task_failure",
    "slow",
    "truncated_download",
    "drop_connection",
    # The provider handles the request (a submit creates, and charges, the task), then the
    # connection drops before the answer: the ambiguous failure clients must not resubmit on.
    "lost_response",
    # A 200 whose body is cut-off JSON, and a proxy's HTML error page instead of JSON.
    "malformed_json",
    "html_error_page",
    # A CDN's redirect of an image URL to another host (`localhost` instead of 127.0.0.1).
    "redirect_to_other_host",
    # The provider's documented refusal for an account without credit.
    "out_of_credits",
    # An image host that sends its answer one byte every `delay` seconds: alive, never done.
    "trickle",
]
# "upload": a reference file sent through a provider's upload API; "storage": the PUT of its
# bytes to the signed URL that API gave.
Phase = Literal["submit", "poll", "download", "upload", "storage"]

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
PHASES: tuple[str, ...] = get_args(Phase)
IMAGES_TARGET = "images"

DEFAULT_FAILURE_MESSAGE = (
    "[Content policy violation] Your request contains inappropriate content (emulated failure)"
)

# A kind that only makes sense on one phase gets that phase when `on` is left out.
_ONLY_PHASE: dict[str, Phase] = {
    "task_failure": "submit",
    "truncated_download": "download",
    "redirect_to_other_host": "download",
    "trickle": "download",
}


@dataclass
class Fault:
    """One fault to inject. `on=None` means "submit", or the only phase the kind supports."""

    kind: FaultKind
    on: Phase | None = None
    # How many matching requests it hits; None: every one from then on (an account that
    # stays out of credits, a provider that stays slow).
    times: int | None = 1
    # How many matching requests pass untouched first: `out_of_credits` with `after=10` is
    # an account whose credit buys ten submits.
    after: int = 0
    # The Retry-After header of a rate_limit answer; None sends none, as most providers
    # document (only Comfy Router's errors page documents the header).
    retry_after: int | None = 1
    status: int = 500
    delay: float = 1.0
    message: str = DEFAULT_FAILURE_MESSAGE
    # task_failure only: the provider's own word for how the task ended, where its docs name
    # endings besides failure (WaveSpeed's `cancelled`, `timeout`, `deleted`...); each
    # provider's `final_states` lists the words it can show. None: its usual failure.
    final_state: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        only_phase = _ONLY_PHASE.get(self.kind)
        if self.on is None:
            self.on = only_phase or "submit"
        if self.on not in PHASES:
            raise ValueError(f"unknown fault phase {self.on!r}; expected one of {PHASES}")
        if only_phase is not None and self.on != only_phase:
            raise ValueError(f"a {self.kind} fault only applies on {only_phase!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or null for every request")
        if self.after < 0:
            raise ValueError("after must not be negative")
        if self.retry_after is not None and (
            not isinstance(self.retry_after, int) or self.retry_after < 0
        ):
            raise ValueError(
                "retry_after must be a whole number of seconds (Retry-After header), or null"
            )
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx code")
        if self.final_state is not None and self.kind != "task_failure":
            raise ValueError("final_state applies to a task_failure fault only")

    @property
    def phase(self) -> Phase:
        assert self.on is not None  # resolved in __post_init__
        return self.on

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        """Build a fault from the control API's JSON body (the dataclass fields)."""
        if not isinstance(payload, dict):
            raise ValueError("the fault must be a JSON object")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        try:
            return cls(**payload)
        except TypeError as error:
            raise ValueError(str(error)) from error


@dataclass
class _Armed:
    target: str
    fault: Fault
    remaining: int | None
    passed: int = 0


class FaultQueue:
    """Faults in injection order; the first one matching a request is used up by it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def inject(self, target: str, fault: Fault) -> None:
        if target == IMAGES_TARGET and fault.phase != "download":
            raise ValueError("faults on the image server must use on='download'")
        # A download fault injected under a provider id hits only that provider's images.
        with self._lock:
            self._armed.append(_Armed(target, fault, fault.times))

    def take(
        self, targets: Collection[str], phase: Phase, kinds: Collection[str] | None = None
    ) -> Fault | None:
        """Use up one application of the first fault that matches, if any."""
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                if armed.target not in targets or fault.phase != phase:
                    continue
                if kinds is not None and fault.kind not in kinds:
                    continue
                if armed.passed < fault.after:
                    armed.passed += 1
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        self._armed.remove(armed)
                return fault
        return None

    def pending(self) -> list[tuple[str, Fault, int | None]]:
        with self._lock:
            return [(armed.target, armed.fault, armed.remaining) for armed in self._armed]

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
