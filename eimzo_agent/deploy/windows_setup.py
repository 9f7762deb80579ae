"""What the Windows installer does beyond copying files: its public properties become Group Policy values, the
opt-in browser policies are written, and on uninstall exactly that is taken away again.

The MSI's custom actions run this with the bundled Python, as LocalSystem, at the end of an install and at the
start of an uninstall (service_installers/windows/):

    python -m eimzo_agent.deploy.windows_setup install [--allowed-domains my.gov.uz,*.soliq.uz]
        [--ask-unknown-sites 0|1] [--language ru|uz|kaa|en] [--chrome-policy 0|1] [--edge-policy 0|1]
        [--firefox-policy 0|1]
    python -m eimzo_agent.deploy.windows_setup uninstall [--install-dir "C:\\Program Files\\eimzo-agent"]

An empty value is a property that was not given: what an earlier install set stays (an upgrade without properties
keeps the settings). Every value is checked before anything is written; a bad one fails the install with a
message naming the property and the value, and the MSI rolls its files back. If writing fails half-way, what was
written is put back before the error is reported.

Where things go (HKLM, 64-bit view):
- settings: Group Policy values under `SOFTWARE\\Policies\\eimzo-agent`, exactly as the ADMX templates write them
  (eimzo_agent.config reads them, above the admin file): ALLOWED_DOMAINS → `sites\\allowed_domains\\1…n`,
  ASK_UNKNOWN_SITES → `sites` ask_unknown_sites (DWORD), LANGUAGE → `ui` language;
- CHROME_POLICY/EDGE_POLICY=1: the Local Network Access allow-lists under `SOFTWARE\\Policies\\Google\\Chrome` and
  `…\\Microsoft\\Edge` (eimzo_agent.deploy.browser_policy) with ALLOWED_DOMAINS as https portals;
- FIREFOX_POLICY=1: the portals' domains merged into `distribution\\policies.json` of each Firefox installation
  found (the admin's own policies in that file are kept).
- `SOFTWARE\\eimzo-agent\\Installer` value State: a record of every value written (with the value it replaced),
  every key created and every domain added to a policies.json. Uninstall reads it and puts back exactly that: a
  value someone changed since is theirs and stays; a value we replaced gets its old data back.

The MSI starts its Python with -B, so that Program Files holds exactly the package's files; byte-code an
administrator's own run of python.exe left there (`__pycache__` folders) is removed on uninstall, or the folder
could not go.

The registry is reached through `Registry`, so all of this is checked on Linux against a stand-in; `WinRegistry`
(winreg) runs on Windows and under Wine in the MSI's tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eimzo_agent.config import REG_SZ, check_domain, policy_values
from eimzo_agent.deploy import browser_policy
from eimzo_agent.deploy.browser_policy import PolicyError
from eimzo_agent.fsutil import write_atomically
from eimzo_agent.i18n import LANGUAGES

STATE_KEY = r"SOFTWARE\eimzo-agent\Installer"
STATE_VALUE = "State"
#: Keys never deleted even when empty: Windows' own, and the roots other software shares.
_SHARED_KEYS = {r"software", r"software\policies", r"software\policies\microsoft", r"software\wow6432node"}

#: The MSI's public properties and the command-line option each one arrives as.
PROPERTIES = {
    "ALLOWED_DOMAINS": "--allowed-domains",
    "ASK_UNKNOWN_SITES": "--ask-unknown-sites",
    "LANGUAGE": "--language",
    "CHROME_POLICY": "--chrome-policy",
    "EDGE_POLICY": "--edge-policy",
    "FIREFOX_POLICY": "--firefox-policy",
}
_SWITCHES = ("ASK_UNKNOWN_SITES", "CHROME_POLICY", "EDGE_POLICY", "FIREFOX_POLICY")
_BROWSERS: dict[str, browser_policy.Browser] = {"CHROME_POLICY": "chrome", "EDGE_POLICY": "edge"}


class SetupError(Exception):
    """A property value the installer cannot use; the message names the property and the value."""


# --- properties -------------------------------------------------------------------------------------------------

def parse_domains(text: str) -> list[str]:
    """ALLOWED_DOMAINS ("my.gov.uz, *.soliq.uz"; commas, semicolons or blanks) → hosts, duplicates dropped."""
    domains: list[str] = []
    for raw in re.split(r"[,;\s]+", text.strip()):
        if not raw:
            continue
        try:
            entry = check_domain(raw)  # the agent's own rule for allowed_domains
        except ValueError as exc:
            raise SetupError(f"ALLOWED_DOMAINS: {exc}") from None
        if entry not in domains:
            domains.append(entry)
    if not domains:
        raise SetupError(f"ALLOWED_DOMAINS: {text!r} names no host")
    return domains


def parse_properties(given: Mapping[str, str | None]) -> dict[str, str]:
    """The properties that were given (non-empty), checked and normalised; SetupError naming the first bad one."""
    checked: dict[str, str] = {}
    for name, value in given.items():
        if name not in PROPERTIES:
            raise SetupError(f"{name} is not a property of this installer (known: {', '.join(PROPERTIES)})")
        if value is None or not value.strip():
            continue
        value = value.strip()
        if name == "ALLOWED_DOMAINS":
            checked[name] = ",".join(parse_domains(value))
        elif name == "LANGUAGE":
            if value.lower() not in LANGUAGES:
                raise SetupError(f"LANGUAGE: {value!r} is not one of {', '.join(LANGUAGES)}")
            checked[name] = value.lower()
        elif value not in ("0", "1"):
            raise SetupError(f"{name}: {value!r} must be 0 or 1")
        else:
            checked[name] = value
    return checked


def combine(earlier: Mapping[str, str], given: Mapping[str, str]) -> dict[str, str]:
    """What is in force after this install: the earlier install's properties, overridden by the given ones."""
    properties = {**earlier, **given}
    wanted = [name for name in ("CHROME_POLICY", "EDGE_POLICY", "FIREFOX_POLICY") if properties.get(name) == "1"]
    if wanted and not properties.get("ALLOWED_DOMAINS"):
        raise SetupError(f"{wanted[0]}=1 needs ALLOWED_DOMAINS: the browser policy lets exactly those sites reach "
                         "the agent")
    return properties


