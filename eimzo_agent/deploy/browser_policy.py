"""Browser policies that let chosen portals reach the agent on 127.0.0.1 through Local Network Access.

Chrome 142+ and Edge ask the person before a public site may reach the machine's own addresses (from Chrome 147
also for WebSockets); without the permission or an enterprise policy, a portal's `ws://127.0.0.1:64646` fails
silently. The policies name the *portals* (the pages that open the connection), as Chrome's enterprise URL
patterns: `https://my.gov.uz`, `https://[*.]soliq.uz` (the domain and every sub-domain), with an optional port.

One generator for every consumer: `eimzo-agent policy browser` prints or writes these files, the Linux package
ships them, the Windows installer writes the registry values. Pure functions, no I/O.

What each browser gets:
- Chrome, Chromium, Edge: `LocalNetworkAccessAllowedForUrls` (Chrome 139+/Edge 140+) and
  `LoopbackNetworkAllowedForUrls` (Chrome/Edge 146+, the narrower loopback-only permission), as a managed JSON
  file (Linux), registry values (Windows) or a managed-preferences plist (macOS).
- Firefox: `LocalNetworkAccess` with the portals' domains in `SkipDomains` (Firefox 145+/ESR 153+), in
  `policies.json`; Mozilla documents the field only briefly, so this part is the least certain (docs/admin.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

Browser = Literal["chrome", "chromium", "edge", "firefox"]
Format = Literal["chrome-json", "firefox-json", "windows-reg", "macos-plist"]

#: Chrome/Edge policies we set, each a list of URL patterns of the initiating (portal) origins.
CHROMIUM_POLICIES = ("LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls")
#: Registry keys of the browsers' policies under HKLM (Windows) and their macOS preference domains.
WINDOWS_KEYS = {
    "chrome": r"SOFTWARE\Policies\Google\Chrome",
    "chromium": r"SOFTWARE\Policies\Chromium",
    "edge": r"SOFTWARE\Policies\Microsoft\Edge",
}
MACOS_DOMAINS = {"chrome": "com.google.Chrome", "chromium": "org.chromium.Chromium", "edge": "com.microsoft.Edge"}

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"(?:\[\*\.\])?{_LABEL}(?:\.{_LABEL})*")


class PolicyError(ValueError):
    """A site pattern that no browser would match as meant; the message says what is wrong and what is expected."""


@dataclass(frozen=True)
class SitePattern:
    """A portal as an enterprise URL pattern: scheme, host (maybe with a leading "[*.]") and an optional port."""

    scheme: Literal["http", "https"]
    host: str
    port: int | None = None

    @property
    def subdomains(self) -> bool:
        return self.host.startswith("[*.]")

    @property
    def domain(self) -> str:
        """The host without "[*.]": what Firefox's domain lists and the agent's allowlist name."""
        return self.host.removeprefix("[*.]")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port is not None else "")


def parse_site(text: str) -> SitePattern:
    """`https://my.gov.uz`, `https://[*.]soliq.uz`, `http://localhost:8080` → SitePattern; PolicyError else.

    Only portals can be named: a scheme (http or https) and a host, no path, query, user or wildcard elsewhere.
    """
    raw = text.strip()
    expected = "expected a portal as scheme://host[:port], e.g. https://my.gov.uz or https://[*.]soliq.uz"
    match = re.fullmatch(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^/:?#@]+)(?::(?P<port>[0-9]{1,5}))?/?",
                         raw)
    if match is None:
        if "://" not in raw:
            raise PolicyError(f"{text!r}: the scheme is missing; {expected}")
        raise PolicyError(f"{text!r}: not a site pattern (a path, a query or a user name is not allowed); {expected}")
    scheme = match["scheme"].lower()
    if scheme not in ("http", "https"):
        raise PolicyError(f"{text!r}: only http and https portals can be named, not {scheme}; {expected}")
    host = match["host"].lower().rstrip(".")
    if host.startswith("*.") or "*" in host.removeprefix("[*.]"):
        raise PolicyError(f"{text!r}: write a sub-domain wildcard as [*.]domain (e.g. https://[*.]soliq.uz); "
                          f"{expected}")
    if not _HOST.fullmatch(host) or host.removeprefix("[*.]").isdigit():
        raise PolicyError(f"{text!r}: {host!r} is not a host name; {expected}")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise PolicyError(f"{text!r}: port {port} is out of range; {expected}")
    return SitePattern(scheme, host, port)  # type: ignore[arg-type]


def parse_sites(texts: Iterable[str]) -> list[SitePattern]:
    """Every pattern parsed, duplicates dropped, order kept; at least one is needed."""
    sites = list(dict.fromkeys(parse_site(text) for text in texts))
    if not sites:
        raise PolicyError("name at least one portal, e.g. --site https://my.gov.uz")
    return sites


def from_allowed_domains(domains: Iterable[str]) -> list[SitePattern]:
    """The agent's `allowed_domains` ("my.gov.uz", "*.soliq.uz") as https portal patterns (installers use this:
    the admin names the allowed portals once). "*.soliq.uz" becomes https://[*.]soliq.uz, which also covers the
    bare domain: letting soliq.uz itself *reach* the agent is harmless, the agent still decides what it may do."""
    sites = []
    for domain in domains:
        domain = domain.strip()
        if not domain:
            continue
        host = f"[*.]{domain[2:]}" if domain.startswith("*.") else domain
        sites.append(parse_site(f"https://{host}"))
    return parse_sites(str(site) for site in sites)


def chromium_policy(sites: Sequence[SitePattern]) -> dict[str, list[str]]:
    """The managed policy for Chrome, Chromium and Edge: both LNA allow-lists with the portals."""
    patterns = [str(site) for site in sites]
    return {name: list(patterns) for name in CHROMIUM_POLICIES}


def firefox_policy(sites: Sequence[SitePattern]) -> dict[str, Any]:
    """policies.json content: LocalNetworkAccess stays on, the portals' domains are exempted."""
    domains = list(dict.fromkeys(site.domain for site in sites))
    return {"policies": {"LocalNetworkAccess": {"Enabled": True, "SkipDomains": domains}}}


