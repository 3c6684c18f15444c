"""Kling's native omni-image body and task object, per Kling's Omni-Image API reference
(https://kling.ai/document-api/api/image/o1/image-generation).

Shared by the official API (kling.py) and Comfy Router (comfy.py), which forwards the same
body to Kling and returns Kling's task object unchanged (Comfy Router docs,
https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from kling_cli.emulator.body_fields import Fields
from kling_cli.emulator.dimensions import Tier
from kling_cli.emulator.images import Caption, ImageSpec, ImageStore, IssuedImage
from kling_cli.emulator.provider_kit import (
    data_uri_payload,
    decode_base64,
    is_http_url,
    output_spec,
    reference_image_problem,
)
from kling_cli.emulator.tasks import Task, TaskPhase

MODEL_NAME = "kling-image-o1"
# API reference: the same route also serves Kling 3.0 Omni Image, which this emulator does not
# model.
MODEL_NAMES = (MODEL_NAME, "kling-v3-omni")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "auto")
# The shared schema lists 4k; kling-image-o1 refuses it (docs.comfy.org
# KlingOmniProImageNode).
RESOLUTIONS = ("1k", "2k", "4k")
O1_TIERS: dict[str, Tier] = {"1k": "1k", "2k": "2k"}
RESULT_TYPES = ("single", "series")
MAX_PROMPT_LENGTH = 2500
MAX_REFERENCES = 10  # image_list + element_list together (API reference)
MAX_IMAGES = 9

# The API reference's full field table.
KLING_FIELDS = frozenset(
    {
        "model_name",
        "prompt",
        "image_list",
        "element_list",
        "resolution",
        "n",
        "aspect_ratio",
        "result_type",
        "series_amount",
        "watermark_info",
        "callback_url",
        "external_task_id",
    }
)

_STATUS_BY_PHASE: dict[TaskPhase, str] = {
    "pending": "submitted",
    "processing": "processing",
    "succeeded": "succeed",  # sic: Kling spells it "succeed" (API reference)
    "failed": "failed",
}
# The share of the latency a task waits in "submitted" before "processing" (tasks.py).
_PENDING_SHARE = 1 / 3


class Refused(Exception):
    """The body fits the schema, but Kling refuses it for kling-image-o1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class KlingOrder:
    prompt: str
    n: int
    spec: ImageSpec
    external_task_id: str | None
    watermark: bool
    caption: Caption = Caption()  # noqa: RUF009 (frozen: one shared empty caption is safe)
    callback_url: str | None = None


@dataclass(frozen=True)
class KlingJob:
    order: KlingOrder
    images: tuple[IssuedImage, ...]
    watermarked: tuple[IssuedImage, ...]  # one per image when watermark_info.enabled


def read_order(
    payload: Any,
    allowed: Collection[str] = KLING_FIELDS,
    model_names: Sequence[str] = MODEL_NAMES,
) -> KlingOrder:
    """Check a submitted body. Raises body_fields.Invalid for schema problems and Refused
    for what kling-image-o1 itself does not do."""
    fields = Fields(payload, allowed)
    # inferred: unknown fields are refused (the schema's additionalProperties is not
    # documented); a client sending fal's `num_images` or a `negative_prompt`, which this
    # route does not have (API reference), then learns it instead of being silently ignored.
    prompt = fields.text("prompt", required=True, min_length=1, max_length=MAX_PROMPT_LENGTH)
    model_name = fields.choice("model_name", model_names, default=MODEL_NAME)
    image_values = _image_list(fields)
    element_count = _element_list(fields)
    if element_count and len(image_values) + element_count > MAX_REFERENCES:
        fields.add(
            ("image_list",),
            f"The sum of reference elements and reference images shall not exceed {MAX_REFERENCES}",
            "too_long",
            {"max_length": MAX_REFERENCES},
        )
    resolution = fields.choice("resolution", RESOLUTIONS, default="1k")
    n = fields.integer("n", default=1, ge=1, le=MAX_IMAGES)
    aspect_ratio = fields.choice("aspect_ratio", ASPECT_RATIOS, default="auto")
    result_type = fields.choice("result_type", RESULT_TYPES, default="single")
    fields.integer("series_amount", default=4, ge=2, le=MAX_IMAGES)
    watermark = _watermark(fields)
    callback_url = fields.text("callback_url")
    if callback_url is not None and not is_http_url(callback_url):
        fields.add(("callback_url",), "Input should be a valid URL", "url_parsing")
    external_task_id = fields.text("external_task_id", min_length=1)
    fields.finish()

    if model_name != MODEL_NAME:
        raise Refused(f"model_name {model_name} is not emulated; use {MODEL_NAME}")
    if resolution not in O1_TIERS:
        raise Refused(f"{MODEL_NAME} does not support {resolution} resolution")
    if result_type == "series":
        raise Refused(f"{MODEL_NAME} does not support series generation")
    for index, value in enumerate(image_values):
        problem = _image_value_problem(value)
        if problem is not None:
            raise Refused(f"image_list[{index}].image: {problem}")
    spec = output_spec(O1_TIERS[resolution], aspect_ratio)  # PNG: the documented URLs end .png
    assert prompt is not None  # required: a missing prompt raised above
    caption = Caption(prompt, aspect_ratio or "", resolution or "")
    return KlingOrder(prompt, n, spec, external_task_id, watermark, caption, callback_url)


