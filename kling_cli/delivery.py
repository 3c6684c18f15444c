"""The request's delivery options: where the provider reports (a webhook) or puts (an upload
URL) the finished images, how it encodes them (quality), how long its URL lives (ttl), and
its content check (safety). Checked here, before any network call; each provider says in
its `Capabilities` which it takes, and its adapter sends them in its documented fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from kling_cli.urls import is_loopback

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobOptions

# The request fields, in the order `kling providers show` lists them.
DELIVERY_FIELDS = ("webhook", "quality", "upload_to", "safety", "url_ttl")
# The options the user types, for messages.
OPTION_NAMES = {
    "webhook": "--webhook",
    "quality": "--quality",
    "upload_to": "--upload-to",
    "safety": "--safety",
    "url_ttl": "--url-ttl",
}
# Runware's outputQuality range and default (runware.ai/docs/models/klingai-image-o1).
MIN_QUALITY, MAX_QUALITY = 20, 99
LOSSY_FORMATS = ("jpeg", "webp")
# Runware's `ttl` "min 60 s" (the same page). It names no maximum: a signed 32-bit count of
# seconds (68 years) is the widest an integer field is sure to take (inferred), and keeps the
# sidecar's expiry date on the calendar.
MIN_URL_TTL, MAX_URL_TTL = 60, 2**31 - 1
SAFETY_MODES = ("fast",)
# Ours, not a provider's: no provider that takes a webhook documents a longest URL
# (runware.ai/docs/platform/webhooks, docs.unifically.com/api-reference/callbacks,
# inference.sh/docs/api/running-apps, fal's "Webhooks", wavespeed.ai/docs/how-to-use-webhooks,
# Kling's callback protocol). 2,048 characters is the limit URLs commonly meet (browsers,
# CDNs, other APIs' URL inputs): a longer one may be cut or refused where the provider
# stores or calls it, and the job would end unheard.
MAX_WEBHOOK_LENGTH = 2048


def delivery_fields(**options: Any) -> dict[str, Any]:
    """The request fields of the delivery options given (None: not given)."""
    return {name: value for name, value in options.items() if value is not None}


def upload_options(options: JobOptions, upload_to: str | None, download: bool) -> JobOptions:
    """--upload-to: the provider delivers the images, so they are saved here only with
    --download (which means nothing without it)."""
    import dataclasses

    from kling_cli.errors import InvalidRequestError

    if download and not upload_to:
        raise InvalidRequestError(
            "--download only applies with --upload-to; images are saved here by default."
        )
    return dataclasses.replace(options, save=download)


def check_webhook(value: Any) -> Any:
    """`check_delivery_url`, and no longer than MAX_WEBHOOK_LENGTH."""
    if isinstance(value, str) and len(value) > MAX_WEBHOOK_LENGTH:
        raise ValueError(
            f"--webhook {_shown(value)!r} is {len(value):,} characters long; a webhook URL "
            f"may be at most {MAX_WEBHOOK_LENGTH:,}."
        )
    return check_delivery_url(value, "--webhook")


def check_delivery_url(value: Any, option: str) -> Any:
    """An https URL with a host; plain http only to this machine (a receiver in a test). No
    control or format characters: they reach the provider as another URL than the one the
    journal shows. The refusal names the URL as `recorded_url` does, since the user part and
    query often carry a password or token."""
    if value is None:
        return None
    text = value if isinstance(value, str) else ""
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        host = ""
    secure = parts.scheme == "https" and bool(host)
    local = parts.scheme == "http" and is_loopback(host)
    if not (secure or local) or not _printable(text):
        raise ValueError(
            f"{option} {_shown(value)!r} is not an https:// URL; only https is allowed "
            "(plain http only to localhost)."
        )
    return text


def _printable(text: str) -> bool:
    """No space, control (C0, DEL, C1) or format character (a bidi override)."""
    return all(char.isprintable() and not char.isspace() for char in text)


def _shown(value: Any) -> str:
    """A refused URL as an error may quote it: without credentials and query, short."""
    if not isinstance(value, str):
        return str(value)[:100]
    try:
        shown = recorded_url(value) if urlsplit(value).netloc else value.split("?", 1)[0]
    except ValueError:
        shown = value.split("@")[-1].split("?", 1)[0]
    shown = "".join(char if char.isprintable() else "?" for char in shown)
    return shown if len(shown) <= 100 else f"{shown[:99]}…"


def check_quality(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"--quality {value!r} is not a whole number; use {MIN_QUALITY} to 99.")
    if not MIN_QUALITY <= value <= MAX_QUALITY:
        raise ValueError(
            f"--quality {value} is out of range; JPEG/WebP quality is {MIN_QUALITY} to "
            f"{MAX_QUALITY}."
        )
    return value


def check_url_ttl(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_URL_TTL:
        raise ValueError(
            f"--url-ttl {value!r} is too short; the result URL must live at least "
            f"{MIN_URL_TTL} seconds."
        )
    if value > MAX_URL_TTL:
        raise ValueError(
            f"--url-ttl {value} is too long; use {MIN_URL_TTL} to {MAX_URL_TTL} seconds."
        )
    return value


def check_safety(value: Any) -> Any:
    if value is None or value in SAFETY_MODES:
        return value
    raise ValueError(f"--safety {value!r} is not supported; use {', '.join(SAFETY_MODES)}.")


def check_quality_format(quality: int | None, output_format: str | None) -> None:
    """Quality is a lossy encoder's setting: PNG (kling-cli's default) has none."""
    if quality is not None and output_format not in LOSSY_FORMATS:
        given = output_format or "png (the default)"
        raise ValueError(
            f"--quality applies to JPEG and WebP, not {given}; add -f jpeg or -f webp."
        )


def recorded_url(url: str) -> str:
    """A delivery URL as the journal, sidecars and summaries keep it: its query and user
    part dropped, since they often carry the receiver's token or a presigned URL's
    signature."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets, or the port reads as part of it
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def dump_delivery(data: dict[str, Any]) -> dict[str, Any]:
    """A dumped request without the delivery options left unset (so requests recorded before
    they existed, and their batch keys, stay the same), its URLs as `recorded_url`."""
    for name in DELIVERY_FIELDS:
        if data.get(name) is None:
            data.pop(name, None)
    for name in ("webhook", "upload_to"):
        if isinstance(data.get(name), str):
            data[name] = recorded_url(data[name])
    return data


