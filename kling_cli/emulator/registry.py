"""The emulated providers. Adding one: a module with a ProviderApi subclass, plus one line here."""

from __future__ import annotations

from kling_cli.emulator.provider import ProviderApi
from kling_cli.emulator.runware import RunwareApi
from kling_cli.emulator.unifically import UnificallyApi

PROVIDER_APIS: tuple[type[ProviderApi], ...] = (
    RunwareApi,
    UnificallyApi,
)
