"""The demo portal of `eimzo-agent portal serve --demo`: OneID-style "Kirish (ERI bilan)" and "verify a signed file".

It plays both halves of a real portal, so a developer can read how theirs should work:
- the pages (examples/demo-portal/login.html, verify.html) that ask the agent for a signature over the server's
  challenge (`EimzoClient.login`) or let the person choose a signed file;
- the portal's own backend (`/demo/api/*` here), which never checks a signature itself: it posts the PKCS#7 to the
  verification server's `/backend/*` over HTTP at `backend_url`, exactly as a PHP/Java backend does with
  E-IMZO-server (raw base64 body, `Host` and `X-Real-IP` of the browser's request), and turns the answer into a
  session: who the person is (name, PINFL, TIN) and, for a legal entity's officer, the role "the organisation".

Sessions live in process memory (a demo); the cookie is HttpOnly and SameSite=Strict, so another site can neither
read it nor make the browser send it with a forged request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

log = logging.getLogger(__name__)

#: The verification server's shared secret for /backend/*, when its admin set one.
BACKEND_SECRET_HEADER = "X-Backend-Secret"  # noqa: S105 - a header name, not a secret
COOKIE = "eimzo_demo_session"
SESSION_SECONDS = 3600.0
MAX_SESSIONS = 10_000
#: A login PKCS#7 is a few kilobytes; a file to verify may be larger (base64 of the document and the signature).
MAX_LOGIN_BODY = 64 * 1024
MAX_VERIFY_BODY = 16 * 1024 * 1024
BACKEND_TIMEOUT = ClientTimeout(total=30)

# E-IMZO-server's subjectName labels.
PINFL = "1.2.860.3.16.1.2"
ORG_TIN = "1.2.860.3.16.1.1"

#: URL path under /demo/ → the file in the repository. A checkout serves them from there; a wheel carries them
#: beside the agent's own served files (eimzo_agent/server/static/, see setup.py).
FILES: dict[str, str] = {
    "": "examples/demo-portal/login.html",
    "login.html": "examples/demo-portal/login.html",
    "login.mjs": "examples/demo-portal/login.mjs",
    "verify.html": "examples/demo-portal/verify.html",
    "verify.mjs": "examples/demo-portal/verify.mjs",
    "portal-texts.mjs": "examples/demo-portal/portal-texts.mjs",
    "style.css": "examples/demo-portal/style.css",
    "eimzo-agent.mjs": "browser_js/eimzo-agent.mjs",
}
_ROOTS = (Path(__file__).resolve().parents[1] / "server" / "static", Path(__file__).resolve().parents[2])
_CONTENT_TYPES = {".html": "text/html", ".mjs": "text/javascript", ".css": "text/css"}

#: The pages talk to the agent on this machine and to their own server only, and are never framed.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws://127.0.0.1:* wss://127.0.0.1:* ws://localhost:* wss://localhost:*; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@dataclass
class Login:
    """What the portal knows about the person after /backend/auth said yes."""

    person: dict[str, str]
    organisation: dict[str, str] | None
    certificate: dict[str, str]
    role: str = "person"
    expires: float = field(default_factory=lambda: time.monotonic() + SESSION_SECONDS)

    def view(self) -> dict[str, Any]:
        return {
            "status": 1,
            "message": "",
            "person": self.person,
            "organisation": self.organisation,
            "roles": ["person", "organisation"] if self.organisation else ["person"],
            "role": self.role,
            "certificate": self.certificate,
        }


class Sessions:
    """Logins by random cookie id; bounded, the oldest dropped first, expired ones never returned."""

    def __init__(self) -> None:
        self._logins: OrderedDict[str, Login] = OrderedDict()

    def start(self, login: Login) -> str:
        session_id = secrets.token_urlsafe(32)
        self._logins[session_id] = login
        while len(self._logins) > MAX_SESSIONS:
            self._logins.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> Login | None:
        login = self._logins.get(session_id) if session_id else None
        if login is not None and login.expires < time.monotonic():
            del self._logins[session_id]  # type: ignore[arg-type]
            return None
        return login

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._logins.pop(session_id, None)


@dataclass
class Backend:
    """The verification server's /backend/* as the portal's backend calls it."""

    url: str
    secret: str | None
    client: ClientSession | None = None

    async def post(self, path: str, body: bytes, request: web.Request) -> dict[str, Any]:
        """POST the raw body with the browser's Host and IP; the server's JSON, or ValueError when it has none."""
        assert self.client is not None, "the demo app has not started"
        headers = {
            "Host": request.host,
            "X-Real-IP": request.headers.get("X-Real-IP") or request.remote or "",
            "X-Forwarded-Host": request.host,
            "X-Real-Host": request.host,
            "X-Forwarded-Proto": request.headers.get("X-Forwarded-Proto") or request.scheme,
            "Content-Type": "application/octet-stream",
        }
        if self.secret:
            headers[BACKEND_SECRET_HEADER] = self.secret
        async with self.client.post(self.url.rstrip("/") + path, data=body, headers=headers) as reply:
            try:
                answer = json.loads(await reply.read())
            except ValueError:
                raise ValueError(f"{path} answered HTTP {reply.status} without JSON") from None
            if not isinstance(answer, dict):
                raise ValueError(f"{path} answered HTTP {reply.status} with {type(answer).__name__}")
            answer.setdefault("status", None if reply.status == 200 else -reply.status)
            return answer


def demo_app(backend_url: str, backend_secret: str | None) -> web.Application:
    """The demo portal, to be mounted with `app.add_subapp("/demo/", demo_app(...))`."""
    app = web.Application()
    backend = Backend(backend_url, backend_secret)
    sessions = Sessions()

    async def client_context(_app: web.Application):  # type: ignore[no-untyped-def]
        backend.client = ClientSession(timeout=BACKEND_TIMEOUT, auto_decompress=False)
        yield
        await backend.client.close()

    app.cleanup_ctx.append(client_context)
    handlers = _Handlers(backend, sessions)
    app.router.add_post("/api/login", handlers.login)
    app.router.add_get("/api/session", handlers.session)
    app.router.add_post("/api/role", handlers.role)
    app.router.add_post("/api/logout", handlers.logout)
    app.router.add_post("/api/verify", handlers.verify)
    app.router.add_get("/{name:[a-z0-9.-]*}", _static_file)
    return app


async def _static_file(request: web.Request) -> web.Response:
    name = FILES.get(request.match_info["name"])
    body = _read(name) if name else None
    if name is None or body is None:
        raise web.HTTPNotFound()
    suffix = Path(name).suffix
    headers = _PAGE_HEADERS if suffix == ".html" else {"X-Content-Type-Options": "nosniff",
                                                       "Cache-Control": "no-cache"}
    return web.Response(body=body, content_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"),
                        charset="utf-8", headers=headers)


def _read(name: str) -> bytes | None:
    for root in _ROOTS:
        try:
            return (root / name).read_bytes()
        except OSError:
            continue
    return None


def _reply(status: int | None, message: str, http_status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"status": status, "message": message, **extra}, status=http_status,
                             headers={"Cache-Control": "no-store"})


async def _body(request: web.Request, limit: int) -> bytes | web.Response:
    """The raw body, or the answer that refuses it: no Content-Length (411; the pages' fetch always sends one),
    larger than `limit` (413, checked before reading), cut short (400)."""
    length = request.content_length
    if length is None:
        return _reply(None, "send the body with a Content-Length", 411, error="body")
    if length > limit:
        return _reply(None, f"send at most {limit} bytes", 413, error="body")
    try:
        return await request.content.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        return _reply(None, "the body ended early", 400, error="body")


class _Handlers:
    def __init__(self, backend: Backend, sessions: Sessions) -> None:
        self.backend = backend
        self.sessions = sessions

    async def _ask(self, path: str, body: bytes, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            return await self.backend.post(path, body, request)
        except (ClientError, TimeoutError, ValueError) as exc:
            log.warning("demo portal: the verification server did not answer %s: %s", path, exc)
            return _reply(None, f"the verification server did not answer: {exc}", 502, error="backend")

    async def login(self, request: web.Request) -> web.Response:
        body = await _body(request, MAX_LOGIN_BODY)
        if isinstance(body, web.Response):
            return body
        if not body.strip():
            return _reply(None, "send the signed challenge (base64 PKCS#7) as the body", 400, error="body")
        answer = await self._ask("/backend/auth", body.strip(), request)
        if isinstance(answer, web.Response):
            return answer
        if answer.get("status") != 1:
            return _reply(answer.get("status"), str(answer.get("message") or ""))
        info = answer.get("subjectCertificateInfo") or {}
        login = _login_from(info)
        session_id = self.sessions.start(login)
        response = web.json_response(login.view(), headers={"Cache-Control": "no-store"})
        response.set_cookie(COOKIE, session_id, path=_cookie_path(request), httponly=True, samesite="Strict",
                            secure=request.secure, max_age=int(SESSION_SECONDS))
        return response

    async def session(self, request: web.Request) -> web.Response:
        login = self.sessions.get(request.cookies.get(COOKIE))
        if login is None:
            return _reply(None, "not logged in", 401, error="session")
        return web.json_response(login.view(), headers={"Cache-Control": "no-store"})

    async def role(self, request: web.Request) -> web.Response:
        login = self.sessions.get(request.cookies.get(COOKIE))
        if login is None:
            return _reply(None, "not logged in", 401, error="session")
        try:
            wanted = (await request.json()).get("role")
        except (ValueError, AttributeError):
            wanted = None
        if wanted not in ("person", "organisation"):
            return _reply(None, 'role must be "person" or "organisation"', 400, error="role")
        if wanted == "organisation" and login.organisation is None:
            # Only a certificate with a legal-entity TIN speaks for an organisation.
            return _reply(None, "this certificate carries no legal-entity TIN", 403, error="role")
        login.role = wanted
        return web.json_response(login.view(), headers={"Cache-Control": "no-store"})

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.end(request.cookies.get(COOKIE))
        response = _reply(1, "")
        response.del_cookie(COOKIE, path=_cookie_path(request))
        return response

    async def verify(self, request: web.Request) -> web.Response:
        body = await _body(request, MAX_VERIFY_BODY)
        if isinstance(body, web.Response):
            return body
        body = body.strip()
        if not body:
            return _reply(None, "send base64(PKCS#7), or base64(document)|base64(PKCS#7)", 400, error="body")
        detached = b"|" in body
        path = "/backend/pkcs7/verify/detached" if detached else "/backend/pkcs7/verify/attached"
        answer = await self._ask(path, body, request)
        if isinstance(answer, web.Response):
            return answer
        info = answer.get("pkcs7Info") or {}
        signers = [_signer_view(s) for s in info.get("signers") or [] if isinstance(s, dict)]
        document = info.get("documentBase64")
        return _reply(answer.get("status"), str(answer.get("message") or ""), detached=detached, signers=signers,
                      documentSize=_base64_size(document) if isinstance(document, str) else None)


def _cookie_path(request: web.Request) -> str:
    """The sub-app's prefix (/demo/): the cookie goes nowhere else on the server."""
    return request.path.rsplit("/api/", 1)[0] + "/"


def _login_from(info: dict[str, Any]) -> Login:
    subject = info.get("subjectName") or {}
    name = " ".join(p for p in (subject.get("Name"), subject.get("SURNAME")) if p)
    person = {"fullName": subject.get("CN") or name, "pinfl": subject.get(PINFL, ""), "tin": subject.get("UID", "")}
    organisation = None
    if subject.get(ORG_TIN):
        organisation = {"name": subject.get("O", ""), "tin": subject[ORG_TIN], "title": subject.get("T", "")}
    certificate = {key: str(info.get(key) or "") for key in ("serialNumber", "validFrom", "validTo")}
    return Login(person, organisation, certificate)


def _signer_view(signer: dict[str, Any]) -> dict[str, Any]:
    """What a page shows of one pkcs7Info signer: who, when, and which checks passed."""
    chain = signer.get("certificate") or []
    leaf = chain[0] if chain and isinstance(chain[0], dict) else {}
    subject = leaf.get("subjectInfo") or {}
    stamp = signer.get("timeStampInfo")
    return {
        "name": subject.get("CN", ""),
        "pinfl": subject.get(PINFL, ""),
        "tin": subject.get("UID", ""),
        "organisation": subject.get("O", ""),
        "organisationTin": subject.get(ORG_TIN, ""),
        "serialNumber": leaf.get("serialNumber", ""),
        "issuer": (leaf.get("issuerInfo") or {}).get("CN", ""),
        "signingTime": signer.get("signingTime"),
        "verified": bool(signer.get("verified")),
        "certificateVerified": bool(signer.get("certificateVerified")),
        "certificateValid": bool(signer.get("certificateValidAtSigningTime")),
        "revoked": signer.get("revokedStatusInfo") is not None,
        "timestamp": ({"time": stamp.get("time"), "tsa": stamp.get("tsa"), "verified": bool(stamp.get("verified"))}
                      if isinstance(stamp, dict) else None),
        "exception": signer.get("exception"),
    }


def _base64_size(text: str) -> int:
    stripped = text.rstrip("=")
    return len(stripped) * 3 // 4
