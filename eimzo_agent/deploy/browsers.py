"""Which browsers are installed, and whether their managed policies let a portal reach the agent (Local Network
Access).

Chrome, Chromium and Edge read list policies of URL patterns (`…AllowedForUrls`, `…BlockedForUrls`): on Linux from
every file of a managed-policy folder, where a policy set in two files takes the value of the file whose name
sorts last; on macOS from a managed-preferences plist; on Windows from the registry (HKLM over HKCU). Firefox reads
`LocalNetworkAccess` from policies.json. Files are looked at under `Places.root`, so tests and image checks can
use another root; the registry is read only on Windows (not tested on our Linux CI).
"""

from __future__ import annotations

import json
import os
import plistlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from eimzo_agent.deploy.browser_policy import WINDOWS_KEYS, matches
from eimzo_agent.deploy.places import Places

Family = Literal["chromium", "firefox"]
State = Literal["allowed", "blocked", "no_policy"]

#: Policies that let a page reach 127.0.0.1, and those that forbid it (a match there wins: the safe reading).
ALLOW_POLICIES = ("LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls", "LocalNetworkAllowedForUrls")
BLOCK_POLICIES = ("LocalNetworkAccessBlockedForUrls", "LoopbackNetworkBlockedForUrls", "LocalNetworkBlockedForUrls")
#: Firefox: Local Network Access off altogether, or off for some domains (and their sub-domains).
FIREFOX_ENABLED = "LocalNetworkAccess.Enabled"
FIREFOX_SKIP = "LocalNetworkAccess.SkipDomains"
#: Policy files bigger than this are not policy files.
MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Browser:
    id: str  #: "chromium", "chrome", "edge", "firefox"
    name: str
    family: Family
    programs: tuple[str, ...]  #: files (under the root) whose presence means it is installed
    policy_dirs: tuple[str, ...] = ()  #: Chromium-family JSON folders (Linux)
    policy_files: tuple[str, ...] = ()  #: macOS plists, Firefox policies.json files


LINUX = (
    Browser("chromium", "Chromium", "chromium", ("/usr/bin/chromium", "/usr/lib/chromium/chromium",
                                                 "/usr/bin/chromium-browser"),
            policy_dirs=("/etc/chromium/policies/managed", "/etc/chromium-browser/policies/managed")),
    Browser("chrome", "Google Chrome", "chromium", ("/opt/google/chrome/chrome",),
            policy_dirs=("/etc/opt/chrome/policies/managed",)),
    Browser("edge", "Microsoft Edge", "chromium", ("/opt/microsoft/msedge/msedge",),
            policy_dirs=("/etc/opt/edge/policies/managed",)),
    Browser("firefox", "Firefox", "firefox", ("/usr/lib/firefox-esr/firefox-esr", "/usr/lib/firefox/firefox",
                                              "/opt/firefox/firefox", "/snap/bin/firefox"),
            policy_files=("/etc/firefox/policies/policies.json", "/usr/lib/firefox-esr/distribution/policies.json",
                          "/usr/lib/firefox/distribution/policies.json", "/opt/firefox/distribution/policies.json")),
)
MACOS = (
    Browser("chrome", "Google Chrome", "chromium", ("/Applications/Google Chrome.app",),
            policy_files=("/Library/Managed Preferences/com.google.Chrome.plist",)),
    Browser("chromium", "Chromium", "chromium", ("/Applications/Chromium.app",),
            policy_files=("/Library/Managed Preferences/org.chromium.Chromium.plist",)),
    Browser("edge", "Microsoft Edge", "chromium", ("/Applications/Microsoft Edge.app",),
            policy_files=("/Library/Managed Preferences/com.microsoft.Edge.plist",)),
    Browser("firefox", "Firefox", "firefox", ("/Applications/Firefox.app",),
            policy_files=("/Applications/Firefox.app/Contents/Resources/distribution/policies.json",)),
)
#: Windows: found through "App Paths"; Chromium-family policies in the registry, Firefox's beside firefox.exe.
WINDOWS = (
    Browser("chrome", "Google Chrome", "chromium", ("chrome.exe",)),
    Browser("edge", "Microsoft Edge", "chromium", ("msedge.exe",)),
    Browser("firefox", "Firefox", "firefox", ("firefox.exe",)),
)