def merge_firefox(existing: dict[str, Any] | None, sites: Sequence[SitePattern]) -> dict[str, Any]:
    """`existing` policies.json with our domains added to LocalNetworkAccess.SkipDomains, everything else kept.

    An admin's own policies (and their own LocalNetworkAccess settings) stay as they are: only domains are added.
    """
    merged = json.loads(json.dumps(existing or {}))  # a deep copy of plain JSON
    policies = merged.setdefault("policies", {})
    if not isinstance(policies, dict):
        raise PolicyError("policies.json: \"policies\" is not an object; fix or remove the file first")
    lna = policies.setdefault("LocalNetworkAccess", {"Enabled": True})
    if not isinstance(lna, dict):
        raise PolicyError("policies.json: \"LocalNetworkAccess\" is not an object; fix or remove the file first")
    skip = lna.setdefault("SkipDomains", [])
    for domain in firefox_policy(sites)["policies"]["LocalNetworkAccess"]["SkipDomains"]:
        if domain not in skip:
            skip.append(domain)
    return merged


def unmerge_firefox(existing: dict[str, Any], sites: Sequence[SitePattern]) -> dict[str, Any]:
    """Undo `merge_firefox`: our domains removed; an emptied LocalNetworkAccess that we added goes too."""
    merged = json.loads(json.dumps(existing))
    lna = merged.get("policies", {}).get("LocalNetworkAccess")
    if isinstance(lna, dict) and isinstance(lna.get("SkipDomains"), list):
        ours = {site.domain for site in sites}
        lna["SkipDomains"] = [d for d in lna["SkipDomains"] if d not in ours]
        if not lna["SkipDomains"]:
            del lna["SkipDomains"]
        if lna in ({}, {"Enabled": True}):
            del merged["policies"]["LocalNetworkAccess"]
    return merged


def windows_registry(sites: Sequence[SitePattern], browsers: Sequence[Browser] = ("chrome", "edge")) -> str:
    """A .reg file (Windows Registry Editor 5.00) with the list policies under HKLM for each browser."""
    lines = ["Windows Registry Editor Version 5.00", ""]
    for browser in browsers:
        key = WINDOWS_KEYS.get(browser)
        if key is None:
            raise PolicyError(f"no Windows registry policy for {browser}")
        for name, patterns in chromium_policy(sites).items():
            lines.append(f"[HKEY_LOCAL_MACHINE\\{key}\\{name}]")
            lines += [f'"{number}"="{_reg_escape(pattern)}"' for number, pattern in enumerate(patterns, 1)]
            lines.append("")
    return "\r\n".join(lines)


def registry_values(sites: Sequence[SitePattern], browser: Browser) -> list[tuple[str, str, str]]:
    """(key under HKLM, value name, data) for each list entry: what an installer writes, and removes again."""
    key = WINDOWS_KEYS.get(browser)
    if key is None:
        raise PolicyError(f"no Windows registry policy for {browser}")
    return [(f"{key}\\{name}", str(number), pattern)
            for name, patterns in chromium_policy(sites).items()
            for number, pattern in enumerate(patterns, 1)]


def macos_plist(sites: Sequence[SitePattern]) -> bytes:
    """A managed-preferences plist (for a configuration profile or /Library/Managed Preferences/<domain>.plist)."""
    import plistlib  # only here: it brings the XML parser, which every CLI start (serve too) would carry

    return plistlib.dumps(chromium_policy(sites), fmt=plistlib.FMT_XML, sort_keys=True)


_URL_PATTERN = re.compile(
    r"(?:(?P<scheme>\*|[a-z][a-z0-9+.-]*)://)?(?P<host>\[\*\.\][^:/\[\]]+|\[[0-9a-f:.]+\]|\*|[^:/\[\]*]+)"
    r"(?::(?P<port>\*|[0-9]{1,5}))?(?:/.*)?")


def matches(pattern: str, origin: str) -> bool:
    """Does an enterprise URL pattern (any a browser accepts, not only ours) cover a page's `origin`?

    Chrome's rules: "*" is everything; a missing or "*" scheme or port is any; "[*.]d" is d and every sub-domain
    of it; a path is ignored (these policies match origins). A pattern Chrome would reject matches nothing.
    """
    text = pattern.strip().lower()
    if text == "*":
        return True
    found = _URL_PATTERN.fullmatch(text)
    split = urlsplit(origin.strip().lower())
    if found is None or not split.scheme or not split.hostname:
        return False
    try:
        origin_port = split.port or {"http": 80, "https": 443}.get(split.scheme)
    except ValueError:
        return False
    scheme, host, port = found["scheme"], found["host"], found["port"]
    if scheme not in (None, "*") and scheme != split.scheme:
        return False
    if port not in (None, "*") and int(port) != origin_port:
        return False
    origin_host = split.hostname
    if host == "*":
        return True
    if host.startswith("[*.]"):
        domain = host[4:].rstrip(".")
        return origin_host == domain or origin_host.endswith("." + domain)
    return origin_host == host.strip("[]").rstrip(".")


def _reg_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
