"""The registry of providers. Adding one is an entry in `catalog.py` and its adapter module.

What a provider is and offers (`CATALOG`, `provider_info`) needs no adapter; `PROVIDERS` and
`get_provider` import an adapter's wire code on first use, so a generation loads only its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from kling_cli.errors import ConfigError, InvalidRequestError
from kling_cli.providers.catalog import CATALOG, ProviderInfo, copy_facts, named_copy

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
            adapter: type[Provider] = getattr(import_module(module), name)
            if info.copy_of is not None:
                facts = copy_facts(provider_id, CATALOG[info.copy_of])
                adapter = type(f"{adapter.__name__}Copy", (adapter,), facts)
            provider = adapter()
            assert isinstance(provider, ProviderInfo), f"{info.adapter} is not a provider"
            self._loaded[provider_id] = provider
        return self._loaded[provider_id]

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOG)

    def __len__(self) -> int:
        return len(CATALOG)


PROVIDERS = ProviderRegistry()


COPY_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def add_named_copies(copies: Mapping[str, object]) -> None:
    """Register the config's `providers.<id>.copy_of = "<provider>"` entries: a built-in
    provider under a second id, with its own key, base URL and settings."""
    for copy_id, original_id in copies.items():
        existing = CATALOG.get(copy_id)
        if existing is not None and existing.copy_of is None:
            raise ConfigError(f"providers.{copy_id}.copy_of: {copy_id} is a built-in provider.")
        if not COPY_ID.match(copy_id):
            raise ConfigError(
                f"providers.{copy_id}.copy_of: a copy's id is lower-case letters, digits and "
                "underscores, starting with a letter (it names environment variables)."
            )
        original = CATALOG.get(str(original_id).lower())
        if original is None or original.copy_of is not None:
            builtins = ", ".join(i for i, info in CATALOG.items() if info.copy_of is None)
            raise ConfigError(
                f"providers.{copy_id}.copy_of must name a built-in provider ({builtins}), "
                f"not {original_id!r}."
            )
        if existing is None or existing.copy_of != original.id:
            CATALOG[copy_id] = named_copy(copy_id, original)


def provider_info(provider_id: str) -> ProviderInfo:
    if provider_id.lower() not in CATALOG:
        from kling_cli.config import ConfigFile, config_path

        ConfigFile.load(config_path())  # registers the named copies it declares
    try:
        return CATALOG[provider_id.lower()]
    except KeyError:
        raise InvalidRequestError(
            f"Unknown provider {provider_id!r}; choose one of {', '.join(CATALOG)}."
        ) from None


def get_provider(provider_id: str) -> Provider:
    return PROVIDERS[provider_info(provider_id).id]
