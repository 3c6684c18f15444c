"""Errors the user can act on, each with its documented exit code.

Only `kling_cli.cli.main` turns these into exit codes and messages; the core raises them.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    INVALID_ARGUMENTS = 2
    TASK_FAILED = 3
    AUTH_OR_CONFIG = 4
    TIMED_OUT = 5
    RATE_LIMITED = 6
    DOWNLOAD_FAILED = 7
    SOME_ITEMS_FAILED = 8
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


class KlingError(Exception):
    """Base class: a message for the user, a stable machine code and an exit code."""

    exit_code: ExitCode = ExitCode.UNEXPECTED
    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None, job: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.job = job


class InvalidRequestError(KlingError):
    """Bad arguments, caught before any network call."""

    exit_code = ExitCode.INVALID_ARGUMENTS
    code = "invalid_arguments"


class ConfigError(KlingError):
    """A missing or rejected key, or a bad configuration."""

    exit_code = ExitCode.AUTH_OR_CONFIG
    code = "config"


class AuthError(ConfigError):
    code = "auth"


class TaskFailedError(KlingError):
    """The provider accepted the job and reports that it failed."""

    exit_code = ExitCode.TASK_FAILED
    code = "task_failed"


class TaskNotFoundError(TaskFailedError):
    """The provider does not know the task: a wrong id, or one whose results expired."""

    code = "task_not_found"


class IncompleteJobError(KlingError):
    """The job's tasks that ran are done, but not every image it asked for exists: some were
    never requested, or a submit may exist unseen."""

    exit_code = ExitCode.SOME_ITEMS_FAILED
    code = "incomplete"


class ProviderRequestError(KlingError):
    """The provider refused a request (4xx that is not auth, rate or billing) or answered
    with something we cannot read."""

    exit_code = ExitCode.UNEXPECTED
    code = "provider_error"
    http_status: int | None = None


class UnreadableResponseError(ProviderRequestError):
    """A body that is not what the provider documents (cut-off JSON, a proxy's HTML page).
    Often transient, so status checks retry it."""

    code = "unreadable_response"


class RateLimitedError(KlingError):
    """Rate limited or out of credits."""

    exit_code = ExitCode.RATE_LIMITED
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OutOfCreditsError(RateLimitedError):
    code = "out_of_credits"


class WaitTimeoutError(KlingError):
    """Waited past --timeout; the job may still finish on the provider's side. `phase` is
    the step the deadline stopped: "submit" (an upload, or a submit not yet answered),
    "wait" or "download" (the images exist)."""

    exit_code = ExitCode.TIMED_OUT
    code = "timeout"
    phase: str = "wait"


class DownloadError(KlingError):
    """The images were generated but could not be downloaded or saved."""

    exit_code = ExitCode.DOWNLOAD_FAILED
    code = "download_failed"
    retryable = True

    def __init__(self, message: str, *, partial: Path | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # The bytes received so far, for the next attempt to resume from.
        self.partial = partial


class SaveError(DownloadError):
    """The image arrived but could not be written or read back: retrying will not help."""

    code = "save_failed"
    retryable = False


class InterruptedByUser(KlingError):
    """Ctrl-C, SIGTERM or SIGHUP. A submitted job keeps running (and is paid for) at the
    provider. The exit code is the shell's for the signal: 130, 143, 129."""

    exit_code = ExitCode.INTERRUPTED
    code = "interrupted"

    def __init__(self, message: str, *, signum: int = 2, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.exit_code = ExitCode(128 + signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (CI cancellation, `docker stop`, `timeout`, a closed terminal),
    raised where Ctrl-C would be, so every path that handles Ctrl-C handles these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a library call that had submitted: still a KeyboardInterrupt, carrying
    the job (a dict with `id` and `task_ids`) so the caller can resume it."""

    def __init__(self, message: str, job: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.job = job


def signal_number(interrupt: BaseException) -> int:
    """The signal behind an interruption (a KeyboardInterrupt, or the cancellation it caused
    inside an event loop): SIGTERM or SIGHUP when one was received, else SIGINT."""
    if isinstance(interrupt, Terminated):
        return interrupt.signum
    from kling_cli.interrupts import pending

    return pending() or 2


class JournalError(ConfigError):
    """The jobs journal cannot be opened or written."""

    code = "journal"


class NetworkError(KlingError):
    """The provider could not be reached. `never_sent`: a submit provably never left (the
    connection was refused), so nothing was created or charged."""

    exit_code = ExitCode.UNEXPECTED
    code = "network"
    never_sent = False
