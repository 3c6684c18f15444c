"""A local stand-in for the providers' HTTP APIs, written from their documentation.

It speaks each provider's documented wire protocol on 127.0.0.1 so the CLI's adapters and
engine can be tested over real HTTP, with injectable faults and a log of every request.
"""

from kling_cli.emulator.core import EMULATOR_API_KEY, Emulator
from kling_cli.emulator.faults import Fault
from kling_cli.emulator.foreground import serve
from kling_cli.emulator.recording import RecordedRequest

__all__ = ["EMULATOR_API_KEY", "Emulator", "Fault", "RecordedRequest", "serve"]