def portals(properties: Mapping[str, str]) -> list[browser_policy.SitePattern]:
    try:
        return browser_policy.from_allowed_domains(parse_domains(properties["ALLOWED_DOMAINS"]))
    except PolicyError as exc:
        raise SetupError(f"ALLOWED_DOMAINS: {exc}") from None


@dataclass(frozen=True)
class Value:
    """One registry value under HKLM."""

    key: str
    name: str
    kind: int
    data: int | str

    @property
    def where(self) -> str:
        return f"HKLM\\{self.key} {self.name}"


def planned_values(properties: Mapping[str, str]) -> list[Value]:
    """Every registry value the properties in force ask for (settings first, then browser policies)."""
    values: list[tuple[str, str, int, int | str]] = []
    if properties.get("ALLOWED_DOMAINS"):
        values += policy_values("sites", "allowed_domains", parse_domains(properties["ALLOWED_DOMAINS"]))
    if properties.get("ASK_UNKNOWN_SITES"):
        values += policy_values("sites", "ask_unknown_sites", properties["ASK_UNKNOWN_SITES"] == "1")
    if properties.get("LANGUAGE"):
        values += policy_values("ui", "language", properties["LANGUAGE"])
    for name, browser in _BROWSERS.items():
        if properties.get(name) == "1":
            values += [(key, value_name, REG_SZ, data)
                       for key, value_name, data in browser_policy.registry_values(portals(properties), browser)]
    return [Value(*value) for value in values]


# --- the registry -----------------------------------------------------------------------------------------------

