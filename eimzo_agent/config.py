"""Settings: built-in defaults, the user's TOML file, the admin's TOML file, Group Policy, then command-line options.

Precedence, lowest first: defaults < user file (or `--config FILE`) < admin file < Group Policy (Windows) <
command-line options. The admin file (e.g. /etc/xdg/eimzo-agent/config.toml, C:\\ProgramData\\eimzo-agent\\config.toml)
is managed by IT and overrides whatever the user's own file says; options given on the command line are explicit
acts of whoever started the agent (the service unit an admin wrote, a developer, a test) and win over all.

Group Policy is the admin file's twin in the Windows registry, `HKLM\\SOFTWARE\\Policies\\eimzo-agent`: the same
sections and keys (`…\\sites` value `ask_unknown_sites`; a list as the numbered values "1", "2", … of a subkey,
`…\\sites\\allowed_domains`, as ADMX list policies write them). It is applied right after the admin file, key by
key, like a second admin file: a key set in both takes the registry's value, a key set in only one comes from that
one, lists are replaced whole, never merged. Group Policy wins because Windows re-applies it centrally while the
file is local to the machine. The ADMX templates (service_installers/windows/policy/) and the MSI's properties
write these values; `registry_policy` reads them (winreg is imported only on Windows).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import platformdirs

from eimzo_agent.i18n import LANGUAGES

log = logging.getLogger(__name__)

APP_NAME = "eimzo-agent"
DEFAULT_WS_PORT = 64646
DEFAULT_WSS_PORT = 64443
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Bytes of requests all connections together may hold in memory before new data is refused.
DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024
#: Decoded bytes one signing batch may hold (plugins/batch.py).
DEFAULT_BATCH_MAX_BYTES = 256 * 1024 * 1024
#: E-IMZO portals keep a keyId for 6 hours; never let one expire sooner.
MIN_KEY_ID_TTL_HOURS = 6.0
MAX_KEY_ID_TTL_HOURS = 24.0 * 365
#: The longest a question may wait for an answer, or a quiet connection stay open.
MAX_TIMEOUT_SECONDS = 24 * 3600
#: The longest "remember the password" E-IMZO offers (6 hours; ui/remember.py's MAX_REMEMBER_SECONDS).
MAX_REMEMBER_MINUTES = 360

#: Environment variables that move the admin file and the askpass program (tests, kiosks, packagers).
ENV_SYSTEM_CONFIG = "EIMZO_AGENT_SYSTEM_CONFIG"
ENV_ASKPASS = "EIMZO_AGENT_ASKPASS"
#: Where a setting came from when no file did (`AgentConfig.origins`, `eimzo-agent config show`).
DEFAULT_ORIGIN = "default"
COMMAND_LINE = "command line"
ENV_ASKPASS_ORIGIN = f"${ENV_ASKPASS}"


#: Group Policy's registry key under HKLM (Windows), and how it is named in messages and `AgentConfig.sources`.
POLICY_KEY = r"SOFTWARE\Policies\eimzo-agent"
POLICY_SOURCE = "HKLM\\" + POLICY_KEY
#: winreg's value types (the numbers are Windows' own; winreg is imported only on Windows).
REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 4, 7, 11


class ConfigError(ValueError):
    """A settings file is unreadable or holds a value of the wrong kind; the message names file and key."""


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")


def check_domain(raw: str) -> str:
    """One `allowed_domains` entry ("my.gov.uz", "*.soliq.uz") in the form the agent compares (lower case, no
    final dot); ValueError saying what is wrong otherwise.

    The agent compares the page's host only, so an address, a port or a wildcard in the middle could never match:
    refused rather than kept as a rule that silently allows nothing. An IPv4 address is a host too (an intranet
    portal at http://10.0.0.5 sends that Origin; browsers' policies accept https://10.0.0.5), but not under a
    wildcard. The MSI's ALLOWED_DOMAINS uses this same check.
    """
    entry = raw.strip().lower().rstrip(".")
    if "://" in entry or "/" in entry:
        host = entry.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        raise ValueError(f"{raw!r} is a web address; name only the host, e.g. {host!r}")
    if ":" in entry:
        raise ValueError(f"{raw!r} has a port; name only the host, e.g. {entry.split(':', 1)[0]!r} (the agent allows "
                         "a host on every port)")
    if "*" in entry and not (entry.startswith("*.") and "*" not in entry[2:]):
        raise ValueError(f"{raw!r}: a wildcard may only start an entry, as in '*.soliq.uz'")
    if not entry.startswith("*.") and _is_ipv4(entry):
        return entry
    if not _DOMAIN.fullmatch(entry) or entry.removeprefix("*.").replace(".", "").isdigit():
        raise ValueError(f"{raw!r} is not a host name (expected e.g. 'my.gov.uz' or '*.soliq.uz')")
    return entry


def _is_ipv4(text: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(text)) == text  # dotted-quad only: no "010.0.0.5", no "167772165"
    except ValueError:
        return False


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
    #: [limits]: the most documents, and decoded bytes in all, one batch.create_pkcs7 may sign (one question).
    batch_max_documents: int = 500
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    #: [passwords]: may the person have a key password remembered for a site, and for how long at most (minutes).
    allow_remember: bool = True
    remember_max_minutes: int = MAX_REMEMBER_MINUTES
    #: [verify]: certificate files (PEM or DER) trusted as roots by pkcs7.get_pkcs7_*_info, besides the bundled
    #: national root (e.g. an organisation's own CA, or the dev CA in tests).
    trust_anchors: list[Path] = field(default_factory=list)
    #: Files that were read, in order, for `eimzo-agent` to show where a setting came from.
    sources: list[Path] = field(default_factory=list)
    #: "section.key" -> where its value came from (a file, Group Policy, `$EIMZO_AGENT_ASKPASS`, COMMAND_LINE);
    #: keys left at their default are absent.
    origins: dict[str, str] = field(default_factory=dict)


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
        "batch_max_documents": ("batch_max_documents", int),
        "batch_max_bytes": ("batch_max_bytes", int),
    },
    "ui": {
        "language": ("language", str),
        "askpass": ("askpass", str),
        "tray": ("tray", bool),
        "password_tries": ("password_tries", int),
        "prompt_timeout_seconds": ("prompt_timeout_seconds", (int, float)),
    },
    "passwords": {
        "allow_remember": ("allow_remember", bool),
        "remember_max_minutes": ("remember_max_minutes", int),
    },
    "verify": {
        "trust_anchors": ("trust_anchors", list),
    },
}


#: AgentConfig attribute -> "section.key" (for messages and `origins`).
_SETTING_OF = {attribute: f"{section}.{key}" for section, keys in _SCHEMA.items()
               for key, (attribute, _kind) in keys.items()}


def settings_layout() -> list[tuple[str, str, str]]:
    """(section, key, AgentConfig attribute) of every setting, in the order the files document them."""
    return [(section, key, attribute) for section, keys in _SCHEMA.items() for key, (attribute, _kind) in keys.items()]


#: What a value of each schema type looks like, for "has the wrong type" messages.
_EXPECTED: dict[type | tuple[type, ...], str] = {
    int: "expected a whole number", (int, float): "expected a number", bool: "expected true or false",
    str: "expected a string in quotes", list: 'expected a list of strings, e.g. ["a", "b"]'}


@dataclass(frozen=True)
class Problem:
    """Something about the settings on this machine: an error stops `serve`, a warning is only logged."""

    error: bool
    message: str


def machine_problems(config: AgentConfig) -> list[Problem]:
    """What load_config cannot judge because it changes with the machine: the askpass program must exist and run
    (else every question would silently be a cancel), key folders should exist (a warning only: flash drives come
    and go)."""
    problems = []
    if config.askpass:
        where = f"{config.origins.get('ui.askpass', DEFAULT_ORIGIN)}: ui.askpass = {config.askpass!r}"
        if shutil.which(config.askpass) is None:
            path = Path(config.askpass)
            state = ("is not an executable program" if path.is_file() else "is not a program" if path.exists()
                     else "does not exist" if os.sep in config.askpass or path.is_absolute() else "is not on PATH")
            problems.append(Problem(True, f"{where}: the program {state}; expected an executable file that prints "
                                          "the password (or remove the setting to use the dialog)"))
    for anchor in config.trust_anchors:
        if not anchor.is_file():
            where = config.origins.get("verify.trust_anchors", DEFAULT_ORIGIN)
            state = "is not a file" if anchor.exists() else "does not exist"
            problems.append(Problem(True, f"{where}: verify.trust_anchors: the certificate file {anchor} {state}; "
                                          "expected a PEM or DER certificate file"))
    for root in config.key_roots:
        if not root.is_dir():
            where = config.origins.get("keys.roots", DEFAULT_ORIGIN)
            problems.append(Problem(False, f"{where}: keys.roots: the key folder {root} does not exist (yet: a "
                                           "flash drive not plugged in?)"))
    return problems


def user_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.toml"


def system_config_path() -> Path:
    override = os.environ.get(ENV_SYSTEM_CONFIG)
    if override:
        return Path(override)
    return platformdirs.site_config_path(APP_NAME, appauthor=False) / "config.toml"


def user_data_path() -> Path:
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def tls_path() -> Path:
    """The wss identity: server key and certificate, the local CA's certificate (never its key)."""
    return user_data_path() / "tls"


def dev_ca_path() -> Path:
    return user_data_path() / "dev-ca"


def load_config(user_file: Path | None = None, overrides: dict[str, Any] | None = None, *,
                policy: PolicyReader | None = None) -> AgentConfig:
    """Defaults, then the user file (`user_file` replaces the default one), then the admin file, then Group Policy
    (`policy`, default: the Windows registry; nothing elsewhere), then $EIMZO_AGENT_ASKPASS, then `overrides`.

    `overrides` holds command-line values (None = not given); `key_roots` from the command line are added in
    front of the configured ones rather than replacing them. Every value is checked (ConfigError naming where it
    came from and what is expected); what depends on the machine (askpass program, key folders) is left to
    `machine_problems`, because `keys` and `doctor` must work while a flash drive is out.
    """
    config = AgentConfig()
    explicit = user_file is not None
    user_file = user_file or user_config_path()
    admin_file = system_config_path()
    if os.environ.get(ENV_SYSTEM_CONFIG) and not admin_file.is_file() and str(admin_file) != os.devnull:
        # A moved admin file that is not there would silently drop the admin's policy.
        state = "is not a file" if admin_file.exists() else "does not exist"
        raise ConfigError(f"{ENV_SYSTEM_CONFIG} names the admin file {admin_file}, which {state} (unset the "
                          f"variable, or set it to {os.devnull} for no admin file)")
    for path, required in ((user_file, explicit), (admin_file, False)):
        if path.is_file():
            _apply(config, _read(path), path)
            config.sources.append(path)
        elif required:
            raise ConfigError(f"{path}: no such file")
    group_policy = registry_policy(policy)
    if group_policy:
        _apply(config, group_policy, Path(POLICY_SOURCE))
        config.sources.append(Path(POLICY_SOURCE))
    askpass = os.environ.get(ENV_ASKPASS)
    if askpass:  # like a command-line option: above every file, below --askpass itself
        config.askpass = askpass
        config.origins["ui.askpass"] = ENV_ASKPASS_ORIGIN
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        setting = _SETTING_OF[name]
        merged = name in ("key_roots", "pkcs11_modules") and setting in config.origins
        config.origins[setting] = f"{COMMAND_LINE} + {config.origins[setting]}" if merged else COMMAND_LINE
        if name == "key_roots":
            config.key_roots = [Path(p).expanduser() for p in value] + config.key_roots
        elif name == "pkcs11_modules":  # like key_roots: command-line modules come first, configured ones stay
            config.pkcs11_modules = [str(Path(p).expanduser()) for p in value] + (config.pkcs11_modules or [])
        else:
            setattr(config, name, value)
    _validate(config)
    return config


class PolicyReader(Protocol):
    """Read access to one registry hive: what `policy_settings` needs (a missing key reads as empty)."""

    def values(self, key: str) -> list[tuple[str, Any, int]]:
        """(name, data, REG_* type) of each value directly under `key`."""
        ...

    def subkeys(self, key: str) -> list[str]:
        ...


class WinregReader:
    """HKLM through winreg, in the 64-bit view (Windows only)."""

    def __init__(self) -> None:
        import winreg  # Windows only: not importable elsewhere

        self._winreg = winreg
        self._access = winreg.KEY_READ | winreg.KEY_WOW64_64KEY

    def _open(self, key: str) -> Any:
        return self._winreg.OpenKey(self._winreg.HKEY_LOCAL_MACHINE, key, 0, self._access)

    def values(self, key: str) -> list[tuple[str, Any, int]]:
        try:
            with self._open(key) as handle:
                count = self._winreg.QueryInfoKey(handle)[1]
                return [self._winreg.EnumValue(handle, i) for i in range(count)]
        except FileNotFoundError:
            return []

    def subkeys(self, key: str) -> list[str]:
        try:
            with self._open(key) as handle:
                count = self._winreg.QueryInfoKey(handle)[0]
                return [self._winreg.EnumKey(handle, i) for i in range(count)]
        except FileNotFoundError:
            return []


def registry_policy(reader: PolicyReader | None = None) -> dict[str, dict[str, Any]]:
    """Group Policy as the admin file's TOML shape; {} off Windows (or when nothing is set)."""
    if reader is None:
        if sys.platform != "win32":
            return {}
        try:
            reader = WinregReader()
        except OSError as exc:
            raise ConfigError(f"{POLICY_SOURCE}: cannot read the registry: {exc}") from None
    try:
        return policy_settings(reader)
    except OSError as exc:
        raise ConfigError(f"{POLICY_SOURCE}: cannot read the registry: {exc}") from None


def _list_order(name: str) -> tuple[int, str]:
    """ADMX lists name their values 1, 2, … 10: in numeric order, other names after them."""
    return (int(name), "") if name.isdigit() else (sys.maxsize, name.lower())


def policy_settings(reader: PolicyReader) -> dict[str, dict[str, Any]]:
    """Read `POLICY_KEY` through `reader` into {section: {key: value}} with the admin file's types.

    A value of the wrong registry type is a ConfigError naming it (as a wrong type in the file is). Names the
    agent does not know are logged and skipped: they come from a newer ADMX template, not from typing, and an
    older agent must keep running under a newer template.
    """
    data: dict[str, dict[str, Any]] = {}
    for name, _value, _kind in reader.values(POLICY_KEY):
        log.warning("%s: value %s is not a setting of this version; ignored", POLICY_SOURCE, name)
    for section_name in reader.subkeys(POLICY_KEY):
        section = section_name.lower()
        schema = _SCHEMA.get(section)
        where = f"{POLICY_SOURCE}\\{section_name}"
        if schema is None:
            log.warning("%s: not a settings section of this version; ignored", where)
            continue
        found: dict[str, Any] = {}
        for name, value, kind in reader.values(f"{POLICY_KEY}\\{section_name}"):
            key = name.lower()
            if key not in schema:
                log.warning("%s: value %s is not a setting of this version; ignored", where, name)
                continue
            found[key] = _from_registry(f"{where} {name}", schema[key][1], value, kind)
        for list_name in reader.subkeys(f"{POLICY_KEY}\\{section_name}"):
            key = list_name.lower()
            if key not in schema or schema[key][1] is not list:
                log.warning("%s\\%s: not a list setting of this version; ignored", where, list_name)
                continue
            entries = sorted(reader.values(f"{POLICY_KEY}\\{section_name}\\{list_name}"),
                             key=lambda entry: _list_order(entry[0]))
            found[key] = [_from_registry(f"{where}\\{list_name} {name}", str, value, kind)
                          for name, value, kind in entries]
        if found:
            data[section] = found
    return data


def _from_registry(where: str, expected: type | tuple[type, ...], value: Any, kind: int) -> Any:
    """One registry value as the type the TOML schema expects; ConfigError naming the value otherwise."""
    numeric = kind in (REG_DWORD, REG_QWORD) and isinstance(value, int)
    text = kind in (REG_SZ, REG_EXPAND_SZ) and isinstance(value, str)
    if expected is bool:
        if numeric and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: must be a DWORD 0 or 1")
    if expected is int:
        if numeric:
            return value
        raise ConfigError(f"{where}: must be a DWORD (a whole number)")
    if expected == (int, float):
        if numeric:
            return value
        if text:
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: must be a DWORD or a number as text")
    if expected is str:
        if text:
            return value
        raise ConfigError(f"{where}: must be a string (REG_SZ)")
    if expected is list:
        if kind == REG_MULTI_SZ and isinstance(value, list):
            return [str(item) for item in value]
        raise ConfigError(f"{where}: must be a subkey of numbered string values (or REG_MULTI_SZ)")
    raise ConfigError(f"{where}: unsupported setting type")


def policy_values(section: str, key: str, value: bool | int | float | str | Iterable[str]
                  ) -> list[tuple[str, str, int, int | str]]:
    """(key under HKLM, value name, REG_* type, data) that set `section.key` to `value` as Group Policy does: the
    writer's half of `policy_settings` (the MSI writes its properties with it)."""
    attribute_kind = _SCHEMA[section][key][1]
    section_key = f"{POLICY_KEY}\\{section}"
    if attribute_kind is list:
        assert not isinstance(value, str | bool | int | float)
        return [(f"{section_key}\\{key}", str(number), REG_SZ, item) for number, item in enumerate(value, 1)]
    if isinstance(value, int):  # bool too
        return [(section_key, key, REG_DWORD, int(value))]
    if isinstance(value, float):
        return [(section_key, key, REG_SZ, repr(value))]
    assert isinstance(value, str)
    return [(section_key, key, REG_SZ, value)]


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
                raise ConfigError(f"{path}: {section}.{key} has the wrong type ({type(value).__name__}): "
                                  f"{_EXPECTED[kind]}")
            if kind is list and not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{path}: {section}.{key} must be a list of strings, e.g. [\"a\", \"b\"]")
            if attribute == "key_roots":
                value = [Path(p).expanduser() for p in value]
            if attribute == "trust_anchors":
                value = [Path(p).expanduser() for p in value]
                relative = [str(p) for p in value if not p.is_absolute()]
                if relative:  # relative to what? the service's working folder is nobody's choice
                    raise ConfigError(f"{path}: {section}.{key}: {relative[0]!r} is not an absolute path; name "
                                      "the certificate file in full, e.g. \"/etc/eimzo-agent/our-ca.pem\"")
            if attribute == "allowed_domains":
                try:
                    value = [check_domain(entry) for entry in value]
                except ValueError as exc:
                    raise ConfigError(f"{path}: {section}.{key}: {exc}") from None
            config.origins[f"{section}.{key}"] = str(path)
            if attribute == "remember_max_minutes" and not 1 <= value <= MAX_REMEMBER_MINUTES:
                raise ConfigError(f"{path}: {section}.{key} must be a whole number of minutes from 1 to "
                                  f"{MAX_REMEMBER_MINUTES} (6 hours), not {value}; to forbid remembering, set "
                                  f"{section}.allow_remember = false")
            setattr(config, attribute, value)


def _validate(config: AgentConfig) -> None:
    """Refuse values that can never work, naming where each came from and what is expected. Nothing is clamped:
    a setting quietly changed is one nobody can reason about."""
    for name in ("ws_port", "wss_port"):
        lowest = 0 if _origin(config, name) == COMMAND_LINE else 1  # `--ws-port 0`: any free port (tests)
        if not lowest <= getattr(config, name) <= 65535:
            _refuse(config, name, f"expected a port number from {lowest} to 65535")
    if config.max_frame_bytes < 1024:
        _refuse(config, "max_frame_bytes", "expected at least 1024 (bytes)")
    if config.max_buffered_bytes < config.max_frame_bytes + 1024 * 1024:
        _refuse(config, "max_buffered_bytes", f"expected at least server.max_frame_bytes + 1 MiB "
                f"({config.max_frame_bytes + 1024 * 1024}), or the largest request could never arrive")
    if config.language is not None and config.language not in LANGUAGES:
        _refuse(config, "language", f"expected one of {', '.join(LANGUAGES)}")
    if not 1 <= config.password_tries <= 10:
        _refuse(config, "password_tries", "expected a whole number from 1 to 10")
    for name in ("max_connections", "request_burst", "max_running_per_site", "batch_max_documents",
                 "batch_max_bytes"):
        if getattr(config, name) < 1:
            _refuse(config, name, "expected a whole number, at least 1")
    if not (math.isfinite(config.requests_per_second) and config.requests_per_second > 0):
        _refuse(config, "requests_per_second", "expected a number above 0")
    for name in ("prompt_timeout_seconds", "idle_timeout_seconds"):
        if not 0 < getattr(config, name) <= MAX_TIMEOUT_SECONDS:  # NaN fails this too
            _refuse(config, name, f"expected seconds, above 0 and at most {MAX_TIMEOUT_SECONDS} (a day)")
    if not MIN_KEY_ID_TTL_HOURS <= config.key_id_ttl_hours <= MAX_KEY_ID_TTL_HOURS:
        _refuse(config, "key_id_ttl_hours", f"expected hours from {MIN_KEY_ID_TTL_HOURS:g} (E-IMZO portals keep a "
                f"keyId that long) to {MAX_KEY_ID_TTL_HOURS:g} (a year)")


def _origin(config: AgentConfig, attribute: str) -> str:
    return config.origins.get(_SETTING_OF[attribute], DEFAULT_ORIGIN)


def _refuse(config: AgentConfig, attribute: str, expected: str) -> NoReturn:
    raise ConfigError(f"{_origin(config, attribute)}: {_SETTING_OF[attribute]} = {getattr(config, attribute)!r}: "
                      f"{expected}")
