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
    return [
        describe_request(engine.submission_for(part, options.push_timeout).request)
        for part in shown.split(provider.capabilities.max_images)
    ]


def estimated_cost(provider: Provider, request: GenerationRequest) -> float:
    """USD, at the provider's listed price per image."""
    return float(provider.price.usd_per_image * request.num_images)
