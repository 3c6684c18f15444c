"""Runware's REST API for Kling IMAGE O1. Sources: the model page
(https://runware.ai/docs/models/klingai-image-o1), the platform docs (authentication, task
polling, errors, rate limits, task details: https://runware.ai/docs/platform/...) and the
official SDK (PyPI runware-sdk 1.8.0, github.com/Runware/runware-python, with its tests).

One endpoint, `POST /v1`, taking a JSON array of tasks. `imageInference` submits (sync by
default, or async), `getResponse` polls, `getTaskDetails` recovers a past task.
"""

from __future__ import annotations

import base64
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from kling_cli.emulator.faults import Phase
from kling_cli.emulator.images import CONTENT_TYPES, ImageSpec, IssuedImage, caption_of, encoded
from kling_cli.emulator.provider import ProviderApi, ProviderRequest
from kling_cli.emulator.runware_errors import (
    INVALID_API_KEY,
    duplicate_task_uuid,
    errors_reply,
    failure_error,
    invalid_payload,
)
from kling_cli.emulator.runware_validation import (
    AUTHENTICATION,
    GET_RESPONSE,
    GET_TASK_DETAILS,
    INFERENCE,
    InferenceRequest,
    InvalidTask,
    PollRequest,
    RunwareError,
    validate_authentication,
    validate_inference,
    validate_poll,
)
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import DuplicateTaskError, Task

COST_PER_IMAGE = 0.028  # model page "Pricing"
_SEED_RANGE = range(1, 2**31)


@dataclass(frozen=True)
class RunwareJob:
    request: InferenceRequest
    original_tasks: list[Any]  # the submitted array without credentials, for getTaskDetails
    images: tuple[tuple[IssuedImage, int], ...]  # (image, seed) per result


RunwareTask = Task[RunwareJob]


