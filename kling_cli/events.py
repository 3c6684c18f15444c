"""What happens to a job, as the engine reports it to whoever listens: the progress display,
the jobs journal, the sidecar writer. No I/O here, and nothing heavy to import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kling_cli.download import SavedFile
    from kling_cli.providers.base import TaskHandle, TaskStatus


class ProgressListener(Protocol):
    """What the engine tells whoever shows progress (the CLI) or records jobs (the journal).
    `submitting` comes before the submit request is sent, so a crash at any later moment
    leaves a record."""

    def uploading(self, name: str, size: int) -> None: ...

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """About to send a submit. `resend`: what a failure of it would allow
        (`kling_cli.resend.SubmitCase`); `extra`: what finds its task again if no answer
        comes (the handle's extra)."""

    def submit_uncertain(self, reason: str) -> None: ...

    def submitted(self, task: TaskHandle) -> None: ...

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None: ...

    def retrying(self, reason: str, delay: float) -> None: ...

    def saved(self, task: TaskHandle, file: SavedFile) -> None: ...


class NullListener:
    """Ignores every event; listeners override the ones they care about."""

    def uploading(self, name: str, size: int) -> None:
        pass

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        pass

    def submit_uncertain(self, reason: str) -> None:
        pass

    def submitted(self, task: TaskHandle) -> None:
        pass

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        pass

    def retrying(self, reason: str, delay: float) -> None:
        pass

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        pass


class Listeners:
    """Several listeners as one, called in order."""

    def __init__(self, *listeners: ProgressListener) -> None:
        self.listeners = listeners

    def uploading(self, name: str, size: int) -> None:
        for listener in self.listeners:
            listener.uploading(name, size)

    def submitting(
        self,
        client_task_id: str | None,
        expected_images: int | None,
        *,
        resend: str = "unknown",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        for listener in self.listeners:
            listener.submitting(client_task_id, expected_images, resend=resend, extra=extra)

    def submit_uncertain(self, reason: str) -> None:
        for listener in self.listeners:
            listener.submit_uncertain(reason)

    def submitted(self, task: TaskHandle) -> None:
        for listener in self.listeners:
            listener.submitted(task)

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        for listener in self.listeners:
            listener.status_changed(task, status)

    def retrying(self, reason: str, delay: float) -> None:
        for listener in self.listeners:
            listener.retrying(reason, delay)

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        for listener in self.listeners:
            listener.saved(task, file)
