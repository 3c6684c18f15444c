"""Runware request validation, from the Kling IMAGE O1 model page
(https://runware.ai/docs/models/klingai-image-o1), the errors page
(https://runware.ai/docs/platform/errors) and the official SDK (PyPI runware-sdk 1.8.0).

Runware documents its error envelope (`errors[]` items with code, message, parameter, taskType,
taskUUID; errors page) but not the code strings of individual validation failures. The codes below
are inferred: `missing…`, `invalid…`, `unknownParameter`, `incompatibleParameters` and
`duplicate…` are the families Runware's own SDK classifies as validation errors
(runware-sdk `derive_code`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from kling_cli.emulator.dimensions import PIXELS, SUPPORTED_SIZES, Tier, pixels
from kling_cli.emulator.images import ImageFormat

MODEL_ID = "klingai:kling-image@o1"
INFERENCE = "imageInference"
GET_RESPONSE = "getResponse"
GET_TASK_DETAILS = "getTaskDetails"
AUTHENTICATION = "authentication"

DeliveryMethod = Literal["sync", "async"]
OutputType = Literal["URL", "base64Data", "dataURI"]

PROMPT_LENGTH = (3, 2500)
MAX_REFERENCE_IMAGES = 10  # an older Runware image-inference doc
NUMBER_RESULTS = (1, 20)
OUTPUT_QUALITY = (20, 99)
MIN_TTL = 60
OUTPUT_TYPES: dict[str, OutputType] = {
    "URL": "URL",
    "base64Data": "base64Data",
    "dataURI": "dataURI",
}
OUTPUT_FORMATS: dict[str, ImageFormat] = {"JPG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
DELIVERY_METHODS: dict[str, DeliveryMethod] = {"sync": "sync", "async": "async"}
# The model page lists `1k`/`2k`; Runware's SDK types the field `'1K'|'2K'`. The live
# casing is unknown, so both are accepted.
RESOLUTIONS: dict[str, Tier] = {"1k": "1k", "2k": "2k", "1K": "1k", "2K": "2k"}
# Not documented: the tier used when references are given without width, height or resolution.
DEFAULT_TIER: Tier = "1k"

_INFERENCE_FIELDS = frozenset(
    {
        "taskType",
        "taskUUID",
        "model",
        "positivePrompt",
        "width",
        "height",
        "resolution",
        "inputs",
        "numberResults",
        "outputType",
        "outputFormat",
        "outputQuality",
        "deliveryMethod",
        "webhookURL",
        "uploadEndpoint",
        "includeCost",
        "ttl",
        "safety",
        # In the official SDK's generated type for this model, semantics undocumented.
        "routing",
        "advancedFeatures",
    }
)
_POLL_FIELDS = frozenset({"taskType", "taskUUID"})
_AUTHENTICATION_FIELDS = frozenset({"taskType", "apiKey", "connectionSessionUUID"})
_SAFETY_MODES = ("none", "fast")
_UUID_V4 = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I
)


@dataclass(frozen=True)
class RunwareError:
    code: str
    message: str
    parameter: str | list[str] | None = None
    task_type: str | None = None
    task_uuid: str | None = None
    allowed_values: list[Any] | None = None
    status: int = 400

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        if self.allowed_values is not None:
            body["allowedValues"] = self.allowed_values
        if self.task_type is not None:
            body["taskType"] = self.task_type
        if self.task_uuid is not None:
            body["taskUUID"] = self.task_uuid
        return body


class InvalidTask(Exception):
    def __init__(self, error: RunwareError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class InferenceRequest:
    task_uuid: str
    width: int
    height: int
    number_results: int
    output_type: OutputType
    output_format: ImageFormat
    include_cost: bool
    delivery: DeliveryMethod
    output_quality: int | None = None
    webhook_url: str | None = None
    upload_endpoint: str | None = None
    ttl: int | None = None
    check_content: bool = False


@dataclass(frozen=True)
class PollRequest:
    task_type: str  # getResponse or getTaskDetails
    task_uuid: str


class _TaskChecker:
    """Checks one task object; every failure raises InvalidTask with the task's identity."""

    def __init__(self, task: dict[str, Any], task_type: str) -> None:
        self.task = task
        self.task_type = task_type
        uuid = task.get("taskUUID")
        self.task_uuid = uuid if isinstance(uuid, str) else None

    def fail(self, code: str, message: str, **extra: Any) -> InvalidTask:
        error = RunwareError(
            code, message, task_type=self.task_type, task_uuid=self.task_uuid, **extra
        )
        return InvalidTask(error)

    def only_fields(self, allowed: Collection[str], scope: dict[str, Any], prefix: str) -> None:
        for name in scope:
            if name not in allowed:
                raise self.fail(
                    "unknownParameter",
                    f"Unknown parameter '{prefix}{name}' for task type '{self.task_type}'.",
                    parameter=f"{prefix}{name}",
                )

    def task_uuid_v4(self) -> str:
        if "taskUUID" not in self.task:
            raise self.fail(
                "missingTaskUUID", "Missing required parameter 'taskUUID'.", parameter="taskUUID"
            )
        if self.task_uuid is None or not _UUID_V4.match(self.task_uuid):
            raise self.fail(
                "invalidTaskUUID", "'taskUUID' must be a UUID v4 string.", parameter="taskUUID"
            )
        return self.task_uuid

    def string(self, name: str, length: tuple[int, int] | None = None) -> str | None:
        value = self.task.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(_code("invalid", name), f"'{name}' must be a string.", parameter=name)
        if length is not None and not length[0] <= len(value) <= length[1]:
            raise self.fail(
                _code("invalid", name),
                f"'{name}' must be between {length[0]} and {length[1]} characters long.",
                parameter=name,
            )
        return value

    def required_string(self, name: str, length: tuple[int, int] | None = None) -> str:
        value = self.string(name, length)
        if value is None:
            raise self.fail(
                _code("missing", name), f"Missing required parameter '{name}'.", parameter=name
            )
        return value

    def integer(self, name: str, low: int | None = None, high: int | None = None) -> int | None:
        value = self.task.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(_code("invalid", name), f"'{name}' must be an integer.", parameter=name)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise self.fail(_code("invalid", name), f"'{name}' must be {bounds}.", parameter=name)
        return value

    def boolean(self, name: str, scope: dict[str, Any] | None = None, prefix: str = "") -> bool:
        value = (self.task if scope is None else scope).get(name, False)
        if not isinstance(value, bool):
            raise self.fail(
                _code("invalid", prefix + name),
                f"'{prefix}{name}' must be a boolean.",
                parameter=prefix + name,
            )
        return value

    def choice(
        self,
        name: str,
        allowed: Collection[str],
        scope: dict[str, Any] | None = None,
        prefix: str = "",
    ) -> str | None:
        value = (self.task if scope is None else scope).get(name)
        if value is None:
            return None
        if value not in allowed:
            raise self.fail(
                _code("invalid", prefix + name),
                f"Invalid value for '{prefix}{name}'. Allowed values: {', '.join(allowed)}.",
                parameter=prefix + name,
                allowed_values=list(allowed),
            )
        return str(value)

    def uri(self, name: str) -> None:
        value = self.string(name)
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise self.fail(_code("invalid", name), f"'{name}' must be a URI.", parameter=name)

    def object(self, name: str) -> dict[str, Any]:
        value = self.task.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(_code("invalid", name), f"'{name}' must be an object.", parameter=name)
        return value