class RunwareApi(ProviderApi[RunwareJob]):
    provider_id = "runware"
    base_path = "/v1"

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        task_types = {task.get("taskType") for task in _task_objects(request.body)}
        if INFERENCE in task_types:
            return "submit"
        if task_types & {GET_RESPONSE, GET_TASK_DETAILS}:
            return "poll"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        # Runware documents HTTP 429 "Queue capacity exceeded, implement retry with
        # exponential backoff" (rate-limits page) but no body; the code is the one its SDK
        # classifies as rateLimit (inferred).
        error = RunwareError(
            "rateLimitExceeded",
            "Queue capacity exceeded, implement retry with exponential backoff.",
            status=429,
        )
        return errors_reply([self._with_first_task(error, request)])

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        # Status codes per the rate-limits page (500/503/504); code strings from the
        # SDK's serverError and timeout families (inferred).
        code, message = {
            503: ("serviceUnavailable", "Service temporarily unavailable, try again later."),
            504: ("timeoutProvider", "The task exceeded the maximum queue wait time."),
        }.get(status, ("internalServerError", "Internal server error."))
        error = RunwareError(code, message, status=status)
        return errors_reply([self._with_first_task(error, request)])

    def handle(self, request: ProviderRequest) -> Reply:
        if request.path.rstrip("/") != self.base_path:
            return errors_reply([RunwareError("notFound", "Not found.", status=404)])
        if request.method != "POST":
            # "All requests must be made using the POST method." (authentication page); the status
            # is inferred.
            return errors_reply(
                [RunwareError("invalidMethod", "Use POST with a JSON array.", status=405)]
            )
        try:
            payload = json.loads(request.body)
        except ValueError:
            payload = None
        if not self._authenticated(request, payload):
            return errors_reply([INVALID_API_KEY])
        if not isinstance(payload, list) or not payload:
            return errors_reply([invalid_payload("The body must be a non-empty JSON array.")])
        return self._run(payload)

    # -- authentication --------------------------------------------------------------------

    def _authenticated(self, request: ProviderRequest, payload: Any) -> bool:
        # Either an `authentication` task as the first element, or the Bearer header.
        first = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(first, dict) and first.get("taskType") == AUTHENTICATION:
            return first.get("apiKey") == self.api_key
        return request.bearer_token() == self.api_key

    # -- task processing --------------------------------------------------------------------

    def _run(self, payload: list[Any]) -> Reply:
        checked: list[InferenceRequest | PollRequest] = []
        problems: list[RunwareError] = []
        submitted: set[str] = set()
        for index, task in enumerate(payload):
            try:
                item = _check_task(index, task)
            except InvalidTask as invalid:
                problems.append(invalid.error)
                continue
            if isinstance(item, InferenceRequest):
                if item.task_uuid in self.tasks or item.task_uuid in submitted:
                    problems.append(duplicate_task_uuid(item.task_uuid))
                submitted.add(item.task_uuid)
            if item is not None:
                checked.append(item)
        if problems:
            # inferred: a request with an invalid task creates nothing, so a client that fixes
            # its request can resend the same taskUUIDs.
            return errors_reply(problems)
        return self._execute(checked, payload)

    def _execute(self, checked: list[InferenceRequest | PollRequest], payload: list[Any]) -> Reply:
        original = [task for task in payload if task.get("taskType") != AUTHENTICATION]
        created: dict[str, RunwareTask] = {}
        for item in checked:
            if isinstance(item, InferenceRequest):
                try:
                    created[item.task_uuid] = self._create(item, original)
                except DuplicateTaskError:  # lost a race with a concurrent identical submit
                    return errors_reply([duplicate_task_uuid(item.task_uuid)])
        sync_tasks = [task for task in created.values() if task.details.request.delivery == "sync"]
        if sync_tasks:  # "Returns complete results directly in the API response." (model page)
            time.sleep(max(task.seconds_left() for task in sync_tasks))
        data: list[dict[str, Any]] = []
        errors: list[RunwareError] = []
        for item in checked:
            if isinstance(item, InferenceRequest):
                self._submission_result(created[item.task_uuid], data, errors)
            else:
                self._poll_result(item, data, errors)
        if errors and not data:
            return errors_reply(errors)
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = [error.to_json() for error in errors]
        return json_reply(200, body)

    def _create(self, request: InferenceRequest, original: list[Any]) -> RunwareTask:
        spec = ImageSpec(
            request.width, request.height, request.output_format, request.output_quality
        )
        # "Each result uses a different seed" (model page, numberResults).
        seeds = random.sample(_SEED_RANGE, request.number_results)
        mine = [task for task in original if task.get("taskUUID") == request.task_uuid]
        caption = caption_of(mine)
        store = self.context.images
        images = tuple(
            (store.issue(spec, self.provider_id, caption, index), seed)
            for index, seed in enumerate(seeds)
        )
        job = RunwareJob(request=request, original_tasks=original, images=images)
        task = self.tasks.create(
            request.task_uuid, self.context.settings.latency, self.claim_task_failure(), job
        )
        self.notify_when_done(request.webhook_url, task, lambda: self._webhook_bodies(task))
        if request.upload_endpoint:
            self.context.webhooks.schedule_upload(
                request.upload_endpoint, task.seconds_left(), lambda: self._uploads(task)
            )
        return task

    def _webhook_bodies(self, task: RunwareTask) -> list[dict[str, Any]]:
        """ "A webhook POST body is the flat task object itself ... with no data wrapper", and
        "each completed item triggers a separate webhook call" (runware.ai/docs/platform/
        webhooks). A failure: the per-item error object of getResponse (inferred)."""
        if task.phase() == "failed":
            return self._progress_items(task)
        return self._result_items(task, with_status=False)

    def _uploads(self, task: RunwareTask) -> list[tuple[bytes, str]]:
        if task.phase() == "failed":
            return []
        return [
            (encoded(image), CONTENT_TYPES[image.spec.format]) for image, _ in task.details.images
        ]

    def _submission_result(
        self, task: RunwareTask, data: list[dict[str, Any]], errors: list[RunwareError]
    ) -> None:
        if task.details.request.delivery == "async":
            # The ACK body is not documented; this is the SDK tests' fixture (inferred).
            data.append({"taskType": INFERENCE, "taskUUID": task.task_id})
        elif task.failure_message is not None:
            errors.append(failure_error(task))
        else:
            data.extend(self._result_items(task, with_status=False))

    def _poll_result(
        self, poll: PollRequest, data: list[dict[str, Any]], errors: list[RunwareError]
    ) -> None:
        task = self.tasks.get(poll.task_uuid)
        if task is None:
            # Not documented. Runware's SDK maps `taskFailedOrNotFound` to notFound, and the
            # errors page lists HTTP 404 "not found"; both are used here (inferred).
            errors.append(
                RunwareError(
                    "taskFailedOrNotFound",
                    f"No task found with taskUUID '{poll.task_uuid}'.",
                    parameter="taskUUID",
                    task_type=poll.task_type,
                    task_uuid=poll.task_uuid,
                    status=404,
                )
            )
        elif poll.task_type == GET_RESPONSE:
            data.extend(self._progress_items(task))
        else:
            data.append(
                {
                    "taskType": GET_TASK_DETAILS,
                    "taskUUID": task.task_id,
                    "request": task.details.original_tasks,
                    "response": self._recorded_response(task),
                }
            )

    def _progress_items(self, task: RunwareTask) -> list[dict[str, Any]]:
        """getResponse (task polling page): cumulative, one item per generation."""
        phase = task.phase()
        if phase == "failed":
            error = failure_error(task)
            return [
                {
                    "taskType": INFERENCE,
                    "taskUUID": task.task_id,
                    "status": "error",
                    "error": {"code": error.code, "message": error.message},
                }
            ]
        if phase == "succeeded":
            return self._result_items(task, with_status=True)
        # The current docs name only processing/success/error, so queued tasks also say
        # "processing" (task polling page); `progress` as in the SDK's progress frames.
        return [
            {
                "taskType": INFERENCE,
                "taskUUID": task.task_id,
                "status": "processing",
                "progress": task.progress_percent(),
            }
        ]

    def _recorded_response(self, task: RunwareTask) -> dict[str, Any]:
        """getTaskDetails' `response`: the task's own envelope (task details page). For a task still
        running, the documented shapes do not say; the current getResponse items are used."""
        phase = task.phase()
        if phase == "failed":
            return {"errors": [failure_error(task).to_json()]}
        if phase == "succeeded":
            return {"data": self._result_items(task, with_status=False)}
        return {"data": self._progress_items(task)}

    def _result_items(self, task: RunwareTask, with_status: bool) -> list[dict[str, Any]]:
        """Result items as in the model page's examples; getResponse adds status "success"."""
        request = task.details.request
        items: list[dict[str, Any]] = []
        for image, seed in task.details.images:
            item: dict[str, Any] = {"taskType": INFERENCE, "taskUUID": task.task_id}
            if with_status:
                item["status"] = "success"
            item["imageUUID"] = image.image_id
            item.update(self._image_output(image, request))
            item["seed"] = seed
            if request.ttl is not None:
                item["ttl"] = request.ttl  # inferred: the lifetime the request set, echoed
            if request.include_cost:
                charged = self.context.settings.cost_per_image
                item["cost"] = COST_PER_IMAGE if charged is None else charged
            items.append(item)
        return items

    def _image_output(self, image: IssuedImage, request: InferenceRequest) -> dict[str, str]:
        if request.output_type == "URL":
            return {"imageURL": self.context.images.url(image)}
        data = base64.b64encode(encoded(image)).decode("ascii")
        if request.output_type == "base64Data":
            return {"imageBase64Data": data}
        return {"imageDataURI": f"data:{CONTENT_TYPES[image.spec.format]};base64,{data}"}

    @staticmethod
    def _with_first_task(error: RunwareError, request: ProviderRequest) -> RunwareError:
        tasks = [t for t in _task_objects(request.body) if t.get("taskType") != AUTHENTICATION]
        if not tasks:
            return error
        task_type, task_uuid = tasks[0].get("taskType"), tasks[0].get("taskUUID")
        return RunwareError(
            error.code,
            error.message,
            task_type=task_type if isinstance(task_type, str) else None,
            task_uuid=task_uuid if isinstance(task_uuid, str) else None,
            status=error.status,
        )


