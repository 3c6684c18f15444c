"""kling-cli: generate still images with Kling Image O1 through the providers that serve it.

As a library (`kling_cli.api`): `generate(...)`, `await agenerate(...)`, `status(...)`,
`run_batch(items)`, `list_providers()`. They are imported on first use, so `kling --version`
pays nothing for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# The distribution this package comes from: another one (the video tool kling-pro-cli) installs
# a `kling` command and a `kling_cli` package too, and `kling --version` tells them apart.
DISTRIBUTION = "kling-image-cli"

if TYPE_CHECKING:
    from kling_cli.api import (
        BatchItemResult,
        Image,
        Job,
        ProviderSummary,
        agenerate,
        generate,
        list_providers,
        run_batch,
        status,
    )

__all__ = [
    "BatchItemResult",
    "Image",
    "Job",
    "ProviderSummary",
    "__version__",
    "agenerate",
    "generate",
    "list_providers",
    "run_batch",
    "status",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from kling_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'kling_cli' has no attribute {name!r}")
