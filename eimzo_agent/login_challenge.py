"""The origin-bound login challenge: one line both our portal server and our agent read.

E-IMZO-server's challenge is a bare UUID, so nothing ties a login signature to the site it was meant for: a phishing
page can fetch a real portal's challenge and have the person sign it. Ours names the site and the moment it was
issued inside the signed text itself:

    eimzo-login v1 origin=https://portal.example.uz issued=20261202T153000Z nonce=<43 base64url chars>

To the official agent (and to a portal's JavaScript) it is still an opaque ASCII string, so old clients keep
working. Our agent reads it before signing and refuses when the origin is not the requesting page's; the server
compares the signed content byte for byte with what it issued. No dependencies: the portal and the agent share it.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Every challenge of this scheme starts so; text that starts so but does not parse is refused, never signed.
PREFIX = "eimzo-login v1 "
#: 32 CSPRNG bytes (Web eID's rule), base64url without padding: 43 characters.
NONCE_BYTES = 32

_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_PATTERN = re.compile(
    r"eimzo-login v1 origin=(?P<origin>https?://[a-z0-9.\-]+(?::[0-9]{1,5})?|https?://\[[0-9a-f:]+\](?::[0-9]{1,5})?)"
    r" issued=(?P<issued>[0-9]{8}T[0-9]{6}Z) nonce=(?P<nonce>[A-Za-z0-9_-]{43})"
)


@dataclass(frozen=True)
class LoginChallenge:
    origin: str
    issued: dt.datetime
    nonce: str

    @property
    def text(self) -> str:
        return f"{PREFIX}origin={self.origin} issued={self.issued.strftime(_TIME_FORMAT)} nonce={self.nonce}"


def new_challenge(origin: str, now: dt.datetime | None = None) -> LoginChallenge:
    """A fresh challenge for `origin` (normalised by `normalise_origin`; ValueError when it is not an origin)."""
    issued = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode("ascii")
    return LoginChallenge(normalise_origin(origin), issued, nonce)


def looks_like_challenge(content: bytes) -> bool:
    """True when `content` claims to be an origin-bound challenge (then it must parse, or it is refused)."""
    return content.startswith(PREFIX.encode("ascii"))


def parse_challenge(content: bytes | str) -> LoginChallenge | None:
    """The challenge in `content`, or None when it is not exactly one well-formed challenge line."""
    if isinstance(content, bytes):
        try:
            content = content.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _PATTERN.fullmatch(content)
    if match is None:
        return None
    try:
        issued = dt.datetime.strptime(match["issued"], _TIME_FORMAT).replace(tzinfo=dt.UTC)
        origin = normalise_origin(match["origin"])
    except ValueError:
        return None
    if origin != match["origin"]:
        return None  # only the canonical form is ever issued
    return LoginChallenge(origin, issued, match["nonce"])


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower-case, default ports dropped; ValueError for anything with a path or user."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a web origin: {origin!r}")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an origin has no user, path, query or fragment: {origin!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a bad port
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" if port in (None, default) else f"{parts.scheme}://{host}:{port}"
