"""`kling config`: keys and settings in the config file."""

from __future__ import annotations

import sys

import typer

from kling_cli.commands.common import JSON_OPTION, load_config
from kling_cli.config import (
    ConfigFile,
    check_base_url,
    check_setting_name,
    config_path,
    mask_key,
    resolve_key,
)
from kling_cli.errors import ConfigError, ExitCode, InvalidRequestError
from kling_cli.providers import PROVIDERS, get_provider
from kling_cli.ui import Output

app = typer.Typer(
    help="Manage API keys and settings (stored in a private TOML file).",
    no_args_is_help=True,
)


@app.command("set-key")
def set_key(
    ctx: typer.Context,
    provider_id: str = typer.Argument(..., metavar="PROVIDER", help="Provider id."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input."),
) -> int:
    """Store a provider's API key (typed at a hidden prompt, or piped with --stdin)."""
    output: Output = ctx.obj
    provider = get_provider(provider_id)
    if stdin:
        key = sys.stdin.readline().strip()
    else:
        key = typer.prompt(f"{provider.name} API key", hide_input=True).strip()
    if not key:
        raise InvalidRequestError("The key is empty; nothing was stored.")
    config = load_config(output)
    config.set(f"providers.{provider.id}.api_key", key)
    config.save()
    output.note(f"Stored the {provider.name} key ({mask_key(key)}) in {config.path}.")
    return ExitCode.OK


@app.command("list")
def list_settings(ctx: typer.Context, as_json: bool = JSON_OPTION) -> int:
    """Show every setting, with keys masked and where each key comes from."""
    output: Output = ctx.obj
    config = load_config(output)
    rows: list[dict[str, str | None]] = []
    default_provider = config.get("default_provider")
    if default_provider:
        rows.append(
            {"name": "default_provider", "value": str(default_provider), "source": "config file"}
        )
    for provider in PROVIDERS.values():
        key = resolve_key(provider, config)
        rows.append(
            {
                "name": f"providers.{provider.id}.api_key",
                "value": mask_key(key.value) if key else None,
                "source": key.source if key else None,
            }
        )
        base_url = config.get(f"providers.{provider.id}.base_url")
        if base_url:
            rows.append(
                {
                    "name": f"providers.{provider.id}.base_url",
                    "value": str(base_url),
                    "source": "config file",
                }
            )
    if output.json_mode:
        output.emit_json({"path": str(config.path), "settings": rows})
        return ExitCode.OK
    for row in rows:
        value = row["value"] or "(not set)"
        source = f"  [{row['source']}]" if row["source"] else ""
        output.result(f"{row['name']} = {value}{source}")
    return ExitCode.OK


@app.command("get")
def get_setting(ctx: typer.Context, name: str = typer.Argument(..., help="Setting name.")) -> int:
    """Print one setting (keys are masked)."""
    output: Output = ctx.obj
    check_setting_name(name)
    value = load_config(output).get(name)
    if value is None:
        raise ConfigError(f"{name} is not set in {config_path()}.")
    output.result(mask_key(str(value)) if name.endswith(".api_key") else str(value))
    return ExitCode.OK


@app.command("set")
def set_setting(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="default_provider or providers.<id>.base_url."),
    value: str = typer.Argument(..., help="The new value."),
) -> int:
    """Change a setting. Keys go through `kling config set-key`, never the command line."""
    output: Output = ctx.obj
    check_setting_name(name)
    if name.endswith(".api_key"):
        provider_id = name.split(".")[1]
        raise ConfigError(
            "Keys typed on the command line end up in shell history; "
            f"use `kling config set-key {provider_id}`."
        )
    if name == "default_provider":
        value = get_provider(value).id
    else:
        value = check_base_url(value.rstrip("/"), setting=name)
    config = load_config(output)
    config.set(name, value)
    config.save()
    output.note(f"Set {name} in {config.path}.")
    return ExitCode.OK


@app.command("unset")
def unset_setting(ctx: typer.Context, name: str = typer.Argument(..., help="Setting name.")) -> int:
    """Remove a setting (or a stored key) from the config file."""
    output: Output = ctx.obj
    check_setting_name(name)
    config: ConfigFile = load_config(output)
    if not config.unset(name):
        output.note(f"{name} was not set.")
        return ExitCode.OK
    config.save()
    output.note(f"Removed {name} from {config.path}.")
    return ExitCode.OK


@app.command("path")
def show_path(ctx: typer.Context) -> int:
    """Print the config file's path."""
    output: Output = ctx.obj
    output.result(str(config_path()))
    return ExitCode.OK