class Registry(Protocol):
    """HKLM, 64-bit view. `read` gives (type, data) or None; `delete_key` removes an empty key only."""

    def read(self, key: str, name: str) -> tuple[int, Any] | None: ...

    def write(self, key: str, name: str, kind: int, data: Any) -> None: ...

    def delete_value(self, key: str, name: str) -> None: ...

    def key_exists(self, key: str) -> bool: ...

    def delete_key(self, key: str) -> bool: ...


class WinRegistry:
    """The real registry (Windows only): HKLM in the 64-bit view, where 64-bit browsers read their policies."""

    def __init__(self) -> None:
        import winreg  # Windows only

        self._winreg = winreg
        self._view = winreg.KEY_WOW64_64KEY

    def _open(self, key: str, access: int) -> Any:
        return self._winreg.OpenKey(self._winreg.HKEY_LOCAL_MACHINE, key, 0, access | self._view)

    def read(self, key: str, name: str) -> tuple[int, Any] | None:
        try:
            with self._open(key, self._winreg.KEY_READ) as handle:
                data, kind = self._winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return kind, data

    def write(self, key: str, name: str, kind: int, data: Any) -> None:
        with self._winreg.CreateKeyEx(self._winreg.HKEY_LOCAL_MACHINE, key, 0,
                                      self._winreg.KEY_SET_VALUE | self._view) as handle:
            self._winreg.SetValueEx(handle, name, 0, kind, data)

    def delete_value(self, key: str, name: str) -> None:
        try:
            with self._open(key, self._winreg.KEY_SET_VALUE) as handle:
                self._winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            pass

    def key_exists(self, key: str) -> bool:
        try:
            with self._open(key, self._winreg.KEY_READ):
                return True
        except FileNotFoundError:
            return False

    def delete_key(self, key: str) -> bool:
        try:
            with self._open(key, self._winreg.KEY_READ) as handle:
                subkeys, values, _ = self._winreg.QueryInfoKey(handle)
            if subkeys or values:
                return False
            self._winreg.DeleteKeyEx(self._winreg.HKEY_LOCAL_MACHINE, key, self._view, 0)
        except FileNotFoundError:
            return False
        return True


def _ancestors(key: str) -> list[str]:
    """"A\\B\\C" → ["A\\B\\C", "A\\B", "A"]."""
    parts = key.split("\\")
    return ["\\".join(parts[:n]) for n in range(len(parts), 0, -1)]


# --- the record of what we did ----------------------------------------------------------------------------------

@dataclass
class Written:
    """A value we wrote, and what was there before (None: nothing)."""

    value: Value
    before: tuple[int, Any] | None

    def to_json(self) -> list[Any]:
        v = self.value
        before = None
        if self.before is not None:  # REG_BINARY data is bytes: kept as hex
            kind, data = self.before
            before = [kind, {"hex": data.hex()} if isinstance(data, bytes) else data]
        return [v.key, v.name, v.kind, v.data, before]

    @classmethod
    def from_json(cls, item: list[Any]) -> Written:
        key, name, kind, data, before = item
        if before is not None and isinstance(before[1], dict):
            before = [before[0], bytes.fromhex(before[1]["hex"])]
        return cls(Value(key, name, kind, data), None if before is None else (before[0], before[1]))


@dataclass
class FirefoxChange:
    """Domains we added to one policies.json, and whether the file (and its folder) were ours to begin with."""

    file: str
    domains: list[str]
    created_file: bool
    created_folder: bool


@dataclass
class State:
    properties: dict[str, str] = field(default_factory=dict)
    written: list[Written] = field(default_factory=list)
    created_keys: list[str] = field(default_factory=list)
    firefox: list[FirefoxChange] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "properties": self.properties,
                           "written": [w.to_json() for w in self.written], "created_keys": self.created_keys,
                           "firefox": [vars(change) for change in self.firefox]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        return cls(dict(data.get("properties", {})), [Written.from_json(w) for w in data.get("written", [])],
                   list(data.get("created_keys", [])), [FirefoxChange(**c) for c in data.get("firefox", [])])


