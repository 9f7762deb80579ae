"""The server's settings: portal.toml, then the command line on top; every value checked before anything starts.

Sections mirror E-IMZO-server's config.properties where it has one (`[cache] type = "redis"` is its
`cache.type=redis`). Unknown sections or keys are errors: a typo must not silently leave a protection off.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from eimzo_agent.crypto.anchors import bundled_anchors, read_anchor_file
from eimzo_agent.login_challenge import normalise_origin

ChallengeFormat = Literal["origin", "uuid"]
RevocationMode = Literal["require", "prefer", "off"]

DEFAULT_PORT = 8080  # E-IMZO-server's
DEFAULT_MAX_BODY = 16 * 1024 * 1024


class SettingsError(ValueError):
    """A setting is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class PortalSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: A second listen address for /backend/* only (then the main one does not answer /backend/*).
    backend_host: str | None = None
    backend_port: int | None = None
    #: When set, /backend/* requires the header X-Backend-Secret with this value.
    backend_secret: str | None = None
    #: Extra anchor files (test CAs); the bundled national root is always trusted unless `bundled_root` is off.
    anchor_files: tuple[Path, ...] = ()
    bundled_root: bool = True
    tsa_url: str | None = None
    tsa_timeout: float = 10.0
    #: None = this process's memory; "redis://..." = shared.
    redis_url: str | None = None
    revocation: RevocationMode = "require"
    revocation_timeout: float = 5.0
    challenge_ttl: float = 120.0
    challenge_format: ChallengeFormat = "origin"
    #: The sites (scheme://host[:port]) this server issues challenges for; empty = whatever Host a request names.
    #: Set it in production: otherwise a phishing site that reaches the server (or the portal's default nginx
    #: server) with its own Host header gets a challenge naming itself, which our agent would sign on its page.
    challenge_origins: tuple[str, ...] = ()
    #: How far a login's signingTime may be from the server clock.
    max_clock_skew: float = 300.0
    max_body_bytes: int = DEFAULT_MAX_BODY
    #: /frontend/* requests per second per client IP, and the burst allowed above that.
    rate_per_ip: float = 20.0
    rate_burst: int = 40
    demo: bool = False
    anchors: tuple[bytes, ...] = field(default=(), repr=False)

    def with_anchors(self) -> PortalSettings:
        """The settings with `anchors` read (bundled root + files); SettingsError naming a bad file."""
        found: list[bytes] = list(bundled_anchors()) if self.bundled_root else []
        for path in self.anchor_files:
            try:
                found += read_anchor_file(path)
            except OSError as exc:
                raise SettingsError(f"trust anchor {path}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise SettingsError(f"trust anchor {path}: {exc}") from None
        if not found:
            raise SettingsError("no trust anchors: keep the bundled root or name an anchor file")
        return replace(self, anchors=tuple(dict.fromkeys(found)))


# section -> key -> (attribute, type check)
_KEYS: dict[str, dict[str, tuple[str, type | tuple[type, ...]]]] = {
    "server": {"host": ("host", str), "port": ("port", int)},
    "backend": {"host": ("backend_host", str), "port": ("backend_port", int), "secret": ("backend_secret", str)},
    "trust": {"anchors": ("anchor_files", list), "bundled_root": ("bundled_root", bool)},
    "tsa": {"url": ("tsa_url", str), "timeout": ("tsa_timeout", (int, float))},
    "cache": {"type": ("cache_type", str), "redis_url": ("redis_url", str)},
    "revocation": {"mode": ("revocation", str), "timeout": ("revocation_timeout", (int, float))},
    "challenge": {"ttl": ("challenge_ttl", (int, float)), "format": ("challenge_format", str),
                  "max_clock_skew": ("max_clock_skew", (int, float)), "origins": ("challenge_origins", list)},
    "limits": {"max_body_bytes": ("max_body_bytes", int), "rate_per_ip": ("rate_per_ip", (int, float)),
               "rate_burst": ("rate_burst", int)},
    "demo": {"enabled": ("demo", bool)},
}


def load_settings(path: Path | None, overrides: dict[str, Any]) -> PortalSettings:
    """Defaults < the file < `overrides` (command-line values that were given; None means not given)."""
    values: dict[str, Any] = _read_file(path) if path is not None else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return _checked(values, str(path) if path else "the command line")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        keys = _KEYS.get(section)
        if keys is None or not isinstance(table, dict):
            raise SettingsError(f"{path}: unknown section [{section}] (known: {', '.join(_KEYS)})")
        for key, value in table.items():
            if key not in keys:
                raise SettingsError(f"{path}: unknown key {key!r} in [{section}] (known: {', '.join(keys)})")
            attribute, kind = keys[key]
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise SettingsError(f"{path}: [{section}] {key} has the wrong type ({type(value).__name__})")
            if attribute == "anchor_files":
                if not all(isinstance(item, str) for item in value):
                    raise SettingsError(f"{path}: [trust] anchors must be a list of file names")
                value = tuple((path.parent / item) for item in value)
            if attribute == "challenge_origins":
                value = _origins(value, path)
            values[attribute] = value
    if "cache_type" in values:
        cache = values.pop("cache_type")
        if cache not in ("memory", "redis"):
            raise SettingsError(f'{path}: [cache] type must be "memory" or "redis", not {cache!r}')
        if cache == "redis" and "redis_url" not in values:
            raise SettingsError(f'{path}: [cache] type = "redis" needs redis_url = "redis://host:6379/0"')
        if cache == "memory":
            values.pop("redis_url", None)
    return values


def _origins(value: list[Any], path: Path) -> tuple[str, ...]:
    """[challenge] origins, each normalised the way challenges name a site."""
    origins = []
    for item in value:
        try:
            origins.append(normalise_origin(item if isinstance(item, str) else ""))
        except ValueError:
            message = f'{path}: [challenge] origins: {item!r} is not an origin like "https://my.portal.uz"'
            raise SettingsError(message) from None
    return tuple(origins)


def _checked(values: dict[str, Any], where: str) -> PortalSettings:
    settings = replace(PortalSettings(), **values)
    problems = []
    for name in ("port", "backend_port"):
        port = getattr(settings, name)
        if port is not None and not 0 <= port <= 65535:
            problems.append(f"{name} must be 0..65535, not {port}")
    if settings.backend_host is not None and settings.backend_port is None:
        problems.append("a backend host needs a backend port")
    if settings.revocation not in ("require", "prefer", "off"):
        problems.append(f"revocation mode must be require, prefer or off, not {settings.revocation!r}")
    if settings.challenge_format not in ("origin", "uuid"):
        problems.append(f"challenge format must be origin or uuid, not {settings.challenge_format!r}")
    for name in ("challenge_ttl", "max_clock_skew", "rate_per_ip", "tsa_timeout", "revocation_timeout"):
        if not getattr(settings, name) > 0:
            problems.append(f"{name} must be positive")
    if settings.max_body_bytes < 1024 or settings.rate_burst < 1:
        problems.append("max_body_bytes must be at least 1024 and rate_burst at least 1")
    if settings.backend_secret is not None and len(settings.backend_secret) < 16:
        problems.append("the backend secret must be at least 16 characters")
    if settings.redis_url is not None and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("the Redis URL must start with redis://, rediss:// or unix://")
    if settings.tsa_url is not None and not settings.tsa_url.startswith(("http://", "https://")):
        problems.append("the TSA URL must be http:// or https://")
    if problems:
        raise SettingsError(f"{where}: {'; '.join(problems)}")
    return settings
