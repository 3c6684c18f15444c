"""Emulated generation tasks. State is a pure function of the monotonic clock: no timers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

TaskPhase = Literal["pending", "processing", "succeeded", "failed"]
Event = tuple[float, str, str, str]  # (time.time(), event name, provider id, task id)

DetailsT = TypeVar("DetailsT")

# Queued for the first third of the latency, then running until it is over.
_PENDING_SHARE = 1 / 3


@dataclass(frozen=True)
class Task(Generic[DetailsT]):
    provider: str
    task_id: str
    created_monotonic: float
    created_wall: float
    latency: float
    failure_message: str | None  # set when an injected task_failure fault claimed this task
    details: DetailsT  # what the provider needs to render its responses
    # The provider's word for how a failed task ended, when a fault named one (`cancelled`...).
    final_state: str | None = None

    def phase(self, now: float | None = None) -> TaskPhase:
        elapsed = (time.monotonic() if now is None else now) - self.created_monotonic
        if elapsed >= self.latency:
            return "failed" if self.failure_message is not None else "succeeded"
        if elapsed < self.latency * _PENDING_SHARE:
            return "pending"
        return "processing"

    def is_finished(self) -> bool:
        return self.phase() in ("succeeded", "failed")

    def seconds_left(self) -> float:
        return max(0.0, self.created_monotonic + self.latency - time.monotonic())

    def progress_percent(self) -> int:
        if self.latency <= 0:
            return 100
        elapsed = time.monotonic() - self.created_monotonic
        return max(0, min(99, int(100 * elapsed / self.latency)))

    def events(self) -> list[Event]:
        found: list[Event] = [(self.created_wall, "created", self.provider, self.task_id)]
        if self.is_finished():
            outcome = "failed" if self.failure_message is not None else "completed"
            found.append((self.created_wall + self.latency, outcome, self.provider, self.task_id))
        return found


class DuplicateTaskError(Exception):
    pass


class TaskStore(Generic[DetailsT]):
    """The tasks of one provider, keyed by task id."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._lock = threading.Lock()
        self._tasks: dict[str, Task[DetailsT]] = {}

    def create(
        self,
        task_id: str,
        latency: float,
        failure_message: str | None,
        details: DetailsT,
        *,
        final_state: str | None = None,
    ) -> Task[DetailsT]:
        task = Task(
            provider=self.provider,
            task_id=task_id,
            created_monotonic=time.monotonic(),
            created_wall=time.time(),
            latency=latency,
            failure_message=failure_message,
            details=details,
            final_state=final_state,
        )
        with self._lock:
            if task_id in self._tasks:
                raise DuplicateTaskError(task_id)
            self._tasks[task_id] = task
        return task

    def get(self, task_id: str) -> Task[DetailsT] | None:
        with self._lock:
            return self._tasks.get(task_id)

    def __contains__(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._tasks

    def events(self) -> list[Event]:
        with self._lock:
            tasks = list(self._tasks.values())
        return [event for task in tasks for event in task.events()]

    def clear(self) -> None:
        with self._lock:
            self._tasks.clear()
