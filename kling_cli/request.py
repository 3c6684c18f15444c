"""The provider-neutral generation request, validated against the documented limits in
`kling_cli.limits` with one clear sentence per mistake."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from kling_cli import delivery
from kling_cli.errors import InvalidRequestError
from kling_cli.limits import (
    ASPECT_RATIOS,
    IMAGE_TOKEN,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    MIN_IMAGES,
    MODES,
    OUTPUT_DIMENSIONS,
    OUTPUT_FORMATS,
    RESOLUTIONS,
    AspectRatio,
    Mode,
    OutputFormat,
    Resolution,
)


def _quoted_choices(choices: tuple[str, ...]) -> str:
    return ", ".join(choices)


# Characters that draw nothing: a prompt made only of them describes no image. Beyond
# whitespace and format characters (zero-width spaces, joiners, marks), the fillers some
# scripts and Braille have for a blank.
BLANK_CHARACTERS = frozenset("\u115f\u1160\u2800\u3164\uffa0") | {
    chr(c) for c in range(0xFE00, 0xFE10)
}
# Line breaks and tabs are ordinary in a long prompt; every other control character is not.
PROMPT_CONTROLS_ALLOWED = frozenset("\t\n\r")
BOM = "\ufeff"


def _is_blank(char: str) -> bool:
    return (
        char.isspace()
        or char in BLANK_CHARACTERS
        or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")
    )


def _control_character(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """How to name the first control character in `text` for the user, or None."""
    for position, char in enumerate(text, start=1):
        if char not in allowed and unicodedata.category(char) == "Cc":
            return f"a control character (U+{ord(char):04X}) at position {position}"
    return None


def _check_text(value: Any, what: str) -> Any:
    """A prompt's shared checks: no control characters, something visible, the length."""
    if not isinstance(value, str):
        raise ValueError(f"The {what} is empty; describe the image you want.")
    value = value.removeprefix(BOM)
    if all(_is_blank(char) for char in value):
        raise ValueError(
            f"The {what} is empty"
            + (" once invisible characters are removed" if value.strip() else "")
            + "; describe the image you want."
        )
    control = _control_character(value, PROMPT_CONTROLS_ALLOWED)
    if control:
        raise ValueError(
            f"The {what} contains {control}; only visible text, spaces, tabs and line "
            "breaks are allowed."
        )
    return value