def _check_task(index: int, task: Any) -> InferenceRequest | PollRequest | None:
    if not isinstance(task, dict):
        raise InvalidTask(invalid_payload("Every task must be a JSON object."))
    task_type = task.get("taskType")
    if task_type == AUTHENTICATION:
        if index != 0:
            raise InvalidTask(
                RunwareError(
                    "invalidAuthentication",
                    "The authentication task must be the first element of the array.",
                    task_type=AUTHENTICATION,
                )
            )
        validate_authentication(task)
        return None  # REST answers nothing for it (no item is documented; inferred)
    if task_type == INFERENCE:
        return validate_inference(task)
    if task_type in (GET_RESPONSE, GET_TASK_DETAILS):
        return validate_poll(task)
    if task_type is None:
        raise InvalidTask(
            RunwareError("missingTaskType", "Missing required parameter 'taskType'.", "taskType")
        )
    raise InvalidTask(
        RunwareError(
            "unsupportedTaskType",
            f"Task type '{task_type}' is not supported by this emulator.",
            parameter="taskType",
            allowed_values=[INFERENCE, GET_RESPONSE, GET_TASK_DETAILS, AUTHENTICATION],
        )
    )


def _task_objects(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    if not isinstance(payload, list):
        return []
    return [task for task in payload if isinstance(task, dict)]
