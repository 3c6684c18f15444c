"""Kling Image O1 output sizes, the emulator's own transcription of the Runware model page.

Source: Runware's model page (https://runware.ai/docs/models/klingai-image-o1, "Compatibility &
Validation"). Kept private to the emulator on purpose: the CLI has
its own copy, so a transcription slip in either one shows up as a failing test.
"""

from __future__ import annotations

from typing import Literal

Tier = Literal["1k", "2k"]

ASPECT_RATIOS: tuple[str, ...] = ("1:1", "3:2", "2:3", "4:3", "3:4", "9:16", "16:9", "21:9")

PIXELS: dict[tuple[Tier, str], tuple[int, int]] = {
    ("1k", "1:1"): (1024, 1024),
    ("1k", "3:2"): (1248, 832),
    ("1k", "2:3"): (832, 1248),
    ("1k", "4:3"): (1168, 880),
    ("1k", "3:4"): (880, 1168),
    ("1k", "9:16"): (768, 1360),
    ("1k", "16:9"): (1360, 768),
    ("1k", "21:9"): (1552, 656),
    ("2k", "1:1"): (2048, 2048),
    ("2k", "3:2"): (2496, 1664),
    ("2k", "2:3"): (1664, 2496),
    ("2k", "4:3"): (2336, 1760),
    ("2k", "3:4"): (1760, 2336),
    ("2k", "9:16"): (1536, 2720),
    ("2k", "16:9"): (2720, 1536),
    ("2k", "21:9"): (3104, 1312),
}

SUPPORTED_SIZES: frozenset[tuple[int, int]] = frozenset(PIXELS.values())


def pixels(tier: Tier, aspect_ratio: str) -> tuple[int, int]:
    return PIXELS[(tier, aspect_ratio)]
