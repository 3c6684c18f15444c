"""The registry of providers. Adding one is a new module and one line here."""

from __future__ import annotations

from kling_cli.errors import InvalidRequestError
from kling_cli.providers.aimlapi import Aiml
from kling_cli.providers.apiinone import ApiInOne
from kling_cli.providers.base import Provider
from kling_cli.providers.comfy import Comfy
from kling_cli.providers.fal import Fal
from kling_cli.providers.inferencesh import InferenceSh
from kling_cli.providers.kling import Kling
from kling_cli.providers.runware import Runware
from kling_cli.providers.unifically import Unifically
from kling_cli.providers.wavespeed import WaveSpeed

PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Runware(),
        Unifically(),
        ApiInOne(),
        InferenceSh(),
        Kling(),
        Fal(),
        WaveSpeed(),
        Comfy(),
        Aiml(),
    )
}


def get_provider(provider_id: str) -> Provider:
    try:
        return PROVIDERS[provider_id.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"Unknown provider {provider_id!r}; choose one of {', '.join(PROVIDERS)}."
        ) from None