def read_state(registry: Registry) -> State:
    found = registry.read(STATE_KEY, STATE_VALUE)
    if found is None:
        return State()
    try:
        return State.from_json(str(found[1]))
    except (ValueError, TypeError, KeyError) as exc:
        raise SetupError(f"HKLM\\{STATE_KEY} {STATE_VALUE} is damaged ({exc}); remove it and run the installer "
                         "again") from None


class Changes:
    """Registry writes that can be undone, in reverse order, if a later step fails."""

    def __init__(self, registry: Registry, say: Callable[[str], None]) -> None:
        self.registry = registry
        self.say = say
        self._undo: list[Callable[[], None]] = []
        self.created_keys: list[str] = []

    def write(self, value: Value, *, quiet: bool = False) -> tuple[int, Any] | None:
        before = self.registry.read(value.key, value.name)
        new_keys = [key for key in _ancestors(value.key) if not self.registry.key_exists(key)]
        self.registry.write(value.key, value.name, value.kind, value.data)
        self.created_keys += new_keys
        self._undo.append(lambda: self._put(value.key, value.name, before, new_keys))
        if not quiet:
            self.say(f"set {value.where} = {value.data!r}")
        return before

    def restore(self, value: Value, before: tuple[int, Any] | None) -> None:
        """Put `before` back in place of our `value` (delete it when there was nothing)."""
        now = self.registry.read(value.key, value.name)
        self._put(value.key, value.name, before, [])
        self._undo.append(lambda: self._put(value.key, value.name, now, []))
        self.say(f"removed {value.where}" if before is None else f"restored {value.where} = {before[1]!r}")

    def _put(self, key: str, name: str, data: tuple[int, Any] | None, new_keys: Sequence[str]) -> None:
        if data is None:
            self.registry.delete_value(key, name)
        else:
            self.registry.write(key, name, data[0], data[1])
        for created in new_keys:
            self.registry.delete_key(created)

    def undo(self) -> None:
        for step in reversed(self._undo):
            try:
                step()
            except OSError as exc:  # keep undoing the rest
                self.say(f"could not undo a step: {exc}")
        self._undo.clear()


# --- Firefox ----------------------------------------------------------------------------------------------------

def firefox_folders(registry: Registry, program_files: Iterable[str] = ()) -> list[Path]:
    """Firefox installations: from Mozilla's registry keys (also ESR and 32-bit), else the default folders."""
    found: list[Path] = []
    for base in (r"SOFTWARE\Mozilla", r"SOFTWARE\WOW6432Node\Mozilla"):
        for product in ("Mozilla Firefox", "Mozilla Firefox ESR"):
            version = registry.read(f"{base}\\{product}", "CurrentVersion")
            if version is None:
                continue
            folder = registry.read(f"{base}\\{product}\\{version[1]}\\Main", "Install Directory")
            if folder is not None and str(folder[1]).strip():
                found.append(Path(str(folder[1])))
    for root in program_files:
        candidate = Path(root) / "Mozilla Firefox"
        if (candidate / "firefox.exe").is_file():
            found.append(candidate)
    unique: dict[str, Path] = {}
    for folder in found:
        unique.setdefault(os.path.normcase(os.path.normpath(str(folder))), folder)
    return list(unique.values())


def _read_policies(file: Path) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"FIREFOX_POLICY: {file} is not readable JSON ({exc}); fix or remove it first") from None
    if not isinstance(data, dict):
        raise SetupError(f"FIREFOX_POLICY: {file} does not hold a JSON object; fix or remove it first")
    return data


def _write_policies(file: Path, data: dict[str, Any]) -> None:
    write_atomically(file, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(), mode=0o644)