@dataclass(frozen=True)
class Verdict:
    browser: Browser
    state: State
    policy: str | None = None  #: the policy that decided
    pattern: str | None = None  #: the pattern (or Firefox domain) that matched
    source: str | None = None  #: the file or registry key it came from
    unreadable: list[tuple[str, str]] = field(default_factory=list)  #: (file, why) the browser ignores


def known_browsers(platform: str | None = None) -> tuple[Browser, ...]:
    platform = platform or sys.platform
    return WINDOWS if platform == "win32" else MACOS if platform == "darwin" else LINUX


def installed(places: Places, platform: str | None = None) -> list[Browser]:
    platform = platform or sys.platform
    if platform == "win32":
        return [b for b in WINDOWS if _windows_program(b.programs[0]) is not None]
    return [b for b in known_browsers(platform) if any(places.system(p).exists() for p in b.programs)]


def origin_of(text: str) -> str:
    """A portal's address as the origin a browser would name ("my.gov.uz/login" -> "https://my.gov.uz");
    ValueError when it is not an http(s) address of a host."""
    raw = text.strip()
    split = urlsplit(raw if "://" in raw else f"https://{raw}")
    try:
        port = split.port
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if split.scheme.lower() not in ("http", "https") or not split.hostname or split.username is not None:
        raise ValueError(text)
    host = split.hostname.lower().rstrip(".")
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[split.scheme.lower()]
    return f"{split.scheme.lower()}://{host}" + (f":{port}" if port not in (None, default) else "")


@dataclass(frozen=True)
class PolicyList:
    """One policy's entries as the browser reads them: URL patterns (Chrome, Edge), domains (Firefox)."""

    policy: str
    entries: list[str]
    source: str  #: the file or registry key


def policy_lists(browser: Browser, places: Places, platform: str | None = None
                 ) -> tuple[list[PolicyList], list[tuple[str, str]]]:
    """The Local Network Access policies `browser` has, and the policy files it cannot read (and so ignores)."""
    platform = platform or sys.platform
    unreadable: list[tuple[str, str]] = []
    if browser.family == "firefox":
        return _firefox_lists(browser, places, platform, unreadable), unreadable
    if platform == "win32":
        lists = _windows_lists(browser)
    elif platform == "darwin":
        lists = _plist_lists(browser, places, unreadable)
    else:
        lists = _json_dir_lists(browser, places, unreadable)
    found = [PolicyList(name, [p for p in lists[name][0] if isinstance(p, str)], lists[name][1])
             for name in (*ALLOW_POLICIES, *BLOCK_POLICIES) if name in lists]
    return found, unreadable


def verdict(browser: Browser, origin: str, places: Places, platform: str | None = None) -> Verdict:
    """What `browser`'s managed policies say about `origin` reaching the agent."""
    lists, unreadable = policy_lists(browser, places, platform)
    if browser.family == "firefox":
        host = urlsplit(origin).hostname or ""
        for found in lists:
            for entry in found.entries:
                if found.policy == FIREFOX_ENABLED or _domain_covers(entry, host):
                    return Verdict(browser, "allowed", found.policy, entry, found.source, unreadable)
        return Verdict(browser, "no_policy", unreadable=unreadable)
    for names, state in ((BLOCK_POLICIES, "blocked"), (ALLOW_POLICIES, "allowed")):
        for found in lists:
            if found.policy in names:
                for pattern in found.entries:
                    if matches(pattern, origin):
                        return Verdict(browser, state, found.policy, pattern, found.source,  # type: ignore[arg-type]
                                       unreadable)
    return Verdict(browser, "no_policy", unreadable=unreadable)


def policy_location(browser: Browser, places: Places, platform: str | None = None) -> str:
    """Where an admin puts the policy for `browser` (for the fix the doctor suggests)."""
    platform = platform or sys.platform
    if platform == "win32":
        return "HKLM\\" + WINDOWS_KEYS.get(browser.id, "SOFTWARE\\Policies\\Mozilla\\Firefox")
    paths = browser.policy_dirs or browser.policy_files
    return str(places.system(paths[0])) if paths else ""


_Lists = dict[str, tuple[list[Any], str]]


