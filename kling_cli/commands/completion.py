"""`kling completion SHELL`: the completion script, printed (as `gh completion` does), so a wheel
install has it without the repository's completions/ folder."""

from __future__ import annotations

import typer

from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output

SHELLS = ("bash", "zsh", "fish")


def completion(
    ctx: typer.Context,
    shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
) -> int:
    """Print the shell completion script for bash, zsh or fish.

    bash: `eval "$(kling completion bash)"` in ~/.bashrc; zsh: save it as `_kling` on $fpath;
    fish: `kling completion fish > ~/.config/fish/completions/kling.fish`."""
    if shell not in SHELLS:
        raise InvalidRequestError(f"No completion for {shell!r}; use bash, zsh or fish.")
    # typer has no public function for a named shell (`--show-completion` detects the running
    # one); pyproject pins typer's minor versions, so this private import stays stable.
    from typer._completion_shared import get_completion_script

    output: Output = ctx.obj
    output.result(
        get_completion_script(prog_name="kling", complete_var="_KLING_COMPLETE", shell=shell)
    )
    return ExitCode.OK
