"""`--help` in words: every option's value is named for what it holds (`SECONDS`, `URL|FILE`),
not by its Python type (`<float>`, `<list[str]>`), flags show none, and defaults read as typed
(`600`, not `600.0`).

Applied once to each command when it is loaded (`humanize`), so the commands declare their
options plainly and stay in step with this file by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperArgument, TyperOption

if TYPE_CHECKING:
    from typer._click import Command, Context

# The value of an option, by its long name; options not listed are named by their type.
OPTION_VALUES: dict[str, str] = {
    "--provider": "ID",
    "--ref": "URL|FILE",
    "--aspect-ratio": "RATIO",
    "--resolution": "1k|2k",
    "--num-images": "N",
    "--format": "FORMAT",
    "--output-dir": "DIR",
    "--name": "TEMPLATE",
    "--timeout": "SECONDS",
    "--negative-prompt": "TEXT",
    "--mode": "MODE",
    "--concurrency": "N",
    "--shard": "K/N",
    "--max-cost": "USD",
    "--port": "PORT",
    "--host": "HOST",
    "--latency": "SECONDS",
    "--state": "STATE",
    "--limit": "N",
}
TYPE_VALUES = {"int": "N", "float": "NUMBER", "path": "PATH"}


def _value_word(option: TyperOption, ctx: Context) -> str:
    long_names = [name for name in option.opts if name.startswith("--")]
    for name in long_names:
        if name in OPTION_VALUES:
            return OPTION_VALUES[name]
    typed = option.display_type(ctx).strip("<>")
    return TYPE_VALUES.get(typed, "TEXT")


def _plain_default(value: Any) -> Any:
    # A whole float default (`600.0`) is shown as the user would type it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class WordOption(TyperOption):
    def display_type_rich(self, ctx: Context) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag:
            return None
        return _value_word(self, ctx)

    def _get_default_string(self, *, ctx: Context, default_value: Any, **kwargs: Any) -> str:
        return super()._get_default_string(
            ctx=ctx, default_value=_plain_default(default_value), **kwargs
        )


class WordArgument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        word = (self.metavar or self.name or "value").strip("[]{}")
        return word.upper()

    def display_type_rich(self, ctx: Context) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name


def word(param: Any) -> None:
    """Give a typer parameter the subclass that words its help (the same object: typer
    builds them)."""
    if isinstance(param, TyperOption) and not isinstance(param, WordOption):
        param.__class__ = WordOption
    elif isinstance(param, TyperArgument) and not isinstance(param, WordArgument):
        param.__class__ = WordArgument


def humanize(command: Command) -> Command:
    """`command` and its subcommands, with their parameters shown in words."""
    for param in command.params:
        if getattr(param, "help", None):
            # Help is prose, not rich markup: "[default: 8]" in it must show, not vanish.
            param.help = param.help.replace("[", "\\[")  # type: ignore[attr-defined]
        word(param)
    original = command.get_help_option

    def get_help_option(ctx: Context) -> Any:
        option = original(ctx)
        word(option)
        return option

    # click creates `--help` on demand, so it is worded when it is.
    command.get_help_option = get_help_option  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        humanize(sub)
    return command
