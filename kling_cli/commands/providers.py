"""`kling providers`: who serves Kling Image O1, what each can do, and whether it is set up."""

from __future__ import annotations

from typing import Any

import typer

from kling_cli.commands import common
from kling_cli.commands.common import JSON_OPTION, load_config
from kling_cli.config import ConfigFile, resolve_base_url, resolve_key, resolve_service_urls
from kling_cli.errors import ExitCode
from kling_cli.limits import MAX_PROMPT_CHARS
from kling_cli.providers.catalog import CATALOG, ProviderInfo
from kling_cli.providers.unoffered import not_offered
from kling_cli.resend import arrived_case
from kling_cli.ui import Output, versioned

LOCAL_FILES = {
    "upload": "uploaded through its upload API",
    "data-uri": "sent inline as data URIs",
    "inline-base64": "sent inline as raw base64",
    "unsupported": "no (URLs only)",
}

app = typer.Typer(help="List the providers, their capabilities and price, and key status.")


def describe_provider(provider: ProviderInfo, config: ConfigFile) -> dict[str, Any]:
    key = resolve_key(provider, config, check=False)
    caps = provider.capabilities
    return {
        "id": provider.id,
        "name": provider.name,
        "key_configured": key is not None,
        "key_source": key.source if key else None,
        "capabilities": {
            "min_references": caps.min_references,
            "max_references": caps.max_references,
            "min_prompt_chars": caps.min_prompt_chars,
            "auto_aspect_needs_references": caps.auto_aspect_needs_references,
            "max_images_per_task": caps.max_images,
            "native_num_images": caps.max_images > 1,
            "negative_prompt": caps.negative_prompt,
            "modes": list(caps.modes),
            "aspect_ratios": list(caps.aspect_ratios),
            "output_formats": list(caps.output_formats),
            "push": list(caps.push),
            "local_files": caps.local_files,
            "webhook": caps.webhook,
            "output_quality": caps.output_quality,
            "upload_to": caps.upload_to,
            "safety": caps.safety,
            "url_ttl": caps.url_ttl,
        },
        "not_offered": dict(not_offered(provider.id, provider.copy_of)),
        "price_per_image_usd": provider.price.usd_per_image,
        "price_source": provider.price.source,
        "price_as_of": provider.price.as_of,
        "docs": provider.docs_url,
        # How `kling status` picks up a job interrupted after its submit, and what a submit
        # that may have arrived is (kling_cli.resend): "lookup", "idempotent" or "unknown".
        "resume": provider.resume,
        "unanswered_submit": arrived_case(provider.capabilities).value,
        "copy_of": provider.copy_of,
        "base_url": resolve_base_url(provider, config),
        "service_urls": resolve_service_urls(provider, config),
        "key_env_vars": [provider.key_env_var, *provider.key_env_vars],
        "secret_env_vars": (
            list(dict.fromkeys((provider.secret_env_var, *provider.secret_env_vars)))
            if provider.needs_secret_key
            else []
        ),
    }


@app.callback(invoke_without_command=True)
def list_providers(ctx: typer.Context, as_json: bool = JSON_OPTION) -> int:
    """List the providers, their capabilities and price, and whether a key is configured."""
    if ctx.invoked_subcommand is not None:
        return ExitCode.OK
    output: Output = ctx.obj
    config = load_config(output)
    rows = [describe_provider(provider, config) for provider in config.registry.infos().values()]
    if output.json_mode:
        output.emit_json(versioned(providers=rows))
        return ExitCode.OK

    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "KEY", "REFS", "N/TASK", "FORMATS", "EXTRAS", "$/IMAGE"):
        table.add_column(column, no_wrap=column not in ("KEY", "FORMATS", "EXTRAS"))
    for row in rows:
        caps = row["capabilities"]
        extras = [m for m in caps["modes"] if m != "default"] + [f"push:{p}" for p in caps["push"]]
        if caps["negative_prompt"]:
            extras.insert(0, "negative")
        if caps["local_files"] != "unsupported":
            extras.insert(0, "files:upload" if caps["local_files"] == "upload" else "files:inline")
        table.add_row(
            row["id"],
            f"yes ({row['key_source']})" if row["key_configured"] else "no",
            str(caps["max_references"]),
            str(caps["max_images_per_task"]),
            " ".join(caps["output_formats"]) or "-",
            " ".join(extras) or "-",
            f"{row['price_per_image_usd']:.4f}",
        )
    output.stdout.print(table)
    output.note("`-n` above N/TASK runs several tasks. Details: kling providers show ID")
    return ExitCode.OK


