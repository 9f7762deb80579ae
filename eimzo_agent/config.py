"""Settings: built-in defaults, the user's TOML file, the admin's TOML file, then command-line options.

Precedence, lowest first: defaults < user file (or `--config FILE`) < admin file < command-line options.
The admin file (e.g. /etc/xdg/eimzo-agent/config.toml, C:\\ProgramData\\eimzo-agent\\config.toml) is managed by IT
and overrides whatever the user's own file says; options given on the command line are explicit acts of whoever
started the agent (the service unit an admin wrote, a developer, a test) and win over both.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from eimzo_agent.i18n import LANGUAGES

APP_NAME = "eimzo-agent"
DEFAULT_WS_PORT = 64646
DEFAULT_WSS_PORT = 64443
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Bytes of requests all connections together may hold in memory before new data is refused.
DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024
#: E-IMZO portals keep a keyId for 6 hours; never let one expire sooner.
MIN_KEY_ID_TTL_HOURS = 6.0

#: Environment variables that move the admin file and the askpass program (tests, kiosks, packagers).
ENV_SYSTEM_CONFIG = "EIMZO_AGENT_SYSTEM_CONFIG"
ENV_ASKPASS = "EIMZO_AGENT_ASKPASS"


class ConfigError(ValueError):
    """A settings file is unreadable or holds a value of the wrong kind; the message names file and key."""


@dataclass
class AgentConfig:
    ws_port: int = DEFAULT_WS_PORT
    wss_port: int = DEFAULT_WSS_PORT
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    key_roots: list[Path] = field(default_factory=list)
    scan_system_locations: bool = True
    allowed_domains: list[str] = field(default_factory=list)
    #: Ask the person about sites with neither an API key nor an allowlist entry (False: refuse them, -1022).
    ask_unknown_sites: bool = True
    language: str | None = None
    askpass: str | None = None
    tray: bool = True
    password_tries: int = 3
    prompt_timeout_seconds: float = 300.0
    key_id_ttl_hours: float = 24.0
    #: PKCS#11 modules for tokens; None = the per-OS defaults found on disk (see keys/pkcs11_store.py).
    pkcs11_modules: list[str] | None = None
    max_connections: int = 256
    requests_per_second: float = 50.0
    request_burst: int = 200
    max_running_per_site: int = 8
    idle_timeout_seconds: float = 120.0
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    #: Files that were read, in order, for `eimzo-agent` to show where a setting came from.
    sources: list[Path] = field(default_factory=list)


#: TOML layout: section -> key -> (AgentConfig attribute, expected type).
_SCHEMA: dict[str, dict[str, tuple[str, type | tuple[type, ...]]]] = {
    "server": {
        "ws_port": ("ws_port", int),
        "wss_port": ("wss_port", int),
        "max_frame_bytes": ("max_frame_bytes", int),
    },
    "keys": {
        "roots": ("key_roots", list),
        "scan_system_locations": ("scan_system_locations", bool),
        "key_id_ttl_hours": ("key_id_ttl_hours", (int, float)),
        "pkcs11_modules": ("pkcs11_modules", list),
    },
    "sites": {
        "allowed_domains": ("allowed_domains", list),
        "ask_unknown_sites": ("ask_unknown_sites", bool),
    },
    "limits": {
        "max_connections": ("max_connections", int),
        "requests_per_second": ("requests_per_second", (int, float)),
        "request_burst": ("request_burst", int),
        "max_running_per_site": ("max_running_per_site", int),
        "idle_timeout_seconds": ("idle_timeout_seconds", (int, float)),
        "max_buffered_bytes": ("max_buffered_bytes", int),
    },
    "ui": {
        "language": ("language", str),
        "askpass": ("askpass", str),
        "tray": ("tray", bool),
        "password_tries": ("password_tries", int),
        "prompt_timeout_seconds": ("prompt_timeout_seconds", (int, float)),
    },
}


def user_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def system_config_path() -> Path:
    override = os.environ.get(ENV_SYSTEM_CONFIG)
    if override:
        return Path(override)
    return platformdirs.site_config_path(APP_NAME) / "config.toml"


def user_data_path() -> Path:
    return platformdirs.user_data_path(APP_NAME)


def tls_path() -> Path:
    """The wss identity: server key and certificate, the local CA's certificate (never its key)."""
    return user_data_path() / "tls"


def dev_ca_path() -> Path:
    return user_data_path() / "dev-ca"


def load_config(user_file: Path | None = None, overrides: dict[str, Any] | None = None) -> AgentConfig:
    """Defaults, then the user file (`user_file` replaces the default one), then the admin file, then `overrides`.

    `overrides` holds command-line values (None = not given); `key_roots` from the command line are added in
    front of the configured ones rather than replacing them.
    """
    config = AgentConfig()
    explicit = user_file is not None
    user_file = user_file or user_config_path()
    for path, required in ((user_file, explicit), (system_config_path(), False)):
        if path.is_file():
            _apply(config, _read(path), path)
            config.sources.append(path)
        elif required:
            raise ConfigError(f"{path}: no such file")
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name == "key_roots":
            config.key_roots = [Path(p).expanduser() for p in value] + config.key_roots
        elif name == "pkcs11_modules":  # like key_roots: command-line modules come first, configured ones stay
            config.pkcs11_modules = [str(Path(p).expanduser()) for p in value] + (config.pkcs11_modules or [])
        else:
            setattr(config, name, value)
    _validate(config)
    return config


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _apply(config: AgentConfig, data: dict[str, Any], path: Path) -> None:
    for section, values in data.items():
        schema = _SCHEMA.get(section)
        if schema is None or not isinstance(values, dict):
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(_SCHEMA)})")
        for key, value in values.items():
            if key not in schema:
                raise ConfigError(f"{path}: unknown setting {section}.{key} (known: {', '.join(schema)})")
            attribute, kind = schema[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: {section}.{key} has the wrong type ({type(value).__name__})")
            if kind is list and not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{path}: {section}.{key} must be a list of strings")
            if attribute == "key_roots":
                value = [Path(p).expanduser() for p in value]
            setattr(config, attribute, value)


def _validate(config: AgentConfig) -> None:
    for name in ("ws_port", "wss_port"):
        port = getattr(config, name)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name} must be between 0 and 65535, not {port}")
    if config.max_frame_bytes < 1024:
        raise ConfigError("max_frame_bytes must be at least 1024")
    if config.max_buffered_bytes < config.max_frame_bytes + 1024 * 1024:
        raise ConfigError("limits.max_buffered_bytes must be at least server.max_frame_bytes + 1 MiB "
                          f"({config.max_frame_bytes + 1024 * 1024}), or the largest request could never arrive")
    if config.language is not None and config.language not in LANGUAGES:
        raise ConfigError(f"language must be one of {', '.join(LANGUAGES)}, not {config.language!r}")
    if not 1 <= config.password_tries <= 10:
        raise ConfigError("password_tries must be between 1 and 10")
    if config.prompt_timeout_seconds <= 0:
        raise ConfigError("prompt_timeout_seconds must be positive")
    for name in ("max_connections", "request_burst", "max_running_per_site"):
        if getattr(config, name) < 1:
            raise ConfigError(f"limits.{name} must be at least 1")
    if config.requests_per_second <= 0 or config.idle_timeout_seconds <= 0:
        raise ConfigError("limits.requests_per_second and limits.idle_timeout_seconds must be positive")
    config.key_id_ttl_hours = max(float(config.key_id_ttl_hours), MIN_KEY_ID_TTL_HOURS)
