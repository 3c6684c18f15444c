"""The TOML config file, and where base URLs and the default provider come from (keys:
kling_cli.keys, re-exported here).

Layout of `config.toml`:

    default_provider = "runware"

    [providers.runware]
    api_key = "..."
    base_url = "https://api.runware.ai/v1"
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kling_cli.errors import ConfigError, KlingError
from kling_cli.keys import ResolvedKey as ResolvedKey
from kling_cli.keys import check_key_text as check_key_text
from kling_cli.keys import key_problem as key_problem
from kling_cli.keys import mask_key as mask_key
from kling_cli.keys import resolve_key as resolve_key
from kling_cli.keys import resolve_secret_key as resolve_secret_key
from kling_cli.providers import Registry
from kling_cli.providers.catalog import ProviderInfo
from kling_cli.urls import is_loopback

APP_NAME = "kling-cli"
CONFIG_FILE_NAME = "config.toml"
CONFIG_DIR_ENV = "KLING_CONFIG_DIR"
PROVIDER_ENV = "KLING_PROVIDER"

# Settings `kling config set/get/unset` accept, besides `providers.<id>.api_key`
# (which only `kling config set-key` writes: a key must never be typed into argv).
PROVIDER_SETTINGS = ("api_key", "secret_key", "base_url", "auth", "copy_of")
# `auth = "bearer"`: a Kling-native relay (CometAPI and similar) that takes its own key as a
# plain Bearer token instead of a JWT signed with a secret key.
AUTH_MODES = ("jwt", "bearer")
SECRET_SETTINGS = ("api_key", "secret_key")


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    return config_dir(environ) / CONFIG_FILE_NAME


@dataclass
class ConfigFile:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # The built-in providers and the named copies this file declares.
    registry: Registry = field(default_factory=Registry.builtin)
    # The file's text as read: `set`/`unset` edit it in place (tomlkit), so the user's
    # comments, blank lines, order and unknown tables are written back as they were.
    text: str = ""

    @classmethod
    def load(cls, path: Path) -> ConfigFile:
        config = cls(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return config
        except OSError as exc:
            raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from None
        try:
            config.text = raw.decode("utf-8")
            config.data = tomllib.loads(config.text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"The config file {path} is not valid TOML ({exc}); fix or delete it."
            ) from None
        if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            config.warnings.append(
                f"{path} is readable by other users and may hold API keys; run `chmod 600 {path}`."
            )
        config.registry = Registry.builtin().with_copies(config.named_copies())
        config.warnings.extend(config.unknown_settings())
        return config

    def unknown_settings(self) -> list[str]:
        """A warning per setting kling-cli does not know (a misspelled `base_ur1` would
        otherwise be ignored without a word)."""
        found: list[str] = []
        for name, value in self.data.items():
            if name == "providers" and isinstance(value, dict):
                for provider_id, table in value.items():
                    found += self._unknown_provider_settings(provider_id, table)
            elif name not in ("default_provider", "route"):
                found.append(name)
        return [
            f"{self.path}: unknown setting {name!r} is ignored (see `kling config --help`)."
            for name in found
        ]

    def _unknown_provider_settings(self, provider_id: str, table: Any) -> list[str]:
        info = self.registry.infos().get(provider_id)
        if info is None or not isinstance(table, dict):
            return [f"providers.{provider_id}"]
        known = (*PROVIDER_SETTINGS, *(f"{name}_url" for name in info.service_urls))
        return [f"providers.{provider_id}.{key}" for key in table if key not in known]

    def named_copies(self) -> dict[str, object]:
        """`providers.<id>.copy_of` settings, by id."""
        tables = self.data.get("providers")
        if not isinstance(tables, dict):
            return {}
        return {
            provider_id: table["copy_of"]
            for provider_id, table in tables.items()
            if isinstance(table, dict) and "copy_of" in table
        }

    def get(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, dotted: str, value: Any) -> None:
        import tomlkit

        document = self._document()
        *parents, leaf = dotted.split(".")
        node: Any = document
        created = False
        for depth, part in enumerate(parents):
            created = part not in node
            if created:
                # `[providers.kling]` rather than an empty `[providers]` header above it.
                node[part] = tomlkit.table(is_super_table=depth + 1 < len(parents))
            child = node[part]
            if not isinstance(child, dict):
                raise ConfigError(f"{dotted} cannot be set: {part} is not a table in {self.path}.")
            node = child
        node[leaf] = value
        if created:
            # A blank line before whatever table follows; not doubled at the end of the file.
            node.add(tomlkit.nl())
        self._keep(document, trim=created)

    def unset(self, dotted: str) -> bool:
        document = self._document()
        *parents, leaf = dotted.split(".")
        path: list[Any] = [document]
        for part in parents:
            node = path[-1]
            path.append(node.get(part) if isinstance(node, dict) else None)
        if not isinstance(path[-1], dict) or leaf not in path[-1]:
            return False
        del path[-1][leaf]
        # A table left empty goes too, as it would never have been written for nothing.
        for parent, part in zip(reversed(path[:-1]), reversed(parents), strict=True):
            if len(parent[part]) == 0:
                del parent[part]
        self._keep(document)
        return True

    def _document(self) -> Any:
        """The file as a tomlkit document (comments and layout included)."""
        import tomlkit

        return tomlkit.parse(self.text)

    def _keep(self, document: Any, *, trim: bool = False) -> None:
        import tomlkit

        self.text = tomlkit.dumps(document)
        if trim:
            self.text = self.text.rstrip("\n") + "\n"
        self.data = document.unwrap()

    def save(self) -> None:
        """Write atomically: a private temporary file in the same directory, then rename."""
        directory = self.path.parent
        if not directory.exists():
            # Created private; an existing directory keeps the mode its owner gave it (it may
            # be shared on purpose, e.g. a 1777 KLING_CONFIG_DIR). The file itself is 0600.
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if os.name == "posix":
                os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
        fd, temp_name = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(self.text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def load_config(warn: Callable[[str], None] = lambda _text: None) -> ConfigFile:
    """The config file at `config_path()`, each of its warnings handed to `warn`. Raises
    ConfigError for a file that cannot be read or parsed."""
    config = ConfigFile.load(config_path())
    for warning in config.warnings:
        warn(warning)
    return config


def check_setting_name(dotted: str, registry: Registry) -> None:
    """Accept `default_provider` and `providers.<id>.<setting>`, where a setting is one of
    PROVIDER_SETTINGS or the URL of one of the provider's service hosts (`storage_url`);
    `copy_of` may name a new id (a named copy is made by setting it)."""
    if dotted in ("default_provider", "route"):
        return
    parts = dotted.split(".")
    if len(parts) == 3 and parts[0] == "providers" and parts[2] == "copy_of":
        return
    if len(parts) == 3 and parts[0] == "providers":
        try:
            provider = registry.info(parts[1])
        except KlingError:
            raise ConfigError(
                f"Unknown provider {parts[1]!r} in {dotted!r}; choose one of {', '.join(registry)}."
            ) from None
        services = [f"{name}_url" for name in provider.service_urls]
        if parts[2] in (*PROVIDER_SETTINGS, *services):
            return
    raise ConfigError(
        f"Unknown setting {dotted!r}; settings are default_provider, route and "
        f"providers.<id>.{{{','.join(PROVIDER_SETTINGS)}}} with <id> one of "
        f"{', '.join(registry)}."
    )


def resolve_base_url(
    provider: ProviderInfo, config: ConfigFile, environ: Mapping[str, str] | None = None
) -> str:
    return _resolve_url(provider, config, "base", provider.default_base_url, environ)


def resolve_service_urls(
    provider: ProviderInfo, config: ConfigFile, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The provider's other hosts (file storage...), each overridable like the base URL:
    `KLING_<ID>_<NAME>_URL` or `providers.<id>.<name>_url`."""
    return {
        name: _resolve_url(provider, config, name, default, environ)
        for name, default in provider.service_urls.items()
    }


