"""The registry of providers. Adding one is an entry in `catalog.py` and its adapter module.

What a provider is and offers (`CATALOG`, `provider_info`) needs no adapter; `PROVIDERS` and
`get_provider` import an adapter's wire code on first use, so a generation loads only its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError
from kling_cli.providers.catalog import CATALOG, ProviderInfo

if TYPE_CHECKING:
    from kling_cli.providers.base import Provider


class ProviderRegistry(Mapping[str, "Provider"]):
    """Every provider's adapter by id; an adapter's module is imported on first lookup."""

    def __init__(self) -> None:
        self._loaded: dict[str, Provider] = {}

    def __getitem__(self, provider_id: str) -> Provider:
        if provider_id not in self._loaded:
            info = CATALOG[provider_id]
            module, _, name = info.adapter.partition(":")
            provider: Provider = getattr(import_module(module), name)()
            assert isinstance(provider, type(info)), f"{info.adapter} is not a {type(info)}"
            self._loaded[provider_id] = provider
        return self._loaded[provider_id]

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOG)

    def __len__(self) -> int:
        return len(CATALOG)


PROVIDERS = ProviderRegistry()


def provider_info(provider_id: str) -> ProviderInfo:
    try:
        return CATALOG[provider_id.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"Unknown provider {provider_id!r}; choose one of {', '.join(CATALOG)}."
        ) from None


def get_provider(provider_id: str) -> Provider:
    return PROVIDERS[provider_info(provider_id).id]
