"""Validation of a fal submit body for `fal-ai/kling-image/o1`, from the model API page
(https://fal.ai/models/fal-ai/kling-image/o1/api; schema in @fal-ai/client 1.10.1
`src/types/endpoints.d.ts`): the problems it finds are FastAPI-style `{"loc", "msg", "type"}`
(fal's "Model Errors" docs).
"""

from __future__ import annotations

from typing import Any

from kling_cli.emulator.body_fields import Fields
from kling_cli.emulator.dimensions import Tier
from kling_cli.emulator.images import ImageFormat, ImageSpec
from kling_cli.emulator.provider_kit import data_uri_payload, is_http_url, output_spec

# The model page; @fal-ai/client KlingImageO1Input.
INPUT_FIELDS = frozenset(
    {
        "prompt",
        "image_urls",
        "elements",
        "num_images",
        "aspect_ratio",
        "resolution",
        "output_format",
        "sync_mode",
    }
)
ELEMENT_FIELDS = frozenset({"frontal_image_url", "reference_image_urls"})
ASPECT_RATIOS = ("auto", "16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
RESOLUTIONS: dict[str, Tier] = {"1K": "1k", "2K": "2k"}
OUTPUT_FORMATS: dict[str, ImageFormat] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MAX_PROMPT_LENGTH = 2500
MAX_REFERENCES = 10  # image_urls, and images + elements together
MAX_ELEMENT_REFERENCES = 3
MAX_IMAGES = 9


def validated(payload: Any) -> tuple[ImageSpec, int, bool]:
    fields = Fields(payload, INPUT_FIELDS)
    # inferred (undocumented): unknown fields are refused, so that a mistyped
    # field is not silently dropped
    fields.text("prompt", required=True, max_length=MAX_PROMPT_LENGTH)
    # image_urls is required on this endpoint (model page); an empty list is refused (inferred).
    image_urls = fields.items("image_urls", required=True, min_items=1, max_items=MAX_REFERENCES)
    for index, url in enumerate(image_urls):
        _check_file_url(fields, ("image_urls", index), url)
    elements = fields.items("elements", max_items=MAX_REFERENCES)
    for index, element in enumerate(elements):
        _check_element(fields, index, element)
    if elements and len(image_urls) + len(elements) > MAX_REFERENCES:
        fields.add(
            ("elements",),
            f"Total number of elements and images must not exceed {MAX_REFERENCES}",
            "too_long",
            {"max_length": MAX_REFERENCES},
        )
    count = fields.integer("num_images", default=1, ge=1, le=MAX_IMAGES)
    aspect_ratio = fields.choice("aspect_ratio", ASPECT_RATIOS, default="auto")
    resolution = fields.choice("resolution", tuple(RESOLUTIONS), default="1K")
    output_format = fields.choice("output_format", tuple(OUTPUT_FORMATS), default="png")
    sync_mode = fields.boolean("sync_mode", default=False)
    fields.finish()
    spec = output_spec(RESOLUTIONS[resolution], aspect_ratio, OUTPUT_FORMATS[output_format])
    return spec, count, sync_mode


def _check_file_url(fields: Fields, loc: tuple[str | int, ...], value: Any) -> None:
    # URLs, or base64 data URIs, which fal models accept as file inputs (fal CDN
    # docs; inferred here).
    if isinstance(value, str) and (is_http_url(value) or data_uri_payload(value) is not None):
        return
    fields.add(loc, "Input should be a valid URL", "url_parsing")


def _check_element(fields: Fields, index: int, element: Any) -> None:
    element_fields = Fields(element, ELEMENT_FIELDS, ("elements", index))
    if element_fields.has("frontal_image_url"):
        _check_file_url(
            element_fields, ("frontal_image_url",), element_fields.raw("frontal_image_url")
        )
    references = element_fields.items("reference_image_urls", max_items=MAX_ELEMENT_REFERENCES)
    for position, url in enumerate(references):
        _check_file_url(element_fields, ("reference_image_urls", position), url)
    fields.problems.extend(element_fields.problems)
