"""What the jobs journal hands back: a job as recorded, with its tasks and their images."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OutputRecord:
    url: str
    path: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class TaskRecord:
    position: int
    task_id: str | None
    client_task_id: str | None
    expected_images: int | None
    extra: dict[str, str]
    state: str
    provider_status: str | None
    error: str | None
    cost: float | None
    outputs: list[OutputRecord] = field(default_factory=list)
    resend: str | None = None


@dataclass
class JobRecord:
    id: str
    provider: str
    request: dict[str, Any]
    output_dir: str
    emulated: bool
    created_at: float
    updated_at: float
    state: str
    error: str | None
    name_template: str | None = None
    tasks: list[TaskRecord] = field(default_factory=list)

    @property
    def prompt(self) -> str:
        return str(self.request.get("prompt", ""))

    @property
    def images_on_disk(self) -> int:
        return sum(1 for task in self.tasks for out in task.outputs if out.path)
