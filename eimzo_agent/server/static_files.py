"""Files the agent serves on its HTTP side: the browser client, E-IMZO compatibility scripts, the demo portal.

There is one copy of each file: its source in `browser_js/` or `examples/demo-portal/`. A checkout (and an editable
install) serves them from there; a built wheel carries them under `server/static/`, put there by `setup.py` at
build time. Pure lookups here; `http.py` turns an `Asset` into a response.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: In a built wheel: the sources below, at the same relative paths (setup.py copies them there).
STATIC_DIR = Path(__file__).with_name("static")
#: In a checkout: the repository itself.
SOURCE_DIR = Path(__file__).resolve().parents[2]

#: URL path → the file's path in the repository. setup.py reads this table to bundle the files into wheels.
ROUTES: dict[str, str] = {
    "/eimzo-agent.js": "browser_js/eimzo-agent.js",
    "/eimzo-agent.mjs": "browser_js/eimzo-agent.mjs",
    "/eimzo-agent.d.ts": "browser_js/eimzo-agent.d.ts",
    "/compat/e-imzo.js": "browser_js/compat/e-imzo.js",
    "/compat/e-imzo-client.js": "browser_js/compat/e-imzo-client.js",
    "/e-imzo.js": "browser_js/compat/e-imzo.js",  # where E-IMZO itself serves its client
    # E-IMZO serves only e-imzo.js; portals copy the vendor's e-imzo-client.js beside it, so a page switching by
    # script tags finds ours at the matching place.
    "/e-imzo-client.js": "browser_js/compat/e-imzo-client.js",
    "/demo/": "examples/demo-portal/index.html",
    "/demo/index.html": "examples/demo-portal/index.html",
    "/demo/app.mjs": "examples/demo-portal/app.mjs",
    "/demo/enroll.html": "examples/demo-portal/enroll.html",  # "get a key online" (pki.enroll_pfx_step1/2)
    "/demo/enroll.mjs": "examples/demo-portal/enroll.mjs",
    "/demo/der.mjs": "examples/demo-portal/der.mjs",
    "/demo/style.css": "examples/demo-portal/style.css",
}

#: Paths answered with a redirect to the canonical one.
REDIRECTS: dict[str, str] = {"/demo": "/demo/"}

_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    # No registered type for TypeScript; text/plain lets a developer read it in the browser.
    ".ts": "text/plain; charset=utf-8",
}

#: Scripts may be loaded by any site (that is their purpose); an hour of caching, then revalidation by ETag.
CACHE_CONTROL = "public, max-age=3600"

#: The demo page talks only to agents on this machine and is never framed (no clickjacking of "Sign").
_HTML_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws://127.0.0.1:* wss://127.0.0.1:* http://127.0.0.1:* https://127.0.0.1:* "
        "ws://localhost:* wss://localhost:*; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
#: Pages the agent generates (/apidoc.html, server/apidoc_page.py) get the demo page's protection too.
HTML_PAGE_HEADERS = _HTML_HEADERS


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    etag: str

    def headers(self) -> list[tuple[str, str]]:
        """Headers of a 200 or 304 answer (Content-Length is the caller's)."""
        headers = [
            ("Content-Type", self.content_type),
            ("Cache-Control", CACHE_CONTROL),
            ("ETag", self.etag),
            ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if self.name.endswith(".html"):
            headers.extend(_HTML_HEADERS)
        return headers


def find(path: str) -> Asset | None:
    """The asset served at URL path `path`, or None."""
    name = ROUTES.get(path)
    return None if name is None else _load(name)


@cache
def _load(name: str) -> Asset | None:
    for root in (STATIC_DIR, SOURCE_DIR):
        file = root / name
        try:
            body = file.read_bytes()
            break
        except OSError:
            continue
    else:
        return None  # a broken install: answer 404 rather than fail the connection
    content_type = _CONTENT_TYPES.get(file.suffix, "application/octet-stream")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(name, body, content_type, etag)


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches `etag` (weak comparison, as RFC 9110 asks for GET/HEAD)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)
