"""The registry of providers: a value, built from the catalog and (for named copies) the
config, and passed down. Adding a provider is an entry in `catalog.py` and its adapter module.

What a provider is and offers (`Registry.info`) needs no adapter; `Registry.get` imports an
adapter's wire code on first use, so a generation loads only its own. Nothing here reads a
file or changes a global: `ConfigFile.registry` is the built-ins plus the file's copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from kling_cli.errors import ConfigError, InvalidRequestError
from kling_cli.providers.catalog import CATALOG, ProviderInfo

if TYPE_CHECKING:
    from kling_cli.providers.base import Provider

COPY_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def copy_facts(copy_id: str, original: ProviderInfo) -> dict[str, object]:
    """What a named copy changes of its original: its id and name, and key variables of its
    own (the original's variables belong to the original's account)."""
    secret = (f"KLING_{copy_id.upper()}_SECRET_KEY",) if original.needs_secret_key else ()
    return {
        "id": copy_id,
        "name": copy_id,
        "key_env_vars": (),
        "secret_env_vars": secret,
        "copy_of": original.id,
    }


def named_copy(copy_id: str, original: ProviderInfo) -> ProviderInfo:
    facts = copy_facts(copy_id, original)
    info: ProviderInfo = type(f"{type(original).__name__}Copy", (type(original),), facts)()
    return info


class Registry(Mapping[str, "Provider"]):
    """Every provider's adapter by id (built-ins in catalog order, then named copies); an
    adapter's module is imported on first lookup."""

    def __init__(self, infos: Mapping[str, ProviderInfo]) -> None:
        self._infos = dict(infos)
        self._loaded: dict[str, Provider] = {}

    @classmethod
    def builtin(cls) -> Registry:
        return cls(CATALOG)

    def with_copies(self, copies: Mapping[str, object]) -> Registry:
        """A registry with the config's `providers.<id>.copy_of = "<provider>"` entries
        added: a built-in provider under a second id, with its own key, base URL and
        settings. `ConfigError` for a copy that shadows a built-in, an id that cannot name
        environment variables, or an original that is not a built-in."""
        if not copies:
            return self
        infos = dict(self._infos)
        for copy_id, original_id in copies.items():
            if copy_id in CATALOG:
                raise ConfigError(f"providers.{copy_id}.copy_of: {copy_id} is a built-in provider.")
            if not COPY_ID.match(copy_id):
                raise ConfigError(
                    f"providers.{copy_id}.copy_of: a copy's id is lower-case letters, digits "
                    "and underscores, starting with a letter (it names environment variables)."
                )
            original = CATALOG.get(str(original_id).lower())
            if original is None:
                raise ConfigError(
                    f"providers.{copy_id}.copy_of must name a built-in provider "
                    f"({', '.join(CATALOG)}), not {original_id!r}."
                )
            infos[copy_id] = named_copy(copy_id, original)
        return Registry(infos)

    def infos(self) -> Mapping[str, ProviderInfo]:
        return self._infos

    def info(self, provider_id: str) -> ProviderInfo:
        """A provider's facts by id (any case); `InvalidRequestError` for an unknown id."""
        try:
            return self._infos[provider_id.lower()]
        except KeyError:
            raise InvalidRequestError(
                f"Unknown provider {provider_id!r}; choose one of {', '.join(self._infos)}."
            ) from None

    def lookup(self, provider_id: str) -> Provider:
        """A provider's adapter by id (any case); `InvalidRequestError` for an unknown id."""
        return self[self.info(provider_id).id]

    def __getitem__(self, provider_id: str) -> Provider:
        if provider_id not in self._loaded:
            info = self._infos[provider_id]
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
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


# The built-in providers, for code that has no config (a named copy needs one).
PROVIDERS = Registry.builtin()


def provider_info(provider_id: str) -> ProviderInfo:
    """A built-in provider's facts; `InvalidRequestError` for an unknown id."""
    return PROVIDERS.info(provider_id)


def get_provider(provider_id: str) -> Provider:
    """A built-in provider's adapter; `InvalidRequestError` for an unknown id."""
    return PROVIDERS.lookup(provider_id)