def _code(prefix: str, parameter: str) -> str:
    return prefix + "".join(part[:1].upper() + part[1:] for part in parameter.split("."))


def validate_authentication(task: dict[str, Any]) -> None:
    checker = _TaskChecker(task, AUTHENTICATION)
    checker.only_fields(_AUTHENTICATION_FIELDS, task, "")
    checker.required_string("apiKey")


def validate_poll(task: dict[str, Any]) -> PollRequest:
    checker = _TaskChecker(task, str(task["taskType"]))
    checker.only_fields(_POLL_FIELDS, task, "")
    return PollRequest(task_type=checker.task_type, task_uuid=checker.task_uuid_v4())


def validate_inference(task: dict[str, Any]) -> InferenceRequest:
    checker = _TaskChecker(task, INFERENCE)
    task_uuid = checker.task_uuid_v4()
    checker.only_fields(_INFERENCE_FIELDS, task, "")
    model = checker.required_string("model")
    if model != MODEL_ID:
        raise checker.fail(
            "invalidModel",
            f"Model '{model}' is not supported; this emulator serves '{MODEL_ID}' only.",
            parameter="model",
            allowed_values=[MODEL_ID],
        )
    checker.required_string("positivePrompt", PROMPT_LENGTH)
    width, height = _dimensions(checker)
    number_results = checker.integer("numberResults", *NUMBER_RESULTS) or 1
    # Defaults as documented on the model page: URL, JPG and sync.
    output_type = OUTPUT_TYPES[checker.choice("outputType", OUTPUT_TYPES) or "URL"]
    output_format = OUTPUT_FORMATS[checker.choice("outputFormat", OUTPUT_FORMATS) or "JPG"]
    output_quality = checker.integer("outputQuality", *OUTPUT_QUALITY)
    delivery = DELIVERY_METHODS[checker.choice("deliveryMethod", DELIVERY_METHODS) or "sync"]
    include_cost = checker.boolean("includeCost")
    checker.uri("webhookURL")
    checker.uri("uploadEndpoint")
    # Validated and answered with (`ttl` on each item, inferred); issued URLs never expire.
    ttl = checker.integer("ttl", MIN_TTL)
    check_content = _safety(checker)
    checker.object("routing")
    checker.object("advancedFeatures")
    return InferenceRequest(
        task_uuid=task_uuid,
        width=width,
        height=height,
        number_results=number_results,
        output_type=output_type,
        output_format=output_format,
        include_cost=include_cost,
        delivery=delivery,
        output_quality=output_quality,
        webhook_url=checker.string("webhookURL"),
        upload_endpoint=checker.string("uploadEndpoint"),
        ttl=ttl,
        check_content=check_content,
    )


