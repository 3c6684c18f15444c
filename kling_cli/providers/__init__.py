"""The registry of providers. Adding one is a new module and one line here.

Adapters are imported when first used: `kling --help` needs only the ids, and a generation
only its own provider's module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError

if TYPE_CHECKING:
    from kling_cli.providers.base import Provider

# id: (module, class), in the order `kling providers` lists them.
ADAPTERS: dict[str, tuple[str, str]] = {
    "runware": ("kling_cli.providers.runware", "Runware"),
    "unifically": ("kling_cli.providers.unifically", "Unifically"),
    "apiinone": ("kling_cli.providers.apiinone", "ApiInOne"),
    "inferencesh": ("kling_cli.providers.inferencesh", "InferenceSh"),
    "kling": ("kling_cli.providers.kling", "Kling"),
    "fal": ("kling_cli.providers.fal", "Fal"),
    "wavespeed": ("kling_cli.providers.wavespeed", "WaveSpeed"),
    "comfy": ("kling_cli.providers.comfy", "Comfy"),
    "aimlapi": ("kling_cli.providers.aimlapi", "Aiml"),
}


class ProviderRegistry(Mapping[str, "Provider"]):
    """Every provider by id; an adapter's module is imported on first lookup."""

    def __init__(self) -> None:
        self._loaded: dict[str, Provider] = {}

    def __getitem__(self, provider_id: str) -> Provider:
        if provider_id not in self._loaded:
            module, name = ADAPTERS[provider_id]
            provider: Provider = getattr(import_module(module), name)()
            assert provider.id == provider_id, f"{module}.{name} has id {provider.id!r}"
            self._loaded[provider_id] = provider
        return self._loaded[provider_id]

    def __iter__(self) -> Iterator[str]:
        return iter(ADAPTERS)

    def __len__(self) -> int:
        return len(ADAPTERS)


PROVIDERS = ProviderRegistry()


def get_provider(provider_id: str) -> Provider:
    try:
        return PROVIDERS[provider_id.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"Unknown provider {provider_id!r}; choose one of {', '.join(PROVIDERS)}."
        ) from None
