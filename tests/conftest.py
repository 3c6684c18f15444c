"""Every test runs with its own config directory, no provider keys from the developer's
environment, a fixed terminal, and the working directory in a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kling_cli.cli import main
from kling_cli.emulator import EMULATOR_API_KEY, Emulator


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core. Most tests wait (on the emulator's latency, on `kling`
    subprocesses starting, on signals and sleeps), so a core serves two of them."""
    return 2 * (os.cpu_count() or 1)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from kling_cli.providers import PROVIDERS

    provider_variables = {
        name for p in PROVIDERS.values() for name in (*p.key_env_vars, *p.secret_env_vars)
    }
    for name in list(os.environ):
        if name.startswith("KLING_") or name.endswith("_API_KEY") or name in provider_variables:
            monkeypatch.delenv(name, raising=False)
    config_dir = tmp_path / "config"
    monkeypatch.setenv("KLING_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERMINAL_WIDTH", "100")
    monkeypatch.setenv("COLUMNS", "100")
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    yield config_dir


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(latency=0.2) as emu:
        yield emu


@pytest.fixture
def use_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Point every provider at the emulator, with the key it accepts, as a user would with
    a real provider: through the documented environment variables."""
    for provider in emulator.providers:
        monkeypatch.setenv(f"KLING_{provider.upper()}_BASE_URL", emulator.base_url(provider))
        monkeypatch.setenv(f"KLING_{provider.upper()}_API_KEY", EMULATOR_API_KEY)
        for name, url in emulator.service_urls(provider).items():
            monkeypatch.setenv(f"KLING_{provider.upper()}_{name.upper()}_URL", url)
    return emulator


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        import json

        return json.loads(self.stdout)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `kling ARGS...` in this process and capture what it prints."""

    def run(*args: str, stdin: str | None = None) -> CliResult:
        if stdin is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


Launched = Callable[[], list[str]]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Launched:
    """What xdg-open was handed so far, one target a call: a recording xdg-open first on
    PATH and a display to open on (the launcher is all that is replaced)."""
    folder = tmp_path / "launcher"
    folder.mkdir()
    log = folder / "calls"
    script = folder / "xdg-open"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{log}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")

    def calls() -> list[str]:
        found = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return found

    return calls