def _image_list(fields: Fields) -> list[str]:
    values: list[str] = []
    for index, item in enumerate(fields.items("image_list", max_items=MAX_REFERENCES)):
        if not isinstance(item, dict):
            fields.add(("image_list", index), "Input should be a valid dictionary", "dict_type")
            continue
        item_fields = Fields(item, {"image"}, ("image_list", index))
        image = item_fields.text("image", required=True, min_length=1)
        fields.problems.extend(item_fields.problems)
        if image:
            values.append(image)
    return values


def _element_list(fields: Fields) -> int:
    elements = fields.items("element_list", max_items=MAX_REFERENCES)
    for index, item in enumerate(elements):
        if not isinstance(item, dict):
            fields.add(("element_list", index), "Input should be a valid dictionary", "dict_type")
            continue
        item_fields = Fields(item, {"element_id"}, ("element_list", index))
        if item.get("element_id") is None:
            item_fields.add(("element_id",), "Field required", "missing")
        else:
            # Any int64 is accepted: the emulator has no element library (inferred).
            item_fields.integer("element_id", default=0, ge=0, le=2**63 - 1)
        fields.problems.extend(item_fields.problems)
    return len(elements)


def _watermark(fields: Fields) -> bool:
    value = fields.raw("watermark_info")
    if value is None:
        return False
    watermark_fields = Fields(value, {"enabled"}, ("watermark_info",))
    enabled = watermark_fields.boolean("enabled", default=False)
    fields.problems.extend(watermark_fields.problems)
    return enabled


def _image_value_problem(value: str) -> str | None:
    """API reference and general docs (inference-sh/grid 00-general.md): a public http(s) URL, or
    raw Base64 without a `data:` prefix."""
    if is_http_url(value):
        return None  # not fetched: the emulator makes no outbound calls
    if data_uri_payload(value) is not None or value.startswith("data:"):
        return "Base64 image data must not carry a data: prefix"
    content = decode_base64(value)
    if content is None:
        return "must be an http(s) URL or Base64-encoded image data"
    return reference_image_problem(content)


# -- the task object -------------------------------------------------------------------------


def new_task_id() -> str:
    """Numeric like the documented "845392817361236048" (API reference)."""
    return str(random.randrange(10**17, 10**18))


def envelope(data: Any) -> dict[str, Any]:
    """The success envelope (API reference): check `code`, not only the HTTP status."""
    return {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}


def task_info(task: Task[KlingJob]) -> dict[str, Any]:
    external = task.details.order.external_task_id
    return {"external_task_id": external} if external is not None else {}


def created_at_ms(task: Task[KlingJob]) -> int:
    return int(task.created_wall * 1000)


def submitted_data(task: Task[KlingJob]) -> dict[str, Any]:
    """The `data` of the submit answer (API reference)."""
    created = created_at_ms(task)
    return {
        "task_id": task.task_id,
        "task_info": task_info(task),
        "task_status": "submitted",
        "created_at": created,
        "updated_at": created,
    }


def task_data(task: Task[KlingJob], store: ImageStore) -> dict[str, Any]:
    """The `data` of a query answer (API reference), in the task's current state."""
    phase = task.phase()
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": _STATUS_BY_PHASE[phase],
        "task_status_msg": "",
    }
    if task.details.order.watermark:
        data["watermark_info"] = {"enabled": True}
    data["task_info"] = task_info(task)
    if phase == "succeeded":
        images: list[dict[str, Any]] = []
        for index, image in enumerate(task.details.images):
            item: dict[str, Any] = {"index": index, "url": store.url(image)}
            if task.details.watermarked:
                item["watermark_url"] = store.url(task.details.watermarked[index])
            images.append(item)
        data["task_result"] = {"result_type": "single", "images": images}
        # Units charged, a string (API reference); the per-image rate is not documented
        # (inferred: 1).
        data["final_unit_deduction"] = str(len(images))
    elif phase == "failed":
        data["task_status_msg"] = task.failure_message or ""
        data["task_result"] = {}
    data["created_at"] = created_at_ms(task)
    data["updated_at"] = _updated_at_ms(task, phase)
    return data


def _updated_at_ms(task: Task[KlingJob], phase: TaskPhase) -> int:
    """The time of the last status change, from the same timeline the task follows."""
    changed = {
        "pending": 0.0,
        "processing": task.latency * _PENDING_SHARE,
        "succeeded": task.latency,
        "failed": task.latency,
    }[phase]
    return int((task.created_wall + changed) * 1000)