class GenerationRequest(BaseModel):
    """One generation as the user asked for it, before any provider translates it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    references: tuple[str, ...] = ()
    aspect_ratio: AspectRatio = "1:1"
    resolution: Resolution = "1k"
    num_images: int = 1
    output_format: OutputFormat | None = None
    negative_prompt: str | None = None
    mode: Mode = "default"
    # Delivery options (kling_cli.delivery); None: the provider's default.
    webhook: str | None = None
    quality: int | None = None
    upload_to: str | None = None
    safety: str | None = None
    url_ttl: int | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return delivery.dump_delivery(handler(self))

    @field_validator("webhook", mode="before")
    @classmethod
    def _check_webhook(cls, value: Any) -> Any:
        return delivery.check_webhook(value)

    @field_validator("upload_to", mode="before")
    @classmethod
    def _check_upload_to(cls, value: Any) -> Any:
        return delivery.check_delivery_url(value, "--upload-to")

    @field_validator("quality", mode="before")
    @classmethod
    def _check_quality(cls, value: Any) -> Any:
        return delivery.check_quality(value)

    @field_validator("url_ttl", mode="before")
    @classmethod
    def _check_url_ttl(cls, value: Any) -> Any:
        return delivery.check_url_ttl(value)

    @field_validator("safety", mode="before")
    @classmethod
    def _check_safety(cls, value: Any) -> Any:
        return delivery.check_safety(value)

    @model_validator(mode="after")
    def _check_one_upload(self) -> GenerationRequest:
        delivery.check_one_upload(self.upload_to, self.num_images)
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_aspect_ratio(cls, data: Any) -> Any:
        # With references, let the model follow them (`auto`, the documented default); without,
        # a square is the one choice every provider accepts.
        if isinstance(data, dict) and data.get("aspect_ratio") is None:
            data = {**data, "aspect_ratio": "auto" if data.get("references") else "1:1"}
        return data

    @field_validator("prompt", mode="before")
    @classmethod
    def _check_prompt(cls, value: Any) -> Any:
        value = _check_text(value, "prompt")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(
                f"The prompt is {len(value)} characters long; "
                f"Kling Image O1 accepts at most {MAX_PROMPT_CHARS}."
            )
        return value

    @field_validator("references", mode="before")
    @classmethod
    def _check_references(cls, value: Any) -> Any:
        refs = list(value or ())
        if len(refs) > MAX_REFERENCES:
            raise ValueError(
                f"{len(refs)} reference images given; Kling Image O1 accepts at most "
                f"{MAX_REFERENCES}."
            )
        for ref in refs:
            check_reference_url(ref)
        return tuple(refs)

    @field_validator("aspect_ratio", mode="before")
    @classmethod
    def _check_aspect_ratio(cls, value: Any) -> Any:
        if value not in ASPECT_RATIOS:
            raise ValueError(
                f"Aspect ratio {value!r} is not supported; use one of "
                f"{_quoted_choices(ASPECT_RATIOS)}."
            )
        return value

    @field_validator("resolution", mode="before")
    @classmethod
    def _check_resolution(cls, value: Any) -> Any:
        normalized = value.lower() if isinstance(value, str) else value
        if normalized not in RESOLUTIONS:
            raise ValueError(
                f"Resolution {value!r} is not supported; use {_quoted_choices(RESOLUTIONS)}."
            )
        return normalized

    @field_validator("num_images", mode="before")
    @classmethod
    def _check_num_images(cls, value: Any) -> Any:
        if not isinstance(value, int) or not MIN_IMAGES <= value <= MAX_IMAGES:
            raise ValueError(
                f"Number of images {value!r} is out of range; ask for {MIN_IMAGES} to {MAX_IMAGES}."
            )
        return value

    @field_validator("output_format", mode="before")
    @classmethod
    def _check_output_format(cls, value: Any) -> Any:
        normalized = value.lower() if isinstance(value, str) else value
        if normalized == "jpg":
            normalized = "jpeg"
        if normalized is not None and normalized not in OUTPUT_FORMATS:
            raise ValueError(
                f"Output format {value!r} is not supported; use {_quoted_choices(OUTPUT_FORMATS)}."
            )
        return normalized

    @field_validator("negative_prompt", mode="before")
    @classmethod
    def _check_negative_prompt(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and all(_is_blank(c) for c in value)):
            return None
        value = _check_text(value, "negative prompt")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(
                f"The negative prompt is {len(value)} characters long; "
                f"at most {MAX_PROMPT_CHARS} are accepted."
            )
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, value: Any) -> Any:
        if value not in MODES:
            raise ValueError(f"Mode {value!r} is not supported; use {_quoted_choices(MODES)}.")
        return value

    @model_validator(mode="after")
    def _check_image_tokens(self) -> GenerationRequest:
        delivery.check_quality_format(self.quality, self.output_format)
        count = len(self.references)
        written = IMAGE_TOKEN.findall(self.prompt)
        padded = next((n for n in written if n.startswith("0")), None)
        if padded is not None:
            raise ValueError(
                f"The prompt names @image_{padded}; write references without leading zeros, "
                f"as @image_1 to @image_{MAX_REFERENCES}."
            )
        for number in sorted({int(n) for n in written}):
            if not 1 <= number <= count:
                given = (
                    "no reference images were given"
                    if count == 0
                    else f"only {count} reference image{'s were' if count > 1 else ' was'} given"
                )
                raise ValueError(
                    f"The prompt mentions @image_{number} but {given}; "
                    "add references with --ref or fix the number."
                )
        return self

    def split(self, images_per_task: int) -> list[GenerationRequest]:
        """The same request as several tasks of at most `images_per_task` images each, for
        providers that make fewer images per task than asked for."""
        counts = [images_per_task] * (self.num_images // images_per_task)
        if self.num_images % images_per_task:
            counts.append(self.num_images % images_per_task)
        return [self.model_copy(update={"num_images": count}) for count in counts]

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """The documented output size, or None for `auto` (it follows the references)."""
        return OUTPUT_DIMENSIONS.get((self.resolution, self.aspect_ratio))


def check_reference_url(ref: Any) -> None:
    """An http(s) URL, or a local JPEG/PNG within the documented limits."""
    if not isinstance(ref, str) or not ref:
        raise ValueError("A reference image is empty; pass an http(s) URL or a file.")
    control = _control_character(ref)
    if control:
        raise ValueError(f"Reference {ref!r} contains {control}; remove it.")
    from kling_cli.references import inspect_local_reference, is_local

    if is_local(ref):
        inspect_local_reference(ref)
        return
    parts = urlsplit(ref)
    if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in ref):
        return
    raise ValueError(f"Reference {ref!r} is not a valid http(s) URL.")


def build_request(*, fit_option: bool = False, **fields: Any) -> GenerationRequest:
    """Build a request, turning pydantic's errors into one sentence for the user. With
    `fit_option` (the caller has a --fit), a reference --fit would fix says so."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as exc:
        from kling_cli.references import ReferenceLimitError

        cause = exc.errors(include_url=False)[0].get("ctx", {}).get("error")
        if fit_option and isinstance(cause, ReferenceLimitError):
            raise InvalidRequestError(cause.suggesting_fit()) from None
        raise InvalidRequestError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    message = str(first.get("msg", "invalid value"))
    prefix = "Value error, "
    if message.startswith(prefix):
        return message[len(prefix) :]
    field = ".".join(str(part) for part in first.get("loc", ()))
    return f"Invalid value for {field or 'the request'}: {message}."
