"""The plain-HTTP side of the agent's port: request heads, the Host guard, and E-IMZO's small pages.

E-IMZO answers HTTP on its WebSocket port: `GET /` proves the agent runs (users open it to test or to trust the
certificate), `OPTIONS` answers Chrome's Private Network Access preflight, anything else is 404. Pure
functions here: bytes in, bytes out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

from eimzo_agent import EIMZO_COMPAT_VERSION, __version__, i18n
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.server import apidoc_page, static_files

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
WEBSOCKET_PATH = "/service/cryptapi"


class BadRequest(ValueError):
    pass


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        """The header's value; None if absent. Repeated headers that must be unique raise BadRequest."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        if len(values) > 1 and name.lower() in ("host", "origin"):
            raise BadRequest(f"repeated {name} header")
        return values[0] if values else None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def is_websocket_upgrade(self) -> bool:
        upgrade = (self.header("Upgrade") or "").lower()
        return self.method == "GET" and "websocket" in [p.strip() for p in upgrade.split(",")]


def parse_request_head(head: bytes) -> HttpRequest:
    """Parse `head` (request line and headers, ending with an empty line)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise BadRequest("undecodable request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not target.startswith("/"):
        raise BadRequest("request target must be a path")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise BadRequest("malformed header line")
        headers.append((name, value.strip()))
        if len(headers) > MAX_HEADERS:
            raise BadRequest("too many headers")
    return HttpRequest(method.upper(), target, version, headers, head)


def host_allowed(host: str | None, port: int) -> bool:
    """Only 127.0.0.1:<port> and localhost:<port>: anything else may be a DNS-rebinding attack."""
    if host is None:
        return False
    return host.strip().lower() in (f"127.0.0.1:{port}", f"localhost:{port}")


def response(status: int, reason: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
             content_length: int | None = None) -> bytes:
    """`content_length` announces another length than `body`'s (HEAD and 304 answers send no body)."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}", "Server: eimzo-agent"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def text_response(status: int, reason: str, text: str) -> bytes:
    return response(
        status,
        reason,
        text.encode("utf-8"),
        [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
    )


def not_found() -> bytes:
    return text_response(404, "Not Found", "404 - Not Found")


def forbidden_host() -> bytes:
    return text_response(403, "Forbidden", "403 - Forbidden: this agent answers only to 127.0.0.1 and localhost")


def forbidden_other_user(lang: str) -> bytes:
    """For a connection from another OS user of this computer (server/peer.py): whose agent this is."""
    return text_response(403, "Forbidden", f"403 - Forbidden: {i18n.text(lang, 'reasons', 'other_user')}")


def bad_request(detail: str) -> bytes:
    return text_response(400, "Bad Request", f"400 - Bad Request: {detail}")


def preflight(request: HttpRequest) -> bytes:
    """Chrome's Private Network Access preflight: a public site may talk to this local agent."""
    origin = request.header("Origin")
    headers = [
        ("Access-Control-Allow-Private-Network", "true"),
        ("Access-Control-Allow-Origin", origin or "*"),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", "*"),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Origin"),
    ]
    return response(204, "No Content", b"", headers)


def status_page(lang: str) -> bytes:
    eimzo_version = ".".join(EIMZO_COMPAT_VERSION)
    t = lambda key: html.escape(  # noqa: E731
        i18n.text(lang, "page", key, eimzo_version=eimzo_version, version=__version__)
    )
    body = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>E-IMZO-v{eimzo_version} · eimzo-agent {__version__}</title></head>\n"
        f"<body><p>{t('installed')} <br />{t('configured')}</p>\n<p>{t('agent')}</p></body></html>\n"
    ).encode()
    return response(
        200,
        "OK",
        body,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Access-Control-Allow-Origin", "*"),
        ],
    )


def apidoc_html(request: HttpRequest, registry: Registry, lang: str) -> bytes:
    """/apidoc.html, generated from the live function table on every request (it is small), never cached."""
    body = apidoc_page.render(registry, lang).encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *static_files.HTML_PAGE_HEADERS,
    ]
    if request.method == "HEAD":
        return response(200, "OK", b"", headers, content_length=len(body))
    return response(200, "OK", body, headers)


def asset_response(request: HttpRequest, asset: static_files.Asset) -> bytes:
    """A served file: 304 when the browser's copy is current (If-None-Match), the body only for GET."""
    headers = asset.headers()
    if static_files.not_modified(request.header("If-None-Match"), asset.etag):
        return response(304, "Not Modified", b"", headers, content_length=len(asset.body))
    if request.method == "HEAD":
        return response(200, "OK", b"", headers, content_length=len(asset.body))
    return response(200, "OK", asset.body, headers)


def route(request: HttpRequest, lang: str, registry: Registry | None = None) -> bytes:
    """The reply to a plain (non-WebSocket) HTTP request whose Host was already accepted. `registry` is the
    agent's function table, for /apidoc.html."""
    if request.method == "OPTIONS":
        return preflight(request)
    if request.method in ("GET", "HEAD") and request.path in ("/", "/index.html"):
        page = status_page(lang)
        if request.method == "HEAD":
            return page.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        return page
    if request.method in ("GET", "HEAD") and request.path == "/apidoc.html" and registry is not None:
        return apidoc_html(request, registry, lang)
    if request.method in ("GET", "HEAD"):
        # The JS client, E-IMZO compatibility scripts and the demo portal (server/static_files.py).
        if request.path in static_files.REDIRECTS:
            return response(301, "Moved Permanently", b"", [("Location", static_files.REDIRECTS[request.path])])
        asset = static_files.find(request.path)
        if asset is not None:
            return asset_response(request, asset)
    return not_found()
