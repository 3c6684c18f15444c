"""The only code that talks to providers: submit once, poll, download.

Adapters build and parse the wire messages; the engine sends them, applies the one retry policy
(`kling_cli.retry`), guards the key, and reports progress to a listener. Each step lives in a
module of its own, and the `Engine` ties them to one job: sending a request under the deadline
(`kling_cli.sending`), reference uploads (`kling_cli.uploading`), the submit and its resend
rules (`kling_cli.submitting`), and following the status (`kling_cli.status_follow`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kling_cli import status_follow
from kling_cli.deadline import Deadline
from kling_cli.download import Placement, SavedFile, download_image, url_host
from kling_cli.errors import DownloadError
from kling_cli.events import Listeners, ProgressListener
from kling_cli.providers.base import (
    Endpoint,
    HttpRequest,
    Provider,
    Submission,
    TaskHandle,
    TaskStatus,
)
from kling_cli.retry import PollPolicy, RetryPolicy
from kling_cli.sending import Sender

# Re-exported: these lived here before status following had a module of its own, and
# `kling_cli.fetch` imports them from here.
from kling_cli.status_follow import AMBIGUOUS_SUBMIT_LOOKUPS as AMBIGUOUS_SUBMIT_LOOKUPS
from kling_cli.status_follow import job_summary as job_summary
from kling_cli.status_follow import resume_command as resume_command
from kling_cli.submitting import send_submit
from kling_cli.transport import HttpClients
from kling_cli.uploading import with_local_files

if TYPE_CHECKING:
    from kling_cli.fetch import JobOutcome, NameFor
    from kling_cli.limiter import ProviderLimiter
    from kling_cli.request import GenerationRequest


class Engine:
    def __init__(
        self,
        provider: Provider,
        endpoint: Endpoint,
        *,
        listener: ProgressListener | None = None,
        poll_policy: PollPolicy | None = None,
        retry_policy: RetryPolicy | None = None,
        clients: HttpClients | None = None,
        limiter: ProviderLimiter | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        """`deadline`: the job's `--timeout`, which every network step and wait of this engine
        is held to (`WaitTimeoutError` when it passes); None: no deadline."""
        self.provider = provider
        self.endpoint = endpoint
        self.listener: ProgressListener = listener or Listeners()
        self.poll_policy = poll_policy or PollPolicy()
        self.retry_policy = retry_policy or RetryPolicy()
        # A batch's shared limiter for this provider; the caller holds one of its slots.
        self.limiter = limiter
        self.deadline = deadline or Deadline(None)
        self.sender = Sender(
            provider, endpoint, self.listener, self.retry_policy, self.deadline, clients
        )

    async def __aenter__(self) -> Engine:
        await self.sender.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.sender.aclose()

    @property
    def clients(self) -> HttpClients:
        return self.sender.clients

    async def submit_job(
        self, request: GenerationRequest, *, push_timeout: float | None = None
    ) -> list[tuple[TaskHandle, TaskStatus]]:
        """Submit the request as one task, or as several when the provider makes fewer images
        per task than asked for. Each task is reported (and so recorded) as it is accepted.
        With `push_timeout` (the caller will wait anyway), a provider's push delivery is used,
        held open at most that long."""
        parts = request.split(self.provider.capabilities.max_images)
        return [await self.submit(part, push_timeout=push_timeout) for part in parts]

    async def submit(
        self, request: GenerationRequest, *, push_timeout: float | None = None
    ) -> tuple[TaskHandle, TaskStatus]:
        """Send the submit request. It is sent again only when `kling_cli.resend` says that
        is safe: it provably never reached the provider (the connection was refused or timed
        out while connecting), or the provider documents the resend as the same call (Comfy's
        Idempotency-Key: after a lost answer or a 5xx); or on a 429 that says when to come
        back. With a limiter (a batch) any 429 that is about the rate, not the account,
        pauses the provider's submits and sends this one again when its turn comes: a 429
        created nothing. Raises `WaitTimeoutError` when the engine's deadline passes."""
        request = await with_local_files(self.sender, request)
        return await send_submit(
            self.sender, self.submission_for(request, push_timeout), self.limiter
        )

    def submission_for(self, request: GenerationRequest, push_timeout: float | None) -> Submission:
        """The submit request for `request`, as it will be sent: push delivery (a submit held
        open until the images exist, at most `push_timeout` s) where the provider has it and
        the caller waits, else the plain submit. No I/O."""
        pushed = (
            self.provider.build_push_submit(request, self.endpoint)
            if push_timeout is not None
            else None
        )
        if pushed is None or push_timeout is None:
            return self.provider.build_submit(request, self.endpoint)
        limit = min(pushed.request.read_timeout or push_timeout, push_timeout)
        return replace(pushed, request=replace(pushed.request, read_timeout=limit))

    async def find_by_our_id(self, task: TaskHandle) -> TaskStatus | None:
        """Look a task up by the id we chose, after its submit answer was lost; None: still
        unknown after a grace period (`kling_cli.status_follow.find_by_our_id`)."""
        return await status_follow.find_by_our_id(self.sender, task)

    async def refresh(self, task: TaskHandle) -> TaskStatus:
        """Ask the provider once for the task's state, and for its outputs when a queue API
        keeps them behind a separate result request."""
        return await status_follow.refresh(self.sender, task)

    async def wait(self, task: TaskHandle, status: TaskStatus) -> TaskStatus:
        """Follow the provider's status stream where it has one, else poll, until the task
        ends; raise TaskFailedError, or WaitTimeoutError when the engine's deadline passes."""
        return await status_follow.wait(self.sender, self.poll_policy, task, status)

    async def finish(
        self,
        submitted: list[tuple[TaskHandle, TaskStatus]],
        output_dir: Path,
        name_for: NameFor,
        *,
        placement: Placement = "keep",
        on_disk: Collection[str] = (),
        save: bool = True,
    ) -> JobOutcome:
        """Wait for every task, then (with `save`) download the images not yet on disk, all
        within the engine's deadline (`kling_cli.fetch.finish`)."""
        from kling_cli.fetch import finish

        return await finish(
            self, submitted, output_dir, name_for, placement=placement, on_disk=on_disk, save=save
        )

    async def download_one(
        self, url: str, output_dir: Path, stem: str, placement: Placement
    ) -> SavedFile:
        """One image to `output_dir/stem.<ext>`, retried, and held to the deadline in total
        (not only between bytes): an image host that trickles stops at the deadline."""
        doing = f"downloading an image from {url_host(url)}"
        attempt = 0
        partial: Path | None = None
        while True:
            try:
                async with self.deadline.guard(doing, "download"):
                    return await download_image(
                        self.clients.downloads,
                        url,
                        output_dir,
                        stem,
                        placement=placement,
                        partial=partial,
                        timeout=self.sender.timeout(self.clients.downloads.timeout),
                    )
            except DownloadError as exc:
                partial = exc.partial
                if not exc.retryable or attempt + 1 >= self.retry_policy.attempts:
                    if partial is not None:
                        partial.unlink(missing_ok=True)
                    raise
                await self.sender.back_off(attempt, exc.message, None, "download")
            attempt += 1

    def _check_key_destination(self, request: HttpRequest) -> None:
        """Credentials go to the provider's own hosts only (`Sender.check_key_destination`)."""
        self.sender.check_key_destination(request)
