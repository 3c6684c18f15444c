"""One job's life, from its journal row to its final state: the only place that decides what
is recorded and what the user is told after a submit, whatever stopped the job."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.errors import (
    ConfigError,
    ExitCode,
    InterruptedByUser,
    InvalidRequestError,
    JournalError,
    KlingError,
    NetworkError,
    ProviderRequestError,
    RateLimitedError,
    TaskFailedError,
    UnreadableResponseError,
    WaitTimeoutError,
)
from kling_cli.events import Listeners, NullListener, ProgressListener
from kling_cli.jobs.record import JobRecorder, JobWriter
from kling_cli.jobs.state import (
    BUG_HINT,
    classify,
    job_state_after,
    never_requested,
    overall_state,
    resume_command,
)
from kling_cli.jobs.views import describe_job
from kling_cli.journal import MAY_EXIST, NOT_CREATED, Journal
from kling_cli.resend import Refusal, SubmitCase, arrived_case, refusal

if TYPE_CHECKING:
    from kling_cli.attempts import Attempt
    from kling_cli.download import SavedFile
    from kling_cli.journal import JobRecord
    from kling_cli.providers.base import Provider, TaskHandle
    from kling_cli.request import GenerationRequest


@dataclass(frozen=True)
class JobOptions:
    """How a job runs and where its images go. `timeout` is in seconds (None: no limit);
    without `wait` the job is submitted and left running (`kling status` finishes it)."""

    output_dir: Path
    timeout: float | None = 600.0
    wait: bool = True
    overwrite: bool = False
    sidecar: bool = True
    name_template: str = "{slug}-{task}"
    item_id: str | None = None  # a batch item's id, for `{id}`
    batch_key: str | None = None
    # False: wait for the images but leave them where the provider put them (--upload-to).
    save: bool = True

    @property
    def push_timeout(self) -> float | None:
        """How long a provider's push delivery (a submit held open until the images exist)
        may be held: only when the caller waits anyway. A dry run and a real run use this
        same value, so they build the same submit."""
        return self.timeout if self.wait else None


@dataclass
class JobResult:
    """How a job stands when a command is done with it: its summary as recorded (the `job`
    object of `--json`), the images this command saved, and the error that stopped it."""

    job: dict[str, Any]
    record: JobRecord | None = None
    files: list[SavedFile] = field(default_factory=list)
    error: KlingError | None = None
    warnings: list[str] = field(default_factory=list)
    # Only submitted (`--no-wait`): the images are fetched later.
    submitted_only: bool = False
    provider_name: str = ""
    # Saved images whose pixel size is not the documented one for the request.
    size_mismatches: list[Path] = field(default_factory=list)
    # Set when the job provably created nothing and charged nothing: it may go elsewhere.
    refusal: Refusal | None = None
    # Each provider the job was sent to, in order, when it was routed over several.
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return int(self.error.exit_code) if self.error else int(ExitCode.OK)

    @property
    def job_id(self) -> str:
        return str(self.job["id"])


def _refused(failure: KlingError | None) -> bool:
    """An error that is the provider's own answer to a request (a rejected key, a refused
    request, a rate limit): a submit answered so created no task."""
    if failure is None:
        return False
    if isinstance(failure, UnreadableResponseError | JournalError):
        return False
    if isinstance(failure, ProviderRequestError) and (failure.http_status or 0) >= 500:
        # A server error after the request arrived: the task may have been made (and
        # charged) before it failed, so it is never taken for a refusal.
        return False
    answers = ConfigError | InvalidRequestError | RateLimitedError | ProviderRequestError
    return isinstance(failure, answers)


def _before_any_submit(failure: KlingError | None) -> bool:
    """`--timeout` passed before the (first) submit left."""
    return isinstance(failure, WaitTimeoutError) and failure.phase == "before_submit"


class _SavedFiles(NullListener):
    def __init__(self) -> None:
        self.files: list[SavedFile] = []

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        self.files.append(file)


class JobLife:
    """Owns one job while a command works on it: its journal writes (through `listener`),
    and `end`, which records the state it really is in and says what to do next."""

    def __init__(
        self,
        journal: Journal,
        job: JobRecord,
        provider: Provider,
        *,
        progress: ProgressListener | None = None,
        sidecar: bool = True,
        attempts: list[Attempt] | None = None,
    ) -> None:
        self.journal = journal
        self.job = job
        self.provider = provider
        # The attempts at other providers before this one; None: the job was not routed.
        self.attempts = attempts
        self.writer = JobWriter(journal, job.id)
        self.recorder = JobRecorder(self.writer, job.tasks)
        self._saved = _SavedFiles()
        listeners: list[ProgressListener] = [self.recorder, self._saved]
        if progress is not None:
            listeners.append(progress)
        if sidecar:
            from kling_cli.sidecar import SidecarWriter

            listeners.append(
                SidecarWriter(
                    job.id,
                    provider.id,
                    job.request,
                    emulated=job.emulated,
                    attempts=None if attempts is None else self._attempts("succeeded", None),
                )
            )
        # The journal first: a crash right after a progress line must find the job recorded.
        self.listener = Listeners(*listeners)
        # What the user should read besides the outcome (a provider's partial failure).
        self.warnings: list[str] = []

    @classmethod
    def begin(
        cls,
        journal: Journal,
        provider: Provider,
        request: GenerationRequest,
        options: JobOptions,
        *,
        emulated: bool,
        progress: ProgressListener | None = None,
        attempts: list[Attempt] | None = None,
    ) -> JobLife:
        """Record a new job before anything is sent; `attempts`: those at other providers
        before this one, when the job is routed over several."""
        job_id = journal.create_job(
            provider.id,
            request.model_dump(mode="json"),
            str(options.output_dir.resolve()),
            emulated=emulated,
            batch_key=options.batch_key,
            name_template=options.name_template,
        )
        job = journal.job(job_id)
        assert job is not None
        return cls(
            journal, job, provider, progress=progress, sidecar=options.sidecar, attempts=attempts
        )

    def _attempts(self, outcome: str, error: str | None) -> list[Attempt]:
        from kling_cli.attempts import Attempt

        own = Attempt(self.provider.id, outcome, error, self.job.id)
        return [*(self.attempts or []), own]

    @property
    def files(self) -> list[SavedFile]:
        return self._saved.files

    def end(
        self,
        error: BaseException | None,
        *,
        submitted_only: bool = False,
        state: str | None = None,
    ) -> JobResult:
        """Record how the job stands now that the command stops (`state`, or the one `error`
        implies), and build the result. Never raises: the journal may refuse the write, and
        then it goes to the fallback file and the user is told where."""
        failure = classify(error) if error is not None else None
        refused = _refused(failure)
        never_sent = isinstance(failure, NetworkError) and failure.never_sent
        for position in self.recorder.unanswered:
            if never_sent:
                # The connection was refused: the submit never left (kling_cli.resend).
                self.writer.update_task(
                    position,
                    state=NOT_CREATED,
                    error="never reached the provider: nothing was charged",
                    resend=SubmitCase.NEVER_SENT.value,
                )
                state = state or NOT_CREATED
            elif refused and failure is not None:
                # The provider answered the submit with a refusal: no task, no charge.
                self.writer.update_task(position, state=NOT_CREATED, error=failure.message)
            else:
                # Sent, never answered: it may exist (and be charged) at the provider.
                self.writer.update_task(
                    position, state=MAY_EXIST, error="the submit was not answered"
                )
        self.recorder.unanswered.clear()
        if state is None and submitted_only:
            state = "submitted"
        elif state is None and error is None:
            current = self._reread()
            state = overall_state(current) if current is not None else "succeeded"
        elif state is None:
            state = job_state_after(error)
        if _before_any_submit(failure) and not (self._reread() or self.job).tasks:
            state = NOT_CREATED
            assert failure is not None
            failure.hint = "Nothing was sent, so nothing was charged."
        elif isinstance(failure, NetworkError) and not (self._reread() or self.job).tasks:
            # A task is journalled before its submit is sent, so a job with none (a reference
            # upload that could not connect) sent nothing: there is nothing to look for.
            state = NOT_CREATED
        self.writer.set_job_state(state, failure.message if failure else None)
        fallback = self.writer.close()
        record = self._reread()
        summary = describe_job(record) if record is not None else self._summary(state)
        result = JobResult(
            summary,
            record,
            list(self.files),
            failure,
            warnings=list(self.warnings),
            submitted_only=submitted_only,
            provider_name=self.provider.name,
        )
        result.warnings += self._size_warnings(result)
        if record is not None:
            tasks = [task.state for task in record.tasks]
            result.refusal = refusal(self.provider.id, failure, tasks)
        if self.attempts is not None:
            from kling_cli.attempts import record_attempts

            outcome = result.refusal.value if result.refusal else state
            result.attempts = self._attempts(outcome, failure.message if failure else None)
            record_attempts(self.journal, self.job.id, result.attempts)
            summary["attempts"] = [attempt.to_json() for attempt in result.attempts]
        if failure is not None:
            self._explain(failure, error, summary)
            failure.job = summary
        if fallback is not None or self.writer.pending:
            where = (
                f"was saved to {fallback}, which the next kling command reads"
                if fallback is not None
                else "could not be saved anywhere: keep this message"
            )
            result.warnings.append(
                f"The jobs journal could not be written; job {self.job.id} at "
                f"{self.provider.name} (tasks: "
                f"{', '.join(self.recorder.task_ids) or 'none answered'}) {where}. "
                f"Resume with: {resume_command(self.job.id)}"
            )
        return result

    def _size_warnings(self, result: JobResult) -> list[str]:
        """An image that is not the documented size for the request is kept, and said."""
        from kling_cli.limits import expected_output_size

        resolution = str(self.job.request.get("resolution", ""))
        aspect = str(self.job.request.get("aspect_ratio", ""))
        expected = expected_output_size(resolution, aspect)
        if expected is None:
            return []
        result.size_mismatches = [
            saved.path for saved in self.files if (saved.width, saved.height) != expected
        ]
        return [
            f"{path.name} is not the documented {expected[0]}x{expected[1]} for {resolution} "
            f"at {aspect}."
            for path in result.size_mismatches
        ]

    def _reread(self) -> JobRecord | None:
        if self.writer.pending or self.writer.fallback is not None:
            return None
        try:
            return self.journal.job(self.job.id)
        except sqlite3.Error:
            return None

    def _summary(self, state: str) -> dict[str, Any]:
        task_ids = list(self.recorder.task_ids)
        return {
            "id": self.job.id,
            "provider": self.provider.id,
            "task_id": task_ids[0] if task_ids else None,
            "state": state,
            "task_ids": task_ids,
            "cost": None,
            "emulated": self.job.emulated,
        }

    def _explain(
        self, failure: KlingError, error: BaseException | None, summary: dict[str, Any]
    ) -> None:
        """The message and hint for a job that stopped: how to resume it, or why it cannot
        be, and never a command that would not work."""
        name = self.provider.name
        submitted = bool(summary["task_ids"])
        record = self._reread() or self.job
        maybe = not submitted and any(task.state == MAY_EXIST for task in record.tasks)
        made = bool(record.tasks) and all(task.state == "succeeded" for task in record.tasks)
        # An emulator's job costs nothing and stops with the command.
        paid = "" if self.job.emulated else " (it is paid for)"
        resume = resume_command(self.job.id)
        if isinstance(failure, InterruptedByUser):
            if submitted and made:
                failure.message = f"Interrupted while saving the images of job {self.job.id}; "
                failure.message += f"{name} has made them{paid}."
            elif submitted:
                failure.message = f"Interrupted; job {self.job.id} keeps running at {name}{paid}."
            elif maybe:
                failure.message = (
                    f"Interrupted while submitting job {self.job.id}; if {name} received it, "
                    f"it keeps running{paid}."
                )
            else:
                failure.message = "Interrupted before anything was submitted."
                failure.hint = "Nothing was charged."
                return
            missing = never_requested(record)
            if missing:
                failure.message += f" {missing} of its images were never requested, so not charged."
        if self.job.emulated:
            if submitted and not isinstance(failure, TaskFailedError):
                failure.hint = "The built-in emulator stopped with this command; run it again."
            return
        if isinstance(failure, TaskFailedError):
            return
        if submitted:
            verb = (
                "Fetch the images later with"
                if isinstance(failure, InterruptedByUser)
                else ("Resume with")
            )
            failure.hint = f"{verb}: {resume}"
            if type(failure) is KlingError:  # a bug: say so too
                failure.hint += f" ({BUG_HINT[0].lower()}{BUG_HINT[1:]})"
            if isinstance(failure, WaitTimeoutError) and failure.phase == "download":
                failure.hint = f"The images exist. Fetch them with: {resume}"
            elif isinstance(failure, WaitTimeoutError):
                failure.hint = f"It may still finish. {failure.hint}"
        elif maybe:
            case = arrived_case(self.provider.capabilities)
            if case is not SubmitCase.UNKNOWN:
                how = "collects it" if case is SubmitCase.IDEMPOTENT else "looks it up"
                failure.hint = f"If {name} received it, this {how}. Resume with: {resume}"
            elif isinstance(failure, WaitTimeoutError):
                failure.message = (
                    f"{failure.message[:-1]}; {name} keeps no task to ask for, so this "
                    "result cannot be fetched later (it may still be charged)."
                )
                failure.hint = (
                    "Check its dashboard before submitting again; a longer --timeout waits "
                    "for the answer."
                )
            else:
                failure.hint = (
                    f"{name} has no way to look a task up by our id: check its dashboard "
                    "before submitting again."
                )
