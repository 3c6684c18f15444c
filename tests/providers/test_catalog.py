"""The catalog is the one place a provider's facts live: each adapter is its catalog entry plus
wire code, and redefines none of the facts."""

from __future__ import annotations

import pytest

from kling_cli.errors import InvalidRequestError
from kling_cli.providers import PROVIDERS, get_provider, provider_info
from kling_cli.providers.catalog import CATALOG, ProviderInfo

FACTS = set(ProviderInfo.__annotations__) | {
    name for name, value in vars(ProviderInfo).items() if isinstance(value, property)
}


@pytest.mark.parametrize("provider_id", list(CATALOG))
def test_each_adapter_inherits_its_facts_from_the_catalog(provider_id: str) -> None:
    info = CATALOG[provider_id]
    adapter = PROVIDERS[provider_id]
    assert isinstance(adapter, type(info))
    assert adapter.id == provider_id
    assert adapter.capabilities is info.capabilities and adapter.price is info.price
    redefined = FACTS & set(vars(type(adapter)))
    assert not redefined, f"{type(adapter).__name__} redefines {sorted(redefined)}"


def test_lookups_ignore_case_and_name_the_choices_when_unknown() -> None:
    assert provider_info("FAL") is CATALOG["fal"]
    assert get_provider("Runware") is PROVIDERS["runware"]
    with pytest.raises(InvalidRequestError, match="choose one of runware, unifically"):
        provider_info("nope")