def _dimensions(checker: _TaskChecker) -> tuple[int, int]:
    """The model page's "Compatibility & Validation" plus the dimension table."""
    width = checker.integer("width")
    height = checker.integer("height")
    resolution = checker.choice("resolution", RESOLUTIONS)
    references = _reference_images(checker)
    if width is None and height is not None:
        raise checker.fail(
            "missingWidth", "'width' and 'height' must be used together.", parameter="width"
        )
    if width is not None and height is None:
        raise checker.fail(
            "missingHeight", "'width' and 'height' must be used together.", parameter="height"
        )
    if resolution is not None and width is not None:
        raise checker.fail(
            "incompatibleParameters",
            "'resolution' cannot be used with 'width'/'height'.",
            parameter=["resolution", "width", "height"],
        )
    if width is not None and height is not None:
        if (width, height) not in SUPPORTED_SIZES:
            raise checker.fail(
                "invalidDimensions",
                f"Unsupported dimensions {width}x{height} for model '{MODEL_ID}'.",
                parameter=["width", "height"],
                allowed_values=[f"{w}x{h}" for w, h in PIXELS.values()],
            )
        return width, height
    if not references:
        raise checker.fail(
            "missingDimensions",
            "Either provide 'inputs.referenceImages', or specify 'width'/'height'.",
            parameter=["width", "height", "inputs.referenceImages"],
        )
    # The real service matches the first reference's aspect ratio at the requested tier
    # (model page). The emulator does not fetch references, so it answers with the tier's 1:1 size.
    return pixels(RESOLUTIONS[resolution] if resolution else DEFAULT_TIER, "1:1")


def _reference_images(checker: _TaskChecker) -> list[str]:
    inputs = checker.object("inputs")
    checker.only_fields({"referenceImages"}, inputs, "inputs.")
    references = inputs.get("referenceImages", [])
    parameter = "inputs.referenceImages"
    if not isinstance(references, list) or not all(
        isinstance(reference, str) and reference for reference in references
    ):
        raise checker.fail(
            "invalidReferenceImages",
            f"'{parameter}' must be an array of non-empty strings (UUID, URL, data URI or base64).",
            parameter=parameter,
        )
    if len(references) > MAX_REFERENCE_IMAGES:
        raise checker.fail(
            "invalidReferenceImages",
            f"'{parameter}' accepts at most {MAX_REFERENCE_IMAGES} images.",
            parameter=parameter,
        )
    return references


def _safety(checker: _TaskChecker) -> bool:
    """Whether the task asks for the content check."""
    safety = checker.object("safety")
    checker.only_fields({"checkContent", "mode"}, safety, "safety.")
    check = checker.boolean("checkContent", safety, "safety.")
    mode = checker.choice("mode", _SAFETY_MODES, safety, "safety.")
    return check or mode not in (None, "none")