def _skip_domains(data: dict[str, Any] | None) -> list[str]:
    lna = ((data or {}).get("policies") or {}).get("LocalNetworkAccess")
    skip = lna.get("SkipDomains") if isinstance(lna, dict) else None
    return [str(d) for d in skip] if isinstance(skip, list) else []


def add_firefox(folder: Path, sites: Sequence[browser_policy.SitePattern]) -> FirefoxChange | None:
    """Merge the portals into `folder`/distribution/policies.json; None when nothing had to be added."""
    file = folder / "distribution" / "policies.json"
    existing = _read_policies(file)
    try:
        merged = browser_policy.merge_firefox(existing, sites)
    except PolicyError as exc:
        raise SetupError(f"FIREFOX_POLICY: {file}: {exc}") from None
    added = [d for d in _skip_domains(merged) if d not in _skip_domains(existing)]
    if not added:
        return None
    created_folder = not file.parent.is_dir()
    file.parent.mkdir(parents=True, exist_ok=True)
    _write_policies(file, merged)
    return FirefoxChange(str(file), added, created_file=existing is None, created_folder=created_folder)


def remove_firefox(change: FirefoxChange) -> None:
    """Take our domains out of the file again; remove the file (and folder) if we made them and they are empty."""
    file = Path(change.file)
    existing = _read_policies(file)
    if existing is None:
        return
    sites = [browser_policy.SitePattern("https", domain) for domain in change.domains]
    remaining = browser_policy.unmerge_firefox(existing, sites)
    if change.created_file and remaining in ({}, {"policies": {}}):
        file.unlink()
        if change.created_folder:
            with suppress(OSError):  # someone put something else there
                file.parent.rmdir()
    elif remaining != existing:
        _write_policies(file, remaining)


# --- install and uninstall --------------------------------------------------------------------------------------

def install(registry: Registry, given: Mapping[str, str | None], *, firefox: Callable[[], list[Path]],
            say: Callable[[str], None] = print) -> State:
    """Check the given properties, then bring the registry and Firefox's policies to what they ask for."""
    given = parse_properties(given)  # nothing has been touched yet
    earlier = read_state(registry)
    properties = combine(earlier.properties, given)
    planned = planned_values(properties)
    wanted = {(v.key.lower(), v.name.lower()): v for v in planned}
    changes = Changes(registry, say)
    state = State(properties=properties, created_keys=list(earlier.created_keys))
    firefox_done: list[FirefoxChange] = []
    firefox_undone: list[FirefoxChange] = []
    try:
        previous = {(w.value.key.lower(), w.value.name.lower()): w for w in earlier.written}
        for place, old in previous.items():
            if place not in wanted and _unchanged(registry, old.value):
                changes.restore(old.value, old.before)
        for place, value in wanted.items():
            before = changes.write(value)
            old = previous.get(place)
            if old is not None and (before is None or before == (old.value.kind, old.value.data)):
                before = old.before  # the value was already ours: what it replaced first is what comes back
            state.written.append(Written(value, before))
        for change in earlier.firefox:
            remove_firefox(change)
            firefox_undone.append(change)
        if properties.get("FIREFOX_POLICY") == "1":
            folders = firefox()
            if not folders:
                say("FIREFOX_POLICY=1: no Firefox installation found; nothing written for Firefox")
            for folder in folders:
                change = add_firefox(folder, portals(properties))
                if change is not None:
                    firefox_done.append(change)
                    say(f"added {', '.join(change.domains)} to {change.file}")
        state.firefox = firefox_done
        state.created_keys = _prune_keys(registry, [*earlier.created_keys, *changes.created_keys],
                                         [w.value.key for w in state.written], say)
        changes.write(Value(STATE_KEY, STATE_VALUE, REG_SZ, state.to_json()), quiet=True)
    except BaseException:
        for change in firefox_done:
            remove_firefox(change)
        changes.undo()
        for change in firefox_undone:  # best effort: put the earlier merge back
            add_firefox(Path(change.file).parent.parent, [browser_policy.SitePattern("https", d)
                                                          for d in change.domains])
        raise
    return state


