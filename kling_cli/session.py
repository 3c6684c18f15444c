"""A provider session: the provider chosen as every command chooses it, its base URL and key,
or the in-process emulator standing in for it. No printing: notes go to a callback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kling_cli.config import (
    ConfigFile,
    resolve_base_url,
    resolve_key,
    resolve_provider_id,
    resolve_secret_key,
    resolve_service_urls,
)
from kling_cli.errors import ConfigError

if TYPE_CHECKING:
    from kling_cli.providers.base import Endpoint, Provider

EMULATE_DEFAULT_PROVIDER = "runware"
EMULATOR_LATENCY_ENV = "KLING_EMULATOR_LATENCY"
DEFAULT_EMULATOR_LATENCY = 2.0

Notify = Callable[[str], None]


@dataclass(frozen=True)
class ProviderSession:
    provider: Provider
    endpoint: Endpoint
    emulated: bool = False


def _ignore(text: str) -> None:
    pass


@contextmanager
def open_session(
    provider_id: str | None,
    *,
    emulate: bool,
    config: ConfigFile,
    note: Notify = _ignore,
) -> Iterator[ProviderSession]:
    """Resolve the provider, its base URL and key; under `emulate`, start the emulator for
    the duration of the block and point the provider at it."""
    chosen = choose_provider(provider_id, config, emulate=emulate)
    with open_sessions([chosen], emulate=emulate, config=config, note=note) as sessions:
        yield sessions[config.registry.lookup(chosen).id]


def choose_provider(provider_id: str | None, config: ConfigFile, *, emulate: bool) -> str:
    """The provider a run uses: `--provider`, `$KLING_PROVIDER`, `default_provider`, the only
    one with a key (under `emulate`, Runware); `ConfigError` when none can be chosen."""
    chosen = resolve_provider_id(provider_id, config)
    if chosen is not None and ("," in chosen or chosen.strip().lower() == "auto"):
        from kling_cli.errors import InvalidRequestError

        raise InvalidRequestError(
            f"--provider {chosen} names several providers (failover, `auto`), which one "
            "generation of one aspect ratio, or a batch, can use; name one provider here."
        )
    if emulate:
        chosen = chosen or EMULATE_DEFAULT_PROVIDER
    elif chosen is None:
        chosen = _only_provider_with_key(config)
    if chosen is None:
        raise ConfigError(
            "No provider is set up yet.",
            hint=(
                f"Store a key with `kling config set-key <id>` (ids: {', '.join(config.registry)}) "
                "or set KLING_<ID>_API_KEY, then pass --provider or set KLING_PROVIDER. "
                "To try kling-cli offline first, add --emulate."
            ),
        )
    return chosen


@contextmanager
def open_sessions(
    provider_ids: Iterable[str],
    *,
    emulate: bool,
    config: ConfigFile,
    note: Notify = _ignore,
) -> Iterator[dict[str, ProviderSession]]:
    """Sessions for several providers at once (a batch), all checked before any is used;
    under `emulate`, one emulator serves them all."""
    from kling_cli.providers.base import Endpoint

    providers = {p.id: p for p in (config.registry.lookup(i) for i in provider_ids)}
    if emulate:
        from kling_cli.emulator import EMULATOR_API_KEY, Emulator

        with Emulator(latency=_emulator_latency()) as emulator:
            names = ", ".join(p.name for p in providers.values())
            note(f"Using the built-in {names} emulator (offline, no cost).")
            yield {
                p.id: ProviderSession(
                    p,
                    Endpoint(
                        emulator.base_url(p.copy_of or p.id),
                        EMULATOR_API_KEY,
                        EMULATOR_API_KEY if p.needs_secret_key else None,
                        emulator.service_urls(p.copy_of or p.id),
                    ),
                    emulated=True,
                )
                for p in providers.values()
            }
        return
    yield {p.id: ProviderSession(p, _endpoint(p, config)) for p in providers.values()}


def _endpoint(provider: Provider, config: ConfigFile) -> Endpoint:
    from kling_cli.providers.base import Endpoint

    key = resolve_key(provider, config)
    if key is None:
        env_names = " or ".join(
            f"${name}" for name in (provider.key_env_var, *provider.key_env_vars)
        )
        raise ConfigError(
            f"No API key for {provider.name}.",
            hint=(
                f"Store one with `kling config set-key {provider.id}` or set {env_names}; "
                "or try it offline with --emulate."
            ),
        )
    secret = resolve_secret_key(provider, config)
    relay = config.get(f"providers.{provider.id}.auth") == "bearer"
    if relay:
        secret = None
    elif provider.needs_secret_key and secret is None:
        env_names = " or ".join(
            f"${name}" for name in (provider.secret_env_var, *provider.secret_env_vars)
        )
        raise ConfigError(
            f"{provider.name} needs a secret key as well as the access key.",
            hint=f"Store both with `kling config set-key {provider.id}` or set {env_names}.",
        )
    return Endpoint(
        resolve_base_url(provider, config),
        key.value,
        secret.value if secret else None,
        resolve_service_urls(provider, config),
    )


def _only_provider_with_key(config: ConfigFile) -> str | None:
    """With no provider chosen, the one provider that has a key; None when none has."""
    configured = [
        p.id
        for p in config.registry.infos().values()
        if resolve_key(p, config, check=False) is not None
    ]
    if len(configured) > 1:
        raise ConfigError(
            f"Keys are set for several providers ({', '.join(configured)}); choose one.",
            hint="Pass --provider, set KLING_PROVIDER, or run "
            "`kling config set default_provider <id>`.",
        )
    return configured[0] if configured else None


def _emulator_latency() -> float:
    raw = os.environ.get(EMULATOR_LATENCY_ENV)
    if not raw:
        return DEFAULT_EMULATOR_LATENCY
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(
            f"{EMULATOR_LATENCY_ENV} must be a number of seconds, not {raw!r}."
        ) from None


def dry_run_endpoint(provider: Provider, config: ConfigFile) -> tuple[Endpoint, bool]:
    """The endpoint a real run would use, with a stand-in where no key is set (a dry run
    shows requests with keys redacted, so it needs none); and whether a key is set."""
    from kling_cli.providers.base import Endpoint

    key = resolve_key(provider, config)
    secret = resolve_secret_key(provider, config)
    endpoint = Endpoint(
        resolve_base_url(provider, config),
        key.value if key else "dry-run-key",
        (secret.value if secret else "dry-run-secret") if provider.needs_secret_key else None,
        resolve_service_urls(provider, config),
    )
    return endpoint, key is not None
