"""`kling providers`: who serves Kling Image O1, what each can do, and whether it is set up."""

from __future__ import annotations

import typer

from kling_cli.commands.common import JSON_OPTION, load_config
from kling_cli.config import resolve_key
from kling_cli.errors import ExitCode
from kling_cli.providers import PROVIDERS
from kling_cli.ui import Output


def list_providers(ctx: typer.Context, as_json: bool = JSON_OPTION) -> int:
    """List the providers, their capabilities and price, and whether a key is configured."""
    output: Output = ctx.obj
    config = load_config(output)
    rows = []
    for provider in PROVIDERS.values():
        key = resolve_key(provider, config)
        rows.append(
            {
                "id": provider.id,
                "name": provider.name,
                "key_configured": key is not None,
                "key_source": key.source if key else None,
                "capabilities": {
                    "max_references": provider.capabilities.max_references,
                    "max_images": provider.capabilities.max_images,
                    "aspect_ratios": list(provider.capabilities.aspect_ratios),
                    "output_formats": list(provider.capabilities.output_formats),
                },
                "price_per_image_usd": provider.price.usd_per_image,
                "price_source": provider.price.source,
                "price_as_of": provider.price.as_of,
                "docs": provider.docs_url,
            }
        )
    if output.json_mode:
        output.emit_json({"providers": rows})
        return ExitCode.OK

    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "KEY", "CAPABILITIES", "PRICE/IMAGE"):
        table.add_column(column)
    for provider in PROVIDERS.values():
        key = resolve_key(provider, config)
        table.add_row(
            provider.id,
            provider.name,
            f"yes ({key.source})" if key else "no",
            provider.capabilities.summary(),
            f"${provider.price.usd_per_image:.3f}",
        )
    output.stdout.print(table)
    return ExitCode.OK