def uninstall(registry: Registry, say: Callable[[str], None] = print) -> None:
    """Undo every install: our values go (or get back what they replaced), our keys and Firefox domains too."""
    state = read_state(registry)
    changes = Changes(registry, say)
    for written in reversed(state.written):
        if _unchanged(registry, written.value):
            changes.restore(written.value, written.before)
        else:
            say(f"left {written.value.where}: it was changed after the install")
    for change in state.firefox:
        try:
            remove_firefox(change)
            say(f"removed {', '.join(change.domains)} from {change.file}")
        except (OSError, SetupError) as exc:
            say(f"could not clean {change.file}: {exc}")
    registry.delete_value(STATE_KEY, STATE_VALUE)
    created = {key.lower(): key for key in [*state.created_keys, *_ancestors(STATE_KEY)]}
    for key in sorted(created.values(), key=lambda k: k.count("\\"), reverse=True):
        if key.lower() not in _SHARED_KEYS and registry.delete_key(key):
            say(f"removed HKLM\\{key}")


def remove_bytecode(folder: Path, say: Callable[[str], None] = print) -> None:
    """Delete the `__pycache__` folders (only .pyc files in them) below the install folder."""
    for cache in sorted(folder.rglob("__pycache__"), reverse=True):
        if not cache.is_dir():
            continue
        for file in cache.glob("*.pyc"):
            with suppress(OSError):
                file.unlink()
        with suppress(OSError):
            cache.rmdir()
            say(f"removed {cache}")


def _prune_keys(registry: Registry, created: Iterable[str], in_use: Iterable[str],
                say: Callable[[str], None]) -> list[str]:
    """Keys we created that hold none of our values any more (a browser policy switched off) are deleted when
    empty; the rest stay on the record for the uninstall."""
    needed = {ancestor.lower() for key in [*in_use, STATE_KEY] for ancestor in _ancestors(key)}
    kept = []
    for key in sorted(_unique(created), key=lambda k: k.count("\\"), reverse=True):
        if key.lower() not in needed and key.lower() not in _SHARED_KEYS and registry.delete_key(key):
            say(f"removed HKLM\\{key}")
        elif registry.key_exists(key):
            kept.append(key)
    return kept


def _unchanged(registry: Registry, value: Value) -> bool:
    found = registry.read(value.key, value.name)
    return found is not None and found[0] == value.kind and found[1] == value.data


def _unique(keys: Iterable[str]) -> list[str]:
    return list({key.lower(): key for key in keys}.values())


# --- command line (the MSI's custom actions) --------------------------------------------------------------------

def _program_files() -> list[str]:
    # os.environ's names are upper case on Windows
    return [p for p in (os.environ.get("PROGRAMW6432"), os.environ.get("PROGRAMFILES"),
                        os.environ.get("PROGRAMFILES(X86)")) if p]


def main(argv: Sequence[str] | None = None, registry: Registry | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eimzo_agent.deploy.windows_setup",
                                     description="The eimzo-agent MSI's settings and browser policies.")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install")
    for name, option in PROPERTIES.items():
        setup.add_argument(option, dest=name, default="", metavar=name)
    remove = commands.add_parser("uninstall")
    remove.add_argument("--install-dir", type=Path, help="also remove byte-code left in this folder")
    args = parser.parse_args(argv)
    try:
        registry = registry or WinRegistry()
        if args.command == "install":
            given = {name: getattr(args, name) for name in PROPERTIES}
            install(registry, given, firefox=lambda: firefox_folders(registry, _program_files()))
        else:
            uninstall(registry)
            if args.install_dir is not None and (args.install_dir / "python.exe").is_file():
                remove_bytecode(args.install_dir)
    except SetupError as exc:
        print(f"eimzo-agent setup: {exc}", flush=True)
        return 2
    except OSError as exc:
        print(f"eimzo-agent setup: {exc}; nothing was changed", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
