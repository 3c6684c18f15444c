"""`kling status`: ask the provider where a task stands."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from kling_cli.commands.common import JSON_OPTION, PROVIDER_OPTION, ProviderSession, open_session
from kling_cli.errors import ExitCode
from kling_cli.ui import Output, envelope

if TYPE_CHECKING:
    from kling_cli.providers.base import TaskHandle, TaskStatus


def status(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The provider's task id, as `generate` printed it."),
    provider: str | None = PROVIDER_OPTION,
    as_json: bool = JSON_OPTION,
) -> int:
    """Show a task's state and, once it has finished, its image URLs."""
    from kling_cli.engine import job_summary
    from kling_cli.providers.base import TaskHandle

    output: Output = ctx.obj
    with open_session(provider, emulate=False, output=output) as session:
        task = TaskHandle(session.provider.id, task_id)
        state = asyncio.run(_refresh(session, task))
    if output.json_mode:
        job = {
            **job_summary(task, state),
            "provider_status": state.provider_status,
            "outputs": [image.url for image in state.outputs],
            "cost": state.cost,
            "error": state.error,
        }
        output.emit_json(envelope(exit_code=ExitCode.OK, job=job))
        return ExitCode.OK
    output.result(f"{state.state.value} ({state.provider_status})")
    for image in state.outputs:
        output.result(image.url)
    if state.error:
        output.note(f"{session.provider.name}: {state.error}")
    return ExitCode.OK


async def _refresh(session: ProviderSession, task: TaskHandle) -> TaskStatus:
    from kling_cli.engine import Engine

    async with Engine(session.provider, session.endpoint) as engine:
        return await engine.refresh(task)
