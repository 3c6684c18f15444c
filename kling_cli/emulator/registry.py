"""The emulated providers. Adding one: a module with a ProviderApi subclass, plus one line here."""

from __future__ import annotations

from typing import Any

from kling_cli.emulator.aimlapi import AimlApi
from kling_cli.emulator.apiinone import ApiInOneApi
from kling_cli.emulator.comfy import ComfyApi
from kling_cli.emulator.fal import FalApi
from kling_cli.emulator.inferencesh import InferenceShApi
from kling_cli.emulator.kling import KlingApi
from kling_cli.emulator.provider import ProviderApi
from kling_cli.emulator.runware import RunwareApi
from kling_cli.emulator.unifically import UnificallyApi
from kling_cli.emulator.wavespeed import WaveSpeedApi

PROVIDER_APIS: tuple[type[ProviderApi[Any]], ...] = (
    AimlApi,
    ApiInOneApi,
    ComfyApi,
    FalApi,
    InferenceShApi,
    KlingApi,
    RunwareApi,
    UnificallyApi,
    WaveSpeedApi,
)