def _resolve_url(
    provider: ProviderInfo,
    config: ConfigFile,
    name: str,
    default: str,
    environ: Mapping[str, str] | None,
) -> str:
    environ = os.environ if environ is None else environ
    env_var = f"KLING_{provider.id.upper()}_{name.upper()}_URL"
    setting = f"providers.{provider.id}.{name}_url"
    value = environ.get(env_var) or config.get(setting)
    if not value:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{setting} in {config.path} must be a string.")
    return check_base_url(value.rstrip("/"), setting=env_var)


def check_base_url(url: str, *, setting: str) -> str:
    """https everywhere; plain http only to this machine, so a key never crosses a network
    in the clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise ConfigError(
        f"Base URL {url!r} (from {setting}) must use https; plain http is allowed only for "
        "loopback hosts such as 127.0.0.1."
    )


def resolve_provider_id(
    explicit: str | None, config: ConfigFile, environ: Mapping[str, str] | None = None
) -> str | None:
    """The provider asked for: `explicit` (--provider), else $KLING_PROVIDER, else the config
    file's `default_provider` (a list is joined as `a,b`: tried in order, kling_cli.routing).
    An unknown id from the environment or the file raises ConfigError naming where it came
    from (an unknown --provider is the caller's to refuse)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    value = config.get("default_provider")
    if environ.get(PROVIDER_ENV):
        chosen, source = environ[PROVIDER_ENV], PROVIDER_ENV
    elif value:
        chosen = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        source = f"default_provider in {config.path}"
    else:
        return None
    for part in chosen.split(","):
        try:
            if part.strip().lower() != "auto":
                config.registry.info(part.strip())
        except KlingError:
            raise ConfigError(
                f"Unknown provider {part.strip()!r} (from {source}); choose one of "
                f"{', '.join(config.registry)}."
            ) from None
    return chosen
