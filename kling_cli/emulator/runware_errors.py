"""The errors Runware's emulated REST API answers with: the documented envelope
`{"errors": [...]}` and its items (https://runware.ai/docs/platform/errors); where a code string
is not documented, it is one of the families the official SDK classifies (PyPI runware-sdk
1.8.0, `derive_code`).
"""

from __future__ import annotations

from typing import Any

from kling_cli.emulator.runware_validation import AUTHENTICATION, INFERENCE, RunwareError
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Task

FAILURE_CODE = "providerContentPolicyViolation"  # a per-item failure, runware-sdk tests

# Verbatim from the errors page.
INVALID_API_KEY = RunwareError(
    code="invalidApiKey",
    message="Invalid API key. Get one at https://my.runware.ai/signup",
    parameter="apiKey",
    task_type=AUTHENTICATION,
    status=401,
)


def invalid_payload(message: str) -> RunwareError:
    return RunwareError("invalidPayload", message)  # code inferred (SDK `derive_code` families)


def duplicate_task_uuid(task_uuid: str) -> RunwareError:
    # Whether Runware rejects or dedupes a reused taskUUID is undocumented. Rejecting
    # makes a client that blindly re-submits visible in tests (inferred).
    return RunwareError(
        "duplicateTaskUUID",
        f"A task with taskUUID '{task_uuid}' already exists; taskUUID must be unique per task.",
        parameter="taskUUID",
        task_type=INFERENCE,
        task_uuid=task_uuid,
    )


def failure_error(task: Task[Any]) -> RunwareError:
    # A failed sync task answers with the envelope form (`errors[]`, runware-sdk); the
    # HTTP status for it is not documented (400 inferred).
    return RunwareError(
        FAILURE_CODE,
        task.failure_message or "Task failed.",
        task_type=INFERENCE,
        task_uuid=task.task_id,
    )


def errors_reply(errors: list[RunwareError]) -> Reply:
    """The documented envelope `{"errors": [...]}` (errors page)."""
    return json_reply(errors[0].status, {"errors": [error.to_json() for error in errors]})
