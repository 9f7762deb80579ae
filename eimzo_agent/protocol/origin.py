"""From the handshake's Origin header to the domain that API keys and approvals are about."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Pages opened from file:// (and sandboxed frames) send the literal Origin "null"; E-IMZO publishes an API key
#: for that pseudo-domain, so we keep it as a domain of its own rather than as "no origin".
NULL_DOMAIN = "null"


def domain_of(origin: str | None) -> str | None:
    """The host part of an http(s) Origin, lower-cased; "null" for an opaque origin; None when unusable."""
    if origin is None:
        return None
    origin = origin.strip()
    if origin == "null":
        return NULL_DOMAIN
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username is not None:
        return None  # a real Origin header is scheme://host[:port] and nothing else
    return host.rstrip(".")
