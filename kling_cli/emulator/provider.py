"""What every emulated provider implements, and what the emulator hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from kling_cli.emulator.faults import Fault, FaultQueue, Phase
from kling_cli.emulator.images import ImageStore
from kling_cli.emulator.media import MediaFile, MediaStore
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Event, Task, TaskStore
from kling_cli.emulator.webhooks import Bodies, WebhookSender

Job = TypeVar("Job")


@dataclass
class Settings:
    """Read on every request, so a running emulator can be retuned."""

    api_key: str
    latency: float
    # What providers that report cost (Runware) charge per image; None: their documented
    # price. A test sets it to a price the client's estimate does not know.
    cost_per_image: float | None = None
    # Providers whose key is refused: each answers with its own documented rejection.
    rejected_keys: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ProviderContext:
    settings: Settings
    images: ImageStore
    faults: FaultQueue
    media: MediaStore
    webhooks: WebhookSender


@dataclass(frozen=True)
class ProviderRequest:
    method: str
    path: str  # below the /<provider_id> prefix, i.e. the provider's documented path
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ProviderApi(ABC, Generic[Job]):
    """One provider's documented wire protocol, mounted at /<provider_id> on the API port,
    with its tasks (each carrying the provider's own `Job` details)."""

    provider_id: ClassVar[str]
    # Appended to the mount point to form the base URL a client is configured with.
    base_path: ClassVar[str]
    # The provider's other hosts (`Provider.service_urls`), emulated below the mount point.
    service_paths: ClassVar[dict[str, str]] = {}
    # The words besides its usual failure that the provider's docs or SDK say a task can end
    # in (a task_failure fault's `final_state`); empty where they name none.
    final_states: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self.tasks: TaskStore[Job] = TaskStore(self.provider_id)

    @property
    def api_key(self) -> str:
        """The key this provider accepts: none at all once its key is rejected."""
        if self.provider_id in self.context.settings.rejected_keys:
            return "\0rejected"  # no header can carry a NUL, so no client key matches
        return self.context.settings.api_key

    def mount_url(self, request: ProviderRequest) -> str:
        """This provider's mount point as the client reached it, for absolute URLs in answers
        that the client must use verbatim."""
        return f"http://{request.headers.get('host') or '127.0.0.1'}/{self.provider_id}"

    @abstractmethod
    def phase_of(self, request: ProviderRequest) -> Phase | None:
        """Whether a request submits or polls (the phases faults are aimed at), or neither."""

    @abstractmethod
    def handle(self, request: ProviderRequest) -> Reply: ...

    @abstractmethod
    def rate_limited(self, request: ProviderRequest) -> Reply:
        """The documented 429 answer; the emulator adds the fault's Retry-After header, if any."""

    @abstractmethod
    def server_error(self, request: ProviderRequest, status: int) -> Reply: ...

    def out_of_credits(self, request: ProviderRequest) -> Reply:
        """The documented answer when the account has no credit; HTTP 402 where a provider
        documents nothing more specific."""
        return json_reply(402, {"error": {"message": "Insufficient credits"}})

    def events(self) -> list[Event]:
        return self.tasks.events()

    def uploaded_files(self) -> list[MediaFile]:
        """Reference files the client has uploaded, oldest first."""
        return self.context.media.received(self.provider_id)

    def reset(self) -> None:
        """Forget all tasks."""
        self.tasks.clear()

    def notify_when_done(self, url: str | None, task: Task[Job], bodies: Bodies) -> None:
        """Deliver `bodies()`, the provider's documented webhook bodies for `task`, to `url`
        (if given) once the task has ended."""
        if url:
            self.context.webhooks.schedule(url, task.seconds_left(), bodies)

    def claim_task_failure(self) -> str | None:
        """The message of an armed task_failure fault for this provider, used up by the caller."""
        fault = self.claim_failure()
        return fault.message if fault is not None else None

    def claim_failure(self) -> Fault | None:
        """An armed task_failure fault for this provider, used up by the caller; for the
        providers with `final_states`, whose failures can end in another word."""
        return self.context.faults.take([self.provider_id], "submit", kinds=["task_failure"])