def refused_option(request: Any, capabilities: Any) -> str | None:
    """The first delivery option `request` sets that the provider's docs do not name for this
    model (its `Capabilities`), as the user typed it; None when all are offered."""
    offered = {
        "webhook": capabilities.webhook is not None,
        "quality": capabilities.output_quality,
        "upload_to": capabilities.upload_to,
        "safety": capabilities.safety,
        "url_ttl": capabilities.url_ttl,
    }
    for name in DELIVERY_FIELDS:
        if getattr(request, name) is not None and not offered[name]:
            return OPTION_NAMES[name]
    return None


def with_webhook_query(url: str, parameter: str, webhook: str | None) -> str:
    """`url` with the webhook as a query parameter (fal, WaveSpeed), URL-encoded whole."""
    if webhook is None:
        return url
    from urllib.parse import quote

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{parameter}={quote(webhook, safe='')}"


def check_one_upload(upload_to: str | None, images: int) -> None:
    """An upload URL takes one image: the provider PUTs each image to it (a presigned PUT
    names one object), so a second would replace the first."""
    if upload_to is not None and images > 1:
        raise ValueError(
            f"--upload-to takes one image, not {images}: the provider PUTs each image to "
            "that one URL, each over the last; give each image its own URL (one per batch "
            "item, `upload_to`)."
        )
