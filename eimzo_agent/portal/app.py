"""The HTTP face of the verification server: E-IMZO-server's endpoints on aiohttp, and the guards in front of them.

Bodies are raw text as E-IMZO-server takes them (one base64 string, or two joined by `|`), whatever the
Content-Type; the client is `X-Real-IP` (set by the site's nginx) or else the peer address; the site is `Host`.
Guards, in the middleware: the body limit (413 before anything is read), the per-IP rate limit on /frontend/*
(429), /backend/* only on the backend listener when there is one and only with `X-Backend-Secret` when one is
set (403). Every failure is JSON (`replies.failure`); a bug becomes a logged 500, never a stack trace on the wire.
CPU work (CMS parsing and verification) runs in worker threads so the loop keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from eimzo_agent import __version__
from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.cms import CmsError
from eimzo_agent.portal import login_check, replies, verification
from eimzo_agent.portal.challenge_store import ChallengeStoreUnavailable
from eimzo_agent.portal.challenges import BadOrigin, Challenges
from eimzo_agent.portal.rate_limit import RateLimiter
from eimzo_agent.portal.revocation import RevocationChecker, RevocationResult
from eimzo_agent.portal.settings import PortalSettings
from eimzo_agent.portal.timestamping import TsaClient, TsaUnavailable

log = logging.getLogger(__name__)

BACKEND_SECRET_HEADER = "X-Backend-Secret"  # noqa: S105 - a header name
Role = Literal["all", "public", "backend"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """An answer other than 200: HTTP status, a short kind for programs, a message for people."""

    def __init__(self, http_status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.kind = kind
        self.message = message


@dataclass
class Services:
    settings: PortalSettings
    challenges: Challenges
    revocation: RevocationChecker
    limiter: RateLimiter
    #: None when no TSA is configured.
    tsa: TsaClient | None = None


SERVICES = web.AppKey("services", Services)
ROLE = web.AppKey("role", str)


def build_app(services: Services, role: Role = "all") -> web.Application:
    """`role`: "all" (one listener), "public" (no /backend/*), "backend" (/backend/* and /ping, /info only)."""
    app = web.Application(middlewares=[_errors, _guards], client_max_size=services.settings.max_body_bytes)
    app[SERVICES] = services
    app[ROLE] = role
    app.router.add_get("/ping", ping)
    app.router.add_get("/info", info)
    if role != "backend":
        app.router.add_route("GET", "/frontend/challenge", challenge)
        app.router.add_route("POST", "/frontend/challenge", challenge)
        app.router.add_post("/frontend/timestamp/pkcs7", timestamp_pkcs7)
        app.router.add_post("/frontend/pkcs7/make-attached", make_attached)
        app.router.add_post("/frontend/pkcs7/join", join)
    if role != "public":
        app.router.add_post("/backend/auth", auth)
        app.router.add_post("/backend/pkcs7/verify/attached", verify_attached)
        app.router.add_post("/backend/pkcs7/verify/detached", verify_detached)
    return app


# --------------------------------------------------------------------------------------------------------------
# Middleware


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        response = web.json_response(replies.failure(exc.kind, exc.message), status=exc.http_status)
        if exc.http_status == 413:
            response.force_close()  # the rest of the body is not wanted
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(replies.failure("http", exc.reason), status=exc.status)
    except ChallengeStoreUnavailable as exc:
        log.error("%s", exc)
        return web.json_response(replies.failure("store_unavailable", f"{exc}; the login cannot be checked now"),
                                 status=503)
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return web.json_response(replies.failure("internal", "internal server error"), status=500)


@web.middleware
async def _guards(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = request.app[SERVICES]
    settings = services.settings
    path = request.path
    if path.startswith("/backend/"):
        if request.app[ROLE] == "public":
            raise Refused(403, "forbidden", "/backend/* is served on the backend address only")
        if settings.backend_secret is not None:
            given = request.headers.get(BACKEND_SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"), settings.backend_secret.encode()):
                raise Refused(403, "forbidden", f"/backend/* needs the right {BACKEND_SECRET_HEADER} header")
    elif path.startswith("/frontend/") and not services.limiter.allow(client_ip(request)):
        raise Refused(429, "rate_limited", "too many requests from this address; slow down")
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise Refused(413, "too_large", f"the body is over {settings.max_body_bytes} bytes")
    return await handler(request)


# --------------------------------------------------------------------------------------------------------------
# Request parts


def client_ip(request: web.Request) -> str:
    """`X-Real-IP` as the site's nginx sets it (E-IMZO-server's convention), else the peer address."""
    return request.headers.get("X-Real-IP", "").strip() or (request.remote or "")


def site_host(request: web.Request) -> str:
    host = request.headers.get("Host", "").strip()
    if not host:
        raise Refused(400, "bad_request", "the Host header is missing")
    return host


async def read_text(request: web.Request) -> str:
    """The raw body as ASCII, read in chunks up to the limit (a body without Content-Length too)."""
    limit = request.app[SERVICES].settings.max_body_bytes
    chunks, size = [], 0
    try:
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise Refused(413, "too_large", f"the body is over {limit} bytes")
            chunks.append(chunk)
    except (ConnectionError, HttpProcessingError) as exc:  # hung up mid-body, or a broken chunked encoding
        raise Refused(400, "bad_request", f"the body did not arrive whole: {exc}") from None
    try:
        text = b"".join(chunks).decode("ascii")
    except UnicodeDecodeError:
        raise Refused(400, "bad_request", "the body must be base64 text") from None
    if not text.strip():
        raise Refused(400, "bad_request", "the body is empty")
    return text


def decode_base64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, "bad_request", f"{what} is not valid base64") from None
    if not data:
        raise Refused(400, "bad_request", f"{what} is empty")
    return data


def two_parts(text: str, first: str, second: str) -> tuple[bytes, bytes]:
    """`base64|base64`, E-IMZO-server's two-part body."""
    parts = text.split("|")
    if len(parts) != 2:
        raise Refused(400, "bad_request", f"the body must be base64({first})|base64({second})")
    return decode_base64(parts[0], first), decode_base64(parts[1], second)


def reply(body: dict[str, Any], **headers: str) -> web.Response:
    return web.json_response(body, headers=headers or None)


# --------------------------------------------------------------------------------------------------------------
# Endpoints


async def ping(request: web.Request) -> web.Response:
    now = dt.datetime.now(dt.UTC)
    return reply(replies.processed(replies.OK, serverDateTime=replies.server_time(now), yourIP=client_ip(request),
                                   vpnKeyInfo=None))


async def info(request: web.Request) -> web.Response:
    anchors = request.app[SERVICES].settings.anchors
    trusted = [replies.trusted_certificate_info(x509_info.load_certificate(der)) for der in anchors]
    return reply(replies.processed(replies.OK, version=__version__,
                                   serverTime=replies.info_time(dt.datetime.now(dt.UTC)),
                                   vpnKeyInfo=None, trustedCertificates=trusted))


async def challenge(request: web.Request) -> web.Response:
    challenges = request.app[SERVICES].challenges
    scheme = request.headers.get("X-Forwarded-Proto", "").strip().lower() or request.scheme
    try:
        text = await challenges.issue(scheme, site_host(request), client_ip(request))
    except BadOrigin as exc:
        raise Refused(400, "bad_request", str(exc)) from None
    body = replies.processed(replies.OK, challenge=text, ttl=round(challenges.ttl))
    return reply(body, **{"Cache-Control": "no-store", "Pragma": "no-cache"})


#: A login signature up to this size is checked on the event loop (≈ 1-2 ms of CPU: one signer, checked first,
#: and a few certificates): three thread hops per login cost more than that work, and the GIL ping-pong between
#: the loop and a worker thread tripled the tail latency (bench/bench_portal.py). Larger bodies (a long chain, a
#: hostile body) go to a worker thread. E-IMZO's login signatures are 2-5 KB.
INLINE_LOGIN_BYTES = 8 * 1024
T = TypeVar("T")


async def _cpu(size: int, work: Callable[..., T], *args: Any) -> T:
    if size <= INLINE_LOGIN_BYTES:
        return work(*args)
    return await asyncio.to_thread(work, *args)


async def auth(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    cms_der = decode_base64(await read_text(request), "the PKCS#7")
    try:
        content = await _cpu(len(cms_der), login_check.signed_content, cms_der)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"not a PKCS#7 signature: {exc}") from None
    taken = await services.challenges.take(content, site_host(request), client_ip(request))
    if not taken.ok:
        return reply(replies.processed(replies.NO_CHALLENGE, taken.message))
    now = dt.datetime.now(dt.UTC)
    try:
        checked = await _cpu(len(cms_der), login_check.check_login, cms_der, settings.anchors, now,
                             settings.max_clock_skew)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"not a PKCS#7 signature: {exc}") from None
    if checked.status != replies.OK or checked.certificate is None or checked.issuer is None:
        return reply(replies.processed(checked.status, checked.message))
    status, message, extra = _revocation_outcome(
        await services.revocation.check(checked.certificate, checked.issuer), settings.revocation)
    if status != replies.OK:
        return reply(replies.processed(status, message, **extra))
    described = await _cpu(len(cms_der), replies.subject_certificate_info, checked.certificate)
    return reply(replies.processed(replies.OK, subjectCertificateInfo=described))


async def timestamp_pkcs7(request: web.Request) -> web.Response:
    tsa = request.app[SERVICES].tsa
    cms_der = decode_base64(await read_text(request), "the PKCS#7")
    if tsa is None:
        raise Refused(503, "no_tsa", "this server has no time-stamp authority configured ([tsa] url)")
    try:
        stamped = await tsa.stamp_signers(cms_der)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"not a PKCS#7 signature: {exc}") from None
    except TsaUnavailable as exc:
        log.warning("%s", exc)
        raise Refused(503, "tsa_unavailable", str(exc)) from None
    return reply(replies.processed(replies.OK, pkcs7b64=base64.b64encode(stamped.cms_der).decode("ascii"),
                                   timestampedSignerList=replies.dashed_dates(stamped.signers)))


async def verify_attached(request: web.Request) -> web.Response:
    cms_der = decode_base64(await read_text(request), "the PKCS#7")
    return await _verify(request, cms_der, None)


async def verify_detached(request: web.Request) -> web.Response:
    document, cms_der = two_parts(await read_text(request), "document", "pkcs7")
    return await _verify(request, cms_der, document)


async def _verify(request: web.Request, cms_der: bytes, document: bytes | None) -> web.Response:
    services = request.app[SERVICES]
    try:
        result = await asyncio.to_thread(verification.verify, cms_der, document, services.settings.anchors)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"not a PKCS#7 signature: {exc}") from None
    if document is None and "documentBase64" not in result.info:
        raise Refused(400, "bad_request", "the PKCS#7 is detached: use /backend/pkcs7/verify/detached")
    for index, cert, issuer in result.to_check:
        outcome = await services.revocation.check(cert, issuer)
        status, problem, extra = _revocation_outcome(outcome, services.settings.revocation)
        signer = result.info["signers"][index]
        signer.update(_status_fields(outcome), **extra)
        if status != replies.OK and result.statuses[index] == replies.OK:
            result.statuses[index] = status
            signer["exception"] = signer.get("exception") or problem
    if document is not None:
        result.info.pop("documentBase64", None)
    return reply(replies.processed(result.status, result.message, pkcs7Info=replies.dashed_dates(result.info)))


async def make_attached(request: web.Request) -> web.Response:
    document, detached = two_parts(await read_text(request), "document", "pkcs7")
    try:
        status, message, attached = await asyncio.to_thread(verification.attach, document, detached)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"not a usable PKCS#7: {exc}") from None
    if attached is None:
        return reply(replies.processed(status, message))
    return reply(replies.processed(replies.OK, pkcs7b64=base64.b64encode(attached).decode("ascii")))


async def join(request: web.Request) -> web.Response:
    first, second = two_parts(await read_text(request), "pkcs7A", "pkcs7B")
    try:
        joined = await asyncio.to_thread(verification.join, first, second)
    except CmsError as exc:
        raise Refused(400, "bad_request", f"cannot join: {exc}") from None
    return reply(replies.processed(replies.OK, pkcs7b64=base64.b64encode(joined).decode("ascii")))


# --------------------------------------------------------------------------------------------------------------
# Revocation in E-IMZO-server's terms


def _revocation_outcome(result: RevocationResult, mode: str) -> tuple[int, str, dict[str, Any]]:
    """(status, message, extra reply fields): revoked -11 with revokedStatusInfo; not checkable -1 when the
    admin requires a status ("prefer" accepts it); good and skipped are OK."""
    if result.status == "revoked":
        info = replies.revoked_status_info(result.revocation_time, result.reason)
        return replies.BAD_CERTIFICATE, "the certificate is revoked", {"revokedStatusInfo": info}
    if result.status in ("unknown", "unavailable") and mode == "require":
        return replies.STATUS_UNCHECKED, result.problem or "the certificate status could not be checked", {}
    return replies.OK, "", {}


def _status_fields(result: RevocationResult) -> dict[str, Any]:
    """pkcs7Info's per-signer status facts (absent when nothing was asked)."""
    fields: dict[str, Any] = {}
    if result.ocsp_response is not None:
        fields["OCSPResponse"] = base64.b64encode(result.ocsp_response).decode("ascii")
    if result.this_update is not None:
        fields["statusUpdatedAt"] = replies.server_time(result.this_update)
    if result.next_update is not None:
        fields["statusNextUpdateAt"] = replies.server_time(result.next_update)
    return fields
