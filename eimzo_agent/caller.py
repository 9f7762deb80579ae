"""Who is calling: the page's identity as the browser reported it in the WebSocket handshake's Origin header.

One typed value, made once per connection, that every layer keys its decisions by: the domain gate and the
consent store (by `site`: scheme and host, so an approval of https://example.uz never covers http://example.uz),
the request limiter and the prompt queue (by `registrable_domain`, so a hundred sub-domains of one site count as
one), remembered passwords, key sessions and per-site language (by `origin`, the exact origin).

An *opaque* origin (the literal "null": pages opened from file://, sandboxed iframes, data: URLs) names no site at
all: any page on the Internet can produce one by sandboxing an iframe. So it is kept apart from every real site
and is never approved, remembered or trusted on the strength of its name (see docs/security.md).

This module is a leaf: it imports nothing else of ours, so every layer may use it.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: The Origin header's value for an opaque origin.
OPAQUE_ORIGIN = "null"
#: Hosts of the machine itself (developers' pages, the demo portal).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Caller:
    """A page's identity. Build it with `Caller.from_origin(header)`."""

    #: The origin as `scheme://host[:port]` (lower-case, default port left out); "null" when opaque; None when
    #: the page sent no Origin or one we cannot read.
    origin: str | None
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    opaque: bool = False

    @classmethod
    def from_origin(cls, header: str | None) -> Caller:
        """Read an Origin header; anything but `http(s)://host[:port]` or "null" gives an unidentified caller."""
        if header is None:
            return UNIDENTIFIED
        text = header.strip()
        if text == OPAQUE_ORIGIN:
            return cls(OPAQUE_ORIGIN, opaque=True)
        try:
            parts = urlsplit(text)
            host = parts.hostname
            port = parts.port  # raises ValueError for a malformed port
        except ValueError:
            return UNIDENTIFIED
        if parts.scheme not in _DEFAULT_PORTS or not host:
            return UNIDENTIFIED
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username is not None:
            return UNIDENTIFIED  # a real Origin header is scheme://host[:port] and nothing else
        host = host.rstrip(".").lower()
        if not host:
            return UNIDENTIFIED
        if port == _DEFAULT_PORTS[parts.scheme]:
            port = None
        shown_host = f"[{host}]" if ":" in host else host
        origin = f"{parts.scheme}://{shown_host}" + (f":{port}" if port is not None else "")
        return cls(origin, parts.scheme, host, port)

    @property
    def identified(self) -> bool:
        """True when the caller names a real site (a scheme and a host)."""
        return self.host is not None

    @property
    def site(self) -> str | None:
        """What approvals are bound to: scheme and host (any port), e.g. "https://my.gov.uz"; None when opaque
        or unidentified."""
        if self.host is None:
            return None
        return f"{self.scheme}://[{self.host}]" if ":" in self.host else f"{self.scheme}://{self.host}"

    @property
    def domain(self) -> str | None:
        """The host, as the admin allowlist and E-IMZO's API keys name sites (no scheme, no port)."""
        return self.host

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS

    @property
    def registrable_domain(self) -> str | None:
        """The part of the host someone can register ("soliq.uz" for "a.b.soliq.uz"): sub-domains of one owner
        share limits. IP addresses and single-label hosts stand for themselves. None when not identified."""
        if self.host is None:
            return None
        return registrable_domain(self.host)

    @property
    def limit_key(self) -> str:
        """The key for per-site limits: the registrable domain, so sub-domains of one owner share them. Pages of
        the machine itself are told apart by port (they are separate local apps, not one owner's sub-domains);
        opaque and unidentified callers each share one key."""
        if self.opaque:
            return OPAQUE_ORIGIN
        if self.is_local and self.origin is not None:
            return self.origin
        return self.registrable_domain or "unidentified"

    @property
    def label(self) -> str:
        """The caller as a person should read it in a dialog: the origin, or "null" for an opaque one."""
        return self.origin or ""


#: The caller of a connection without a usable Origin header.
UNIDENTIFIED = Caller(None)


@functools.lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str:
    """eTLD+1 by the Public Suffix List; the host itself for IP addresses, single labels and public suffixes."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if "." not in host:
        return host
    return _public_suffix_list().privatesuffix(host) or host


@functools.cache
def _public_suffix_list() -> Any:  # the library has no type hints
    # Loaded on first use (≈ 70 ms): the list ships inside the package, no network access.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()