@app.command("show")
def show_provider(
    ctx: typer.Context,
    provider_id: str = typer.Argument(..., metavar="ID", help="Provider id."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Everything about one provider: capabilities, price and its source, docs, variables."""
    output: Output = ctx.obj
    config = load_config(output)
    row = describe_provider(config.registry.info(provider_id), config)
    if output.json_mode:
        output.emit_json(versioned(provider=row))
        return ExitCode.OK
    caps = row["capabilities"]
    key = f"yes, from {row['key_source']}" if row["key_configured"] else "no"
    lines = [
        ("provider", f"{row['name']} ({row['id']})"),
        ("copy of", row["copy_of"] and f"{CATALOG[row['copy_of']].name} ({row['copy_of']})"),
        ("key", key),
        ("key variables", ", ".join(row["key_env_vars"])),
        ("secret variables", ", ".join(row["secret_env_vars"])),
        ("base URL", row["base_url"]),
        *((f"{name} URL", url) for name, url in row["service_urls"].items()),
        ("docs", row["docs"]),
        (
            "price",
            f"${row['price_per_image_usd']} per image ({row['price_source']}, "
            f"{row['price_as_of']})",
        ),
        ("references", _reference_range(caps)),
        ("prompt", f"{caps['min_prompt_chars']} to {MAX_PROMPT_CHARS} characters"),
        ("images per task", f"up to {caps['max_images_per_task']}"),
        (
            "aspect ratios",
            ", ".join(caps["aspect_ratios"])
            + (" (auto needs a --ref)" if caps["auto_aspect_needs_references"] else ""),
        ),
        ("negative prompt", "yes" if caps["negative_prompt"] else "no"),
        ("modes", ", ".join(caps["modes"])),
        ("output formats", ", ".join(caps["output_formats"]) or "provider's choice"),
        ("push delivery", ", ".join(caps["push"]) or "no (polling)"),
        ("local files", LOCAL_FILES[caps["local_files"]]),
        ("webhook", _webhook(caps["webhook"])),
        ("delivery options", _delivery(caps)),
        ("interrupted job", row["resume"]),
    ]
    for label, value in lines:
        if value:
            output.result(f"{label:<17} {value}")
    for option, reason in row["not_offered"].items():
        output.result(f"{'not offered':<17} {option}: {reason}")
    return ExitCode.OK


def _webhook(field: str | None) -> str:
    if field is None:
        return "no (none documented): --webhook is refused"
    where = f"the {field[1:-1]} query parameter" if field.startswith("?") else f"`{field}`"
    return f"yes, --webhook (sent as {where})"


def _delivery(caps: dict[str, Any]) -> str:
    offered = [
        option
        for option, key in (
            ("--quality", "output_quality"),
            ("--upload-to", "upload_to"),
            ("--safety", "safety"),
            ("--url-ttl", "url_ttl"),
        )
        if caps[key]
    ]
    return ", ".join(offered) or "none of --quality, --upload-to, --safety, --url-ttl"


@app.command("route")
def route_request(
    ctx: typer.Context,
    prompt: str = typer.Argument(..., help="The prompt the request would have."),
    provider: str | None = typer.Option(
        None,
        "--provider",
        "-p",
        help="Providers to consider, in failover order (a,b,c) [default: every provider, "
        "cheapest first, as -p auto].",
        show_default=False,
    ),
    ref: list[str] = typer.Option(
        [], "--ref", "-r", help="A reference image: URL or local file (repeatable)."
    ),
    aspect_ratio: str | None = typer.Option(
        None,
        "--aspect-ratio",
        "-a",
        help="As for generate [default: auto with references, else 1:1].",
        show_default=False,
        autocompletion=common.aspect_ratios,
    ),
    resolution: str = typer.Option("1k", "--resolution", "-R", help="1k or 2k."),
    num_images: int = typer.Option(1, "--num-images", "-n", help="How many images (1-9)."),
    output_format: str | None = typer.Option(
        None, "--format", "-f", help="png, jpeg or webp.", show_default=False
    ),
    negative_prompt: str | None = typer.Option(
        None, "--negative-prompt", help="What to keep out of the image."
    ),
    mode: str = typer.Option("default", "--mode", help="default or multi-shot."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Which providers can serve a request, its estimated cost at each, the order a run with
    -p auto (or -p a,b,c) would try them in, and why the others cannot. Sends nothing."""
    from kling_cli.request import build_request
    from kling_cli.routing import AUTO, describe_route, plan_route, provider_ids

    output: Output = ctx.obj
    request = build_request(
        fit_option=True,
        prompt=prompt,
        references=ref,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        num_images=num_images,
        output_format=output_format,
        negative_prompt=negative_prompt,
        mode=mode,
    )
    config = load_config(output)
    ids = provider_ids(provider) or [AUTO]
    for provider_id in ids:
        if provider_id != AUTO:
            config.registry.info(provider_id)
    planned = plan_route(
        ids, config, request, emulate=False, aspect_unset=aspect_ratio is None, strict=False
    )
    rows = describe_route(planned)
    chosen = planned.order[0].provider.id if planned.order else None
    if output.json_mode:
        output.emit_json(versioned(chosen=chosen, route=rows))
        return ExitCode.OK
    for row in rows:
        order = f"{row['order']}." if row["order"] else "-"
        why = row["unable"] or ("chosen" if row["provider"] == chosen else "next on failover")
        output.result(f"{order:<3} {row['provider']:<12} ${row['estimated_cost']:<8.4f} {why}")
    if chosen is None:
        output.note("No provider with a key can serve this request.")
    return ExitCode.OK


def _reference_range(caps: dict[str, Any]) -> str:
    if caps["min_references"]:
        return f"{caps['min_references']} to {caps['max_references']} (required)"
    return f"up to {caps['max_references']}"
