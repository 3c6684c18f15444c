"""`kling config`: keys and settings in the config file."""

from __future__ import annotations

import sys

import typer

from kling_cli.commands.common import JSON_OPTION, load_config
from kling_cli.config import (
    AUTH_MODES,
    SECRET_SETTINGS,
    ConfigFile,
    check_base_url,
    check_setting_name,
    config_path,
    key_problem,
    mask_key,
    resolve_key,
    resolve_secret_key,
)
from kling_cli.errors import ConfigError, ExitCode, InvalidRequestError
from kling_cli.ui import Output, versioned

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
    config = load_config(output)
    try:
        provider = config.registry.info(provider_id)
    except InvalidRequestError as exc:
        # Bad config input, like every other `kling config` mistake: exit 4, not 2.
        raise ConfigError(exc.message) from None
    # Key-pair providers (Kling) take the access key, then the secret key (a second line
    # with --stdin).
    relay = config.get(f"providers.{provider.id}.auth") == "bearer"
    pair = provider.needs_secret_key and not relay
    names = ["api_key", "secret_key"] if pair else ["api_key"]
    labels = {
        "api_key": "access key" if pair else "API key",
        "secret_key": "secret key",
    }
    values = {}
    for name in names:
        if stdin:
            value = sys.stdin.readline().strip()
        else:
            value = typer.prompt(f"{provider.name} {labels[name]}", hide_input=True).strip()
        if not value:
            raise ConfigError(f"The {labels[name]} is empty; nothing was stored.")
        problem = key_problem(value)
        if problem:
            raise ConfigError(
                f"The {labels[name]} contains {problem}; keys are printable ASCII. "
                "Nothing was stored."
            )
        values[name] = value
    for name, value in values.items():
        config.set(f"providers.{provider.id}.{name}", value)
    config.save()
    masked = ", ".join(f"{labels[n]} {mask_key(v)}" for n, v in values.items())
    output.note(f"Stored the {provider.name} {masked} in {config.path}.")
    return ExitCode.OK


@app.command("list")
def list_settings(ctx: typer.Context, as_json: bool = JSON_OPTION) -> int:
    """Show every setting, with keys masked and where each key comes from."""
    output: Output = ctx.obj
    config = load_config(output)
    rows: list[dict[str, str | None]] = []
    for setting in ("default_provider", "route"):
        value = config.get(setting)
        if value:
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append({"name": setting, "value": shown, "source": "config file"})
    for provider in config.registry.infos().values():
        keys = [("api_key", resolve_key(provider, config, check=False))]
        if provider.needs_secret_key:
            keys.append(("secret_key", resolve_secret_key(provider, config, check=False)))
        for name, key in keys:
            rows.append(
                {
                    "name": f"providers.{provider.id}.{name}",
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
        output.emit_json(versioned(path=str(config.path), settings=rows))
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
    config = load_config(output)
    check_setting_name(name, config.registry)
    value = config.get(name)
    if value is None:
        raise ConfigError(f"{name} is not set in {config_path()}.")
    is_secret = name.rsplit(".", 1)[-1] in SECRET_SETTINGS
    output.result(mask_key(str(value)) if is_secret else str(value))
    return ExitCode.OK


@app.command("set")
def set_setting(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="default_provider, route or providers.<id>.base_url."),
    value: str = typer.Argument(..., help="The new value."),
) -> int:
    """Change a setting. Keys go through `kling config set-key`, never the command line."""
    output: Output = ctx.obj
    config = load_config(output)
    check_setting_name(name, config.registry)
    if name.rsplit(".", 1)[-1] in SECRET_SETTINGS:
        provider_id = name.split(".")[1]
        raise ConfigError(
            "Keys typed on the command line end up in shell history; "
            f"use `kling config set-key {provider_id}`."
        )
    if name == "default_provider":
        # Several (a,b,c) are tried in order (failover); auto picks the cheapest that serves.
        ids = []
        for part in (part.strip() for part in value.split(",")):
            try:
                ids.append("auto" if part == "auto" else config.registry.info(part).id)
            except InvalidRequestError:
                raise ConfigError(
                    f"Unknown provider {part!r} for default_provider; choose one of "
                    f"{', '.join(config.registry)} (several as a,b,c, or auto)."
                ) from None
        value = ",".join(ids)
    elif name == "route":
        if value != "cheapest":
            raise ConfigError(f"route must be cheapest (as -p auto), not {value!r}.")
    elif name.endswith(".copy_of"):
        value = value.lower()
        config.registry.with_copies({name.split(".")[1]: value})  # refuses a bad copy
    elif name.endswith(".auth"):
        if value not in AUTH_MODES:
            raise ConfigError(f"{name} must be one of {', '.join(AUTH_MODES)}, not {value!r}.")
    else:
        value = check_base_url(value.rstrip("/"), setting=name)
    config.set(name, value)
    config.save()
    output.note(f"Set {name} in {config.path}.")
    return ExitCode.OK


@app.command("unset")
def unset_setting(ctx: typer.Context, name: str = typer.Argument(..., help="Setting name.")) -> int:
    """Remove a setting (or a stored key) from the config file."""
    output: Output = ctx.obj
    config: ConfigFile = load_config(output)
    check_setting_name(name, config.registry)
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
