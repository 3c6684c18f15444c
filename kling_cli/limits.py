"""Every documented Kling Image O1 limit, as named constants (no heavy imports: the registry and
`kling providers` use these without loading pydantic).

Sources: Unifically's Kling O1 Image page (https://unifically.com/models/kling-o1-image: ten
references, nine aspect ratios, 1K/2K), API in One's Kling Image O1 API page
(https://apiin.one/models/kling-image-o1: 1-9 images), inference.sh's app page
(https://inference.sh/apps/klingai/image-o1: prompt max 2500 characters) and Runware's model
page (https://runware.ai/docs/models/klingai-image-o1: the output dimension table).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

AspectRatio = Literal["auto", "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"]
Resolution = Literal["1k", "2k"]
OutputFormat = Literal["png", "jpeg", "webp"]
# "multi-shot": character-consistent images from one reference (API in One's `ai-multi-shot`).
Mode = Literal["default", "multi-shot"]

ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
MODES: tuple[str, ...] = get_args(Mode)

MIN_IMAGES = 1
MAX_IMAGES = 9
MAX_REFERENCES = 10
MIN_PROMPT_CHARS = 1
MAX_PROMPT_CHARS = 2500

# Output pixel size per resolution and aspect ratio, verbatim from Runware's model page
# ("The following dimension combinations are supported"). `auto` follows the references.
OUTPUT_DIMENSIONS: dict[tuple[str, str], tuple[int, int]] = {
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


def expected_output_size(resolution: str, aspect_ratio: str) -> tuple[int, int] | None:
    """The documented (width, height) in pixels of an image made at `resolution` and
    `aspect_ratio` (OUTPUT_DIMENSIONS); None for `auto` or a pair the table does not list."""
    return OUTPUT_DIMENSIONS.get((resolution, aspect_ratio))


# `@image_1` ... `@image_10` name the references in order (Unifically's page). Only a whole token is
# one: the `@image_1` in `mail a@image_1.com` is part of an address, not a reference. Matched
# case-insensitively so that `@Image_3` with two references is caught too.
IMAGE_TOKEN = re.compile(r"(?<![\w.+\-@])@image_([0-9]+)(?![\w@]|\.\w)", re.IGNORECASE)


def canonical_tokens(prompt: str) -> str:
    """The prompt with every reference token spelled `@image_N`, as documented."""
    return IMAGE_TOKEN.sub(lambda match: f"@image_{int(match.group(1))}", prompt)


# Reference images (Kling's documented input limits: the `image_list` field of its omni-image
# API, and fal's Kling O1 input constraints): JPEG or PNG, at most 10 MB, each side at least
# 300 px, aspect ratio between 1:2.5 and 2.5:1.
REFERENCE_FORMATS = ("JPEG", "PNG")
# "10 MB" says neither 10^7 nor 2^20 bytes; the smaller reading is the one every provider accepts,
# and it is the one stated in messages (10,000,000 bytes).
MAX_REFERENCE_BYTES = 10_000_000
# Pillow's own decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS, 1024**3 // 4 // 3): above
# it Pillow warns, at twice it refuses to open; kling reads nothing larger without --fit.
MAX_REFERENCE_PIXELS = 89_478_485
MIN_REFERENCE_SIDE = 300
MAX_REFERENCE_ASPECT = 2.5
