"""The dry run: the requests a real run would send, built by the engine's own submission
builder (same body, same delivery method), keys redacted, nothing sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobOptions
    from kling_cli.providers.base import Endpoint, Provider
    from kling_cli.request import GenerationRequest


def preview(
    provider: Provider, endpoint: Endpoint, request: GenerationRequest, options: JobOptions
) -> list[dict[str, Any]]:
    """Each submit request of the job as `{method, url, headers, body}`, credentials shown as
    `<redacted>`; local reference files are described (name, size), not inlined or uploaded."""
    from kling_cli.engine import Engine
    from kling_cli.references import with_described_references
    from kling_cli.transport import describe_request

    engine = Engine(provider, endpoint)
    shown = with_described_references(request, provider.capabilities.local_files)
    described = [
        describe_request(engine.submission_for(part, options.push_timeout).request)
        for part in shown.split(provider.capabilities.max_images)
    ]
    return [_without_delivery_secrets(item, request) for item in described]


def _without_delivery_secrets(described: Any, request: GenerationRequest) -> Any:
    """`described` with the webhook and upload URLs as the journal keeps them (no user part,
    no query): they often carry the receiver's token or a presigned signature, as secret as
    the key shown `<redacted>` beside them. Also where a provider puts them URL-encoded in
    the submit URL's query (fal, WaveSpeed)."""
    from urllib.parse import quote

    from kling_cli.delivery import recorded_url

    forms: dict[str, str] = {}
    for url in (request.webhook, request.upload_to):
        if url and recorded_url(url) != url:
            forms[url] = recorded_url(url)
            forms[quote(url, safe="")] = quote(recorded_url(url), safe="")

    def hide(value: Any) -> Any:
        if isinstance(value, str):
            for raw, kept in forms.items():
                value = value.replace(raw, kept)
            return value
        if isinstance(value, dict):
            return {key: hide(item) for key, item in value.items()}
        if isinstance(value, list):
            return [hide(item) for item in value]
        return value

    return hide(described) if forms else described


def estimated_cost(provider: Provider, request: GenerationRequest) -> float:
    """USD, at the provider's listed price per image."""
    return float(provider.price.usd_per_image * request.num_images)
