"""The only code that talks to providers: submit once, poll, download.

Adapters build and parse the wire messages; the engine sends them, applies the one retry policy
(`kling_cli.retry`), guards the key, and reports progress to a listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from kling_cli.deadline import Deadline
from kling_cli.download import Placement, SavedFile, download_image, url_host
from kling_cli.errors import (
    DownloadError,
    InvalidRequestError,
    KlingError,
    NetworkError,
    ProviderRequestError,
    TaskFailedError,
    UnreadableResponseError,
    WaitTimeoutError,
)
from kling_cli.events import Listeners, ProgressListener
from kling_cli.providers.base import (
    INLINE_TRANSPORTS,
    Endpoint,
    HttpRequest,
    HttpResponse,
    Provider,
    Submission,
    TaskHandle,
    TaskState,
    TaskStatus,
    redact_error,
    redact_status,
)
from kling_cli.resend import arrived_case, may_resend
from kling_cli.retry import PollPolicy, RetryPolicy, parse_retry_after
from kling_cli.transport import REQUEST_TIMEOUT, HttpClients
from kling_cli.urls import is_credential_header, origin

if TYPE_CHECKING:
    from kling_cli.fetch import JobOutcome, NameFor
    from kling_cli.limiter import ProviderLimiter
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest

# After a submit whose answer was lost: when to look the task up by our own id.
AMBIGUOUS_SUBMIT_LOOKUPS = (0.5, 1.5, 3.0)


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
        self._clients = clients
        self._owns_clients = clients is None
        # A batch's shared limiter for this provider; the caller holds one of its slots.
        self.limiter = limiter
        self.deadline = deadline or Deadline(None)

    async def __aenter__(self) -> Engine:
        if self._clients is None:
            self._clients = HttpClients.create()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owns_clients and self._clients is not None:
            await self._clients.aclose()
            self._clients = None

    @property
    def _secrets(self) -> tuple[str | None, ...]:
        """What a server's text must never carry into messages, the journal or sidecars."""
        return (self.endpoint.api_key, self.endpoint.secret_key)

    @property
    def clients(self) -> HttpClients:
        if self._clients is None:
            raise RuntimeError("use the Engine as an async context manager, or pass clients")
        return self._clients

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
        submission = self.submission_for(await self._with_local_files(request), push_timeout)
        case = arrived_case(self.provider.capabilities)
        client_id = submission.client_task_id
        # What `kling status` needs to find the task again if no answer ever comes (Comfy's
        # request body, resent with the same key), recorded before anything is sent.
        extra = dict(self.provider.handle(client_id, submission).extra) if client_id else {}
        if self.deadline.expired:
            # Past --timeout before the submit left: nothing was sent, so nothing may exist.
            raise self.deadline.error(f"submitting to {self.provider.name}", "before_submit")
        self.listener.submitting(
            client_id, submission.expected_images, resend=case.value, extra=extra
        )
        attempt, resent = 0, False
        while True:
            last_attempt = attempt + 1 >= self.retry_policy.attempts
            epoch = self.limiter.epoch if self.limiter is not None else 0
            try:
                response = await self._send(submission.request, self._submit_step, "submit")
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last_attempt:
                    error = self._unreachable(exc)
                    error.never_sent = True
                    raise error from None
                reason = f"cannot connect ({type(exc).__name__})"
                await self._back_off(attempt, reason, None, "submit")
                attempt += 1
                continue
            except httpx.TransportError as exc:
                if may_resend(case) and not last_attempt:
                    reason = f"no answer ({type(exc).__name__}); resending with the same key"
                    await self._back_off(attempt, reason, None, "submit")
                    attempt, resent = attempt + 1, True
                    continue
                return await self._after_ambiguous_submit(submission, exc)
            refused = response.status_code == 429 and self.provider.is_retryable(response)
            if refused and not last_attempt and self.limiter is not None:
                delay = self.limiter.rate_limited(response.retry_after, epoch)
                self.listener.retrying(f"{self.provider.name} rate limited the submits", delay)
                async with self.deadline.guard("waiting for a turn to submit", "submit"):
                    await self.limiter.requeue()
                attempt += 1
                continue
            if refused and response.retry_after is not None and not last_attempt:
                await self._back_off(attempt, "rate limited", response.retry_after, "submit")
                attempt += 1
                continue
            transient = response.status_code >= 500 and self.provider.is_retryable(response)
            if transient and may_resend(case) and not last_attempt:
                reason = f"{self.provider.name} answered HTTP {response.status_code}; resending"
                await self._back_off(attempt, reason, response.retry_after, "submit")
                attempt, resent = attempt + 1, True
                continue
            try:
                task, status = self.provider.parse_submit(response, submission)
            except KlingError as exc:
                exc = redact_error(exc, self._secrets)
                if resent:
                    # The refusal answers the resend, not the first send, which may have
                    # created (and charged) the task: never a refusal to fail over on.
                    raise self._refused_resend(exc) from None
                raise exc from None
            status = redact_status(status, self._secrets)
            if self.limiter is not None:
                self.limiter.accepted()
            self.listener.submitted(task)
            self.listener.status_changed(task, status)
            return task, status

    async def _with_local_files(self, request: GenerationRequest) -> GenerationRequest:
        """The request with each local reference inlined, or replaced by what its upload
        returned, in the order given."""
        from kling_cli.references import is_local, with_inline_references

        transport = self.provider.capabilities.local_files
        if transport in INLINE_TRANSPORTS:
            return with_inline_references(request, transport)
        if transport != "upload" or not any(is_local(ref) for ref in request.references):
            return request
        references = [
            await self._uploaded(ref) if is_local(ref) else ref for ref in request.references
        ]
        return request.model_copy(update={"references": tuple(references)})

    async def _uploaded(self, reference: str) -> str:
        import hashlib

        from kling_cli.references import read_local_reference

        try:
            # Off the event loop: up to 10 MB read, checked and hashed per job.
            file = await asyncio.to_thread(read_local_reference, reference)
        except ValueError as exc:  # the file changed since the run was validated
            raise InvalidRequestError(str(exc)) from None
        account = hashlib.sha256(self.endpoint.api_key.encode()).hexdigest()[:16]
        key = (self.provider.id, self.endpoint.base_url, account, file.sha256)
        return await self.clients.uploads.reference(key, lambda: self._upload(file))

    async def _upload(self, file: LocalFile) -> str:
        self.listener.uploading(file.name, len(file.content))
        steps = self.provider.upload(file, self.endpoint)
        try:
            request = next(steps)
            while True:
                response = await self._exchange(request, "upload failed", "submit")
                try:
                    request = steps.send(response)
                except StopIteration as done:
                    return str(done.value)
        except KlingError as exc:
            redact_error(exc, self._secrets)
            exc.message = f"Could not upload {file.path} to {self.provider.name}: {exc.message}"
            exc.hint = exc.hint or "Nothing was submitted, so nothing was charged."
            raise

    async def _exchange(self, request: HttpRequest, what: str, phase: str = "wait") -> HttpResponse:
        """Send a request that is safe to repeat, retrying transport errors and transient
        answers (after the provider's `Retry-After`, where it gives one); the last answer is
        returned whatever it is."""
        attempt = 0
        doing = "uploading a reference" if phase == "submit" else "checking the task"
        while True:
            last_attempt = attempt + 1 >= self.retry_policy.attempts
            try:
                response = await self._send(request, f"{doing} at {self.provider.name}", phase)
            except httpx.TransportError as exc:
                if last_attempt:
                    raise self._unreachable(exc, request.url) from None
                await self._back_off(attempt, f"{what} ({type(exc).__name__})", None, phase)
            else:
                if last_attempt or not self.provider.is_retryable(response):
                    return response
                reason = f"{self.provider.name} answered HTTP {response.status_code}"
                await self._back_off(attempt, reason, response.retry_after, phase)
            attempt += 1

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

    def _refused_resend(self, refusal: KlingError) -> NetworkError:
        """A resend (same Idempotency-Key) refused after a first send that may have arrived:
        the job may exist, and `kling status` finds it by its key."""
        return NetworkError(
            f"{self.provider.name} refused the resend of a submit whose first send may have "
            f"arrived ({refusal.message}); the first may have been created and charged.",
            hint="`kling status` looks it up by its key: run it before submitting again.",
        )

    async def _after_ambiguous_submit(
        self, submission: Submission, exc: httpx.TransportError
    ) -> tuple[TaskHandle, TaskStatus]:
        """The request may have reached the provider. Never send it again: look the task up
        by the id we chose, where the provider has one, or say it may exist."""
        reason = (
            f"the connection to {self.provider.name} broke after the job was sent "
            f"({type(exc).__name__})"
        )
        self.listener.submit_uncertain(reason)
        client_task_id = submission.client_task_id
        if client_task_id is None or not self.provider.capabilities.client_task_id_lookup:
            raise NetworkError(
                f"{reason[0].upper()}{reason[1:]}; it may have been created and charged.",
                hint="Check the provider's dashboard (and `kling jobs`) before submitting again.",
            )
        task = self.provider.handle(client_task_id, submission)
        status = await self.find_by_our_id(task)
        if status is not None:
            self.listener.submitted(task)
            self.listener.status_changed(task, status)
            return task, status
        raise NetworkError(
            f"{reason[0].upper()}{reason[1:]}, and {self.provider.name} does not know task "
            f"{client_task_id} yet; it may still have been created and charged.",
            hint="`kling status` looks it up by that id: run it before submitting again.",
        )

    async def find_by_our_id(self, task: TaskHandle) -> TaskStatus | None:
        """Look a task up by the id we chose, after its submit answer was lost. The request
        may still be on its way, so "unknown" is only believed after a grace period; None:
        still unknown then."""
        for delay in AMBIGUOUS_SUBMIT_LOOKUPS:
            await self.deadline.sleep(delay, f"looking task {task.task_id} up", "submit")
            try:
                return await self.refresh(task)
            except WaitTimeoutError:
                raise
            except KlingError:
                continue
        return None

    async def refresh(self, task: TaskHandle) -> TaskStatus:
        """Ask the provider once for the task's state, and for its outputs when a queue API
        keeps them behind a separate result request."""
        status = await self._ask(self.provider.build_poll(task, self.endpoint), task, "poll")
        if status.state is TaskState.SUCCEEDED and not status.outputs:
            result_request = self.provider.build_result(task, self.endpoint)
            if result_request is not None:
                status = await self._ask(result_request, task, "result")
        return status

    async def _ask(self, request: HttpRequest, task: TaskHandle, step: str) -> TaskStatus:
        """Send a poll or result request, retrying transport errors, transient answers and
        answers that cannot be read."""
        attempt = 0
        while True:
            response = await self._exchange(request, "status check failed")
            try:
                if step == "result":
                    return redact_status(self.provider.parse_result(response, task), self._secrets)
                return redact_status(self.provider.parse_poll(response, task), self._secrets)
            except UnreadableResponseError as exc:
                if attempt + 1 >= self.retry_policy.attempts:
                    raise redact_error(exc, self._secrets) from None
                await self._back_off(attempt, "unreadable answer")
            except KlingError as exc:
                raise redact_error(exc, self._secrets) from None
            attempt += 1

    async def wait(self, task: TaskHandle, status: TaskStatus) -> TaskStatus:
        """Follow the provider's status stream where it has one, else poll, until the task
        ends; raise TaskFailedError, or WaitTimeoutError when the engine's deadline passes."""
        try:
            status = await self._wait(task, status)
        except WaitTimeoutError as exc:
            if exc.phase == "wait":
                exc.message = (
                    f"{exc.message[:-1]}; {self.provider.name} may still finish task "
                    f"{task.task_id}."
                )
                exc.args = (exc.message,)
            exc.hint = exc.hint or resume_command(task)
            exc.job = job_summary(task, status)
            raise
        if status.error and not status.outputs:
            raise TaskFailedError(
                f"{self.provider.name} reports that task {task.task_id} failed: {status.error}",
                job=job_summary(task, status),
            )
        return status

    async def _wait(self, task: TaskHandle, status: TaskStatus) -> TaskStatus:
        if not status.state.is_terminal:
            status = await self._follow_stream(task, status)
        poll_number = 0
        while not status.state.is_terminal:
            delay = max(self.poll_policy.delay(poll_number), status.poll_after or 0.0)
            await self.deadline.sleep(delay, f"waiting for {self.provider.name}")
            poll_number += 1
            new_status = await self.refresh(task)
            if new_status != status:
                self.listener.status_changed(task, new_status)
            status = new_status
        return status

    async def _follow_stream(self, task: TaskHandle, status: TaskStatus) -> TaskStatus:
        """Read status events as the provider pushes them; once one says the task ended, one
        regular poll fetches the outputs. Any trouble (an error, a dropped stream, a stream
        that ends early) leaves the rest to polling; a 429 with `Retry-After` makes the
        first poll wait that long. The deadline bounds the stream like any request."""
        request = self.provider.build_stream(task, self.endpoint)
        if request is None:
            return status
        self._check_key_destination(request)
        timeout = self._timeout(REQUEST_TIMEOUT, request.read_timeout)
        doing = f"reading {self.provider.name}'s status stream"
        try:
            async with (
                self.deadline.guard(doing),
                self.clients.api.stream(
                    "GET", request.url, headers=dict(request.headers), timeout=timeout
                ) as response,
            ):
                if response.status_code == 429:
                    # inference.sh names a `rate_limited` error (its SDK's ErrorCode) but
                    # no Retry-After; one it sends is honoured (RFC 9110 section 10.2.3): no
                    # status request sooner, on the stream or the polls after it.
                    after = parse_retry_after(response.headers.get("retry-after"))
                    return replace(status, poll_after=after) if after else status
                if response.status_code != 200:
                    return status
                async for line in response.aiter_lines():
                    event = self.provider.parse_stream_line(line, task)
                    if event is None:
                        continue
                    if event != status:
                        self.listener.status_changed(task, event)
                    status = event
                    if status.state.is_terminal:
                        break
        except WaitTimeoutError:
            raise
        except (TimeoutError, httpx.HTTPError, KlingError):
            return status
        if not status.state.is_terminal:
            return status
        final = await self.refresh(task)
        if final != status:
            self.listener.status_changed(task, final)
        return final

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
                        timeout=self._timeout(self.clients.downloads.timeout),
                    )
            except DownloadError as exc:
                partial = exc.partial
                if not exc.retryable or attempt + 1 >= self.retry_policy.attempts:
                    if partial is not None:
                        partial.unlink(missing_ok=True)
                    raise
                await self._back_off(attempt, exc.message, None, "download")
            attempt += 1

    @property
    def _submit_step(self) -> str:
        return f"waiting for {self.provider.name} to answer the submit"

    async def _send(
        self, request: HttpRequest, doing: str | None = None, phase: str = "wait"
    ) -> HttpResponse:
        """One request, held to the deadline: its timeouts clipped to the time left, and the
        whole exchange bounded (`WaitTimeoutError`, with `doing` and `phase`)."""
        self._check_key_destination(request)
        timeout = self._timeout(self.clients.api.timeout, request.read_timeout)
        async with self.deadline.guard(doing or f"talking to {self.provider.name}", phase):
            response = await self.clients.api.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                json=request.json,
                content=request.content,
                files=request.files,
                timeout=timeout,
            )
        return HttpResponse(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    def _timeout(self, base: httpx.Timeout, read: float | None = None) -> httpx.Timeout:
        """The client's timeouts (`read` instead of its read timeout: a synchronous API's
        hold), each cut to the time the deadline leaves."""
        clip = self.deadline.clip
        return httpx.Timeout(
            connect=clip(base.connect),
            read=clip(read or base.read),
            write=clip(base.write),
            pool=clip(base.pool),
        )

    def _check_key_destination(self, request: HttpRequest) -> None:
        """Credentials (`Authorization`, `X-API-Key`, ...) go to the provider's API host (and
        its own configured service hosts, such as file storage) and nowhere else: never to a
        host an answer named."""
        carries_key = any(is_credential_header(name) for name in request.headers)
        allowed = {
            origin(url) for url in (self.endpoint.base_url, *self.endpoint.service_urls.values())
        }
        if carries_key and origin(request.url) not in allowed:
            host = urlsplit(request.url).hostname
            raise ProviderRequestError(
                f"Refusing to send the {self.provider.name} key to {host}, "
                "which is not the provider's API host."
            )

    async def _back_off(
        self, attempt: int, reason: str, retry_after: float | None = None, phase: str = "wait"
    ) -> None:
        delay = self.retry_policy.delay(attempt, retry_after)
        self.listener.retrying(reason, delay)
        await self.deadline.sleep(delay, f"waiting to try again ({reason})", phase)

    def _unreachable(self, exc: Exception, url: str | None = None) -> NetworkError:
        host = urlsplit(url or self.endpoint.base_url).hostname
        return NetworkError(f"Cannot reach {self.provider.name} at {host} ({type(exc).__name__}).")


def resume_command(task: TaskHandle) -> str:
    return f"kling status {task.task_id} --provider {task.provider}"


def job_summary(task: TaskHandle, status: TaskStatus | None) -> dict[str, Any]:
    return {
        "provider": task.provider,
        "task_id": task.task_id,
        "state": status.state.value if status else None,
    }