def _json_dir_lists(browser: Browser, places: Places, unreadable: list[tuple[str, str]]) -> _Lists:
    lists: _Lists = {}
    for folder in browser.policy_dirs:
        directory = places.system(folder)
        try:
            names = sorted(entry.name for entry in os.scandir(directory) if entry.is_file()
                           and not entry.name.startswith("."))
        except OSError:
            continue
        for name in names:  # later files win, as in Chromium's loader
            data = _read_json(directory / name, unreadable)
            if isinstance(data, dict):
                for policy in (*ALLOW_POLICIES, *BLOCK_POLICIES):
                    if isinstance(data.get(policy), list):
                        lists[policy] = (data[policy], str(directory / name))
    return lists


def _plist_lists(browser: Browser, places: Places, unreadable: list[tuple[str, str]]) -> _Lists:
    lists: _Lists = {}
    for name in browser.policy_files:
        path = places.system(name)
        if not path.is_file():
            continue
        try:
            data = plistlib.loads(_read_limited(path))
        except (OSError, ValueError, plistlib.InvalidFileException) as exc:
            unreadable.append((str(path), str(exc)))
            continue
        if isinstance(data, dict):
            for policy in (*ALLOW_POLICIES, *BLOCK_POLICIES):
                if isinstance(data.get(policy), list):
                    lists[policy] = (data[policy], str(path))
    return lists


def _windows_lists(browser: Browser) -> _Lists:
    """List policies from HKCU, then HKLM over them (machine policy wins, as in Chrome)."""
    key = WINDOWS_KEYS.get(browser.id)
    if key is None or sys.platform != "win32":
        return {}
    import winreg

    lists: _Lists = {}
    for hive, label in ((winreg.HKEY_CURRENT_USER, "HKCU"), (winreg.HKEY_LOCAL_MACHINE, "HKLM")):
        for policy in (*ALLOW_POLICIES, *BLOCK_POLICIES):
            try:
                with winreg.OpenKey(hive, f"{key}\\{policy}") as handle:
                    count = winreg.QueryInfoKey(handle)[1]
                    values = [str(winreg.EnumValue(handle, i)[1]) for i in range(count)]
            except OSError:
                continue
            if values:
                lists[policy] = (values, f"{label}\\{key}\\{policy}")
    return lists


def _windows_program(name: str) -> str | None:
    if sys.platform != "win32":
        return None
    import winreg

    for hive in (winreg.HKEY_LOCAL_MACHINE, winreg.HKEY_CURRENT_USER):
        try:
            with winreg.OpenKey(hive, rf"SOFTWARE\Microsoft\Windows\CurrentVersion\App Paths\{name}") as handle:
                return str(winreg.QueryValue(handle, None))
        except OSError:
            continue
    return None


def _firefox_lists(browser: Browser, places: Places, platform: str, unreadable: list[tuple[str, str]]
                   ) -> list[PolicyList]:
    """LocalNetworkAccess from each policies.json found: SkipDomains, and Enabled when it is false."""
    files = [places.system(name) for name in browser.policy_files]
    if platform == "win32":
        program = _windows_program("firefox.exe")
        files = [Path(program).parent / "distribution" / "policies.json"] if program else []
    found = []
    for path in files:
        if not path.is_file():
            continue
        data = _read_json(path, unreadable)
        policies = data.get("policies") if isinstance(data, dict) else None
        lna = policies.get("LocalNetworkAccess") if isinstance(policies, dict) else None
        if not isinstance(lna, dict):
            continue
        if lna.get("Enabled") is False:
            found.append(PolicyList(FIREFOX_ENABLED, ["false"], str(path)))
        skip = lna.get("SkipDomains")
        if isinstance(skip, list):
            found.append(PolicyList(FIREFOX_SKIP, [d for d in skip if isinstance(d, str)], str(path)))
    return found


def _domain_covers(domain: str, host: str) -> bool:
    """A SkipDomains entry covers the domain and its sub-domains (how the generator writes "[*.]d" as "d")."""
    domain = domain.strip().lower().removeprefix("*.").lstrip(".").rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _read_limited(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise ValueError("larger than 1 MiB")
    return data


def _read_json(path: Path, unreadable: list[tuple[str, str]]) -> Any:
    try:
        return json.loads(_read_limited(path))
    except (OSError, ValueError) as exc:
        unreadable.append((str(path), getattr(exc, "strerror", None) or str(exc)))
        return None
