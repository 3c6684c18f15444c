"""The start-up baseline: the smallest typer app that does what `kling --help`, `--version`,
`providers` and `config list` visibly do, in the same virtualenv (same typer, click, rich and
shellingham, so help is rendered the same way).

It imports nothing but typer at start-up; `providers` builds a rich table of nine rows like
kling's, and `config list` reads the TOML config file with the standard library. Anything
kling's start-up costs beyond this app's is overhead of kling's own.

    python bench/baseline_app.py --help
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import typer

PROVIDERS = (
    ("runware", "Runware", "1-9 images, 10 refs, png/jpeg/webp", 0.028),
    ("unifically", "Unifically", "1 image, 10 refs", 0.0),
    ("apiinone", "API in One", "1-9 images, 10 refs", 0.012),
    ("inferencesh", "inference.sh", "1-9 images, 10 refs", 0.03),
    ("kling", "Kling", "1-9 images, 10 refs", 0.028),
    ("fal", "fal", "1-9 images, 10 refs, png/jpeg/webp", 0.028),
    ("wavespeed", "WaveSpeed", "1-9 images, 10 refs", 0.028),
    ("comfy", "Comfy", "1-9 images, 10 refs", 0.028),
    ("aiml", "AI/ML API", "1-9 images, 10 refs", 0.028),
)

app = typer.Typer(
    name="baseline",
    help="A minimal typer app with kling's command tree, for start-up comparisons.",
    epilog="Exit codes: 0 ok · 1 unexpected · 2 invalid arguments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Manage API keys and settings.", no_args_is_help=True)
jobs_app = typer.Typer(help="List the jobs submitted so far.")
app.add_typer(config_app, name="config")
app.add_typer(jobs_app, name="jobs")


def _print_version(value: bool) -> None:
    if value:
        typer.echo("baseline 0.1.0")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Show the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Generate still images."""


@app.command("generate")
def generate(prompt: str = typer.Argument(..., help="What to draw.")) -> None:
    """Generate images from a prompt and optional reference images."""


@app.command("batch")
def batch(file: str = typer.Argument(..., help="JSONL or CSV manifest.")) -> None:
    """Run every item of a manifest."""


@app.command("status")
def status(job: str = typer.Argument("", help="A job id.")) -> None:
    """Show a job's state, wait for it, download its images."""


@jobs_app.callback(invoke_without_command=True)
def jobs() -> None:
    """List the jobs submitted so far."""


@app.command("providers")
def providers() -> None:
    """List the providers, their capabilities and price, and whether a key is configured."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "KEY", "CAPABILITIES", "PRICE/IMAGE"):
        table.add_column(column)
    for provider_id, name, capabilities, price in PROVIDERS:
        key = os.environ.get(f"KLING_{provider_id.upper()}_API_KEY")
        table.add_row(provider_id, name, "yes (env)" if key else "no", capabilities, f"${price}")
    Console(soft_wrap=True).print(table)


@app.command("emulate")
def emulate(port: int = typer.Option(8765, "--port", help="API port.")) -> None:
    """Serve every provider's API offline on 127.0.0.1."""


@config_app.command("list")
def config_list() -> None:
    """Show every setting, with keys masked and where each key comes from."""
    directory = os.environ.get("KLING_CONFIG_DIR") or str(Path.home() / ".config" / "kling-cli")
    try:
        data = tomllib.loads((Path(directory) / "config.toml").read_text())
    except FileNotFoundError:
        data = {}
    stored = data.get("providers", {})
    for provider_id, *_ in PROVIDERS:
        key = os.environ.get(f"KLING_{provider_id.upper()}_API_KEY") or stored.get(
            provider_id, {}
        ).get("api_key")
        typer.echo(f"providers.{provider_id}.api_key = {'****' if key else '(not set)'}")


@config_app.command("path")
def config_path() -> None:
    """Print the config file's path."""


if __name__ == "__main__":
    app(prog_name="baseline")
