"""Is a certificate revoked? OCSP first (the certificate's AIA), its CRL distribution points next, both cached.

E-IMZO-server asks the national CA over its VPN; a portal running this server asks whatever the certificate names:
the OCSP responder of its Authority Information Access extension, else the CRLs of its CRL Distribution Points
(http and https URLs only). The bytes are checked by `crypto.ocsp` / `crypto.crl` (signed by the issuer or its
authorised responder, current, about this certificate) in a worker thread, since an O'zDSt signature check is
pure Python and must not stall the event loop.

`check` never raises for network or parse trouble: an unreachable responder, a timeout or a response that fails its
checks becomes status "unavailable" with the reason in `problem`, and the caller's mode decides what that means
(contract: "require" refuses, "prefer" accepts). The URLs come from the certificate, so callers check only
certificates whose chain they already verified. Caches live in memory: OCSP answers per (issuer key, serial)
until their nextUpdate or `cache_seconds`, whichever is sooner (good and revoked only); CRLs per URL until their
nextUpdate (or `cache_seconds` when they give none). Failures are not cached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import aiohttp
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import serialization

from eimzo_agent.crypto import crl as crl_module
from eimzo_agent.crypto import ocsp, x509_info

__all__ = ["RevocationChecker", "RevocationMode", "RevocationResult"]

RevocationMode = Literal["require", "prefer", "off"]
Status = Literal["good", "revoked", "unknown", "unavailable", "skipped"]

#: Clocks of the server, the responder and the CA may disagree this much (Web eID allows 15 minutes).
CLOCK_SKEW = dt.timedelta(minutes=15)
#: A response without nextUpdate says "newer information is always available": older than this is refused.
OCSP_MAX_AGE = dt.timedelta(minutes=15)
#: Larger answers are not OCSP responses; larger CRLs than any national CA publishes are refused unread.
MAX_OCSP_BYTES = 256 * 1024
MAX_CRL_BYTES = 64 * 1024 * 1024
#: Cache sizes: entries beyond these drop the oldest.
MAX_OCSP_ENTRIES = 100_000
MAX_CRL_ENTRIES = 64

NO_URL_PROBLEM = "the certificate names no OCSP responder or CRL"


@dataclass(frozen=True)
class RevocationResult:
    """The outcome of one check (contract 2 of issue 13)."""

    status: Status
    source: str = ""  # "ocsp" | "crl" | ""
    revocation_time: dt.datetime | None = None
    reason: str | None = None  # crlReason name, e.g. "keyCompromise"
    ocsp_response: bytes | None = None  # DER OCSPResponse, for pkcs7Info.OCSPResponse
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    problem: str | None = None  # why unknown/unavailable (English, for `message`)


class _FetchError(Exception):
    """A download that failed; the text says why, for `problem`."""


Certificate = asn1_x509.Certificate | crypto_x509.Certificate


class RevocationChecker:
    """Checks certificates' revocation status for a portal server; one per server, `close()` at shutdown."""

    def __init__(self, mode: RevocationMode = "require", *, timeout: float = 5.0,
                 cache_seconds: float = 300.0) -> None:
        if mode not in ("require", "prefer", "off"):
            raise ValueError(f"unknown revocation mode {mode!r} (choose require, prefer or off)")
        self.mode: RevocationMode = mode
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._session: aiohttp.ClientSession | None = None
        self._ocsp_cache: OrderedDict[tuple[bytes, int], tuple[float, RevocationResult]] = OrderedDict()
        self._crl_cache: OrderedDict[str, tuple[float, crl_module.Crl, set[bytes]]] = OrderedDict()
        self._crl_locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self, cert: Certificate, issuer: Certificate) -> RevocationResult:
        """The revocation status of `cert`, issued by `issuer` (asn1crypto or `cryptography` certificates)."""
        if self.mode == "off":
            return RevocationResult("skipped")
        try:
            cert, issuer = _as_asn1(cert), _as_asn1(issuer)
            if not x509_info.issued_by(cert, issuer):
                return RevocationResult("unknown", problem="the certificate was not issued by the given CA")
            cid = ocsp.cert_id(cert, issuer)
            ocsp_urls = [url for url in cert.ocsp_urls if _is_http(url)]
            crl_urls = _crl_urls(cert)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            return RevocationResult("unknown", problem=f"the certificate cannot be read: {exc}")
        cached = self._cached_ocsp(cid)
        if cached is not None:
            return cached
        if not ocsp_urls and not crl_urls:
            return RevocationResult("unknown", problem=NO_URL_PROBLEM)
        problems: list[str] = []
        unknown: RevocationResult | None = None
        for url in ocsp_urls:
            result = await self._check_ocsp(url, cid, issuer)
            if result.status in ("good", "revoked"):
                return result
            unknown = unknown or (result if result.status == "unknown" else None)
            problems.append(result.problem or "")
        for url in crl_urls:
            result = await self._check_crl(url, cid.serial, issuer)
            if result.status in ("good", "revoked"):
                return result
            problems.append(result.problem or "")
        return unknown or RevocationResult("unavailable", problem="; ".join(problems))

    # ----------------------------------------------------------------------------------------------------------
    # OCSP

    def _cached_ocsp(self, cid: ocsp.CertId) -> RevocationResult | None:
        key = (cid.issuer_key_hash, cid.serial)
        entry = self._ocsp_cache.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._ocsp_cache[key]
            return None
        return entry[1]

    async def _check_ocsp(self, url: str, cid: ocsp.CertId, issuer: asn1_x509.Certificate) -> RevocationResult:
        nonce = os.urandom(32)
        try:
            body = await self._fetch(url, MAX_OCSP_BYTES, ocsp.build_request(cid, nonce))
        except _FetchError as exc:
            return RevocationResult("unavailable", "ocsp", problem=f"OCSP responder {url}: {exc}")
        now = dt.datetime.now(dt.UTC)
        try:
            answer = await asyncio.to_thread(ocsp.check_response, body, cid, issuer, nonce=nonce, now=now,
                                             skew=CLOCK_SKEW, max_age=OCSP_MAX_AGE)
        except ocsp.OcspError as exc:
            return RevocationResult("unavailable", "ocsp", problem=f"OCSP responder {url}: {exc}")
        result = RevocationResult(answer.status, "ocsp", answer.revocation_time, answer.reason, body,
                                  answer.this_update, answer.next_update,
                                  "the OCSP responder does not know the certificate"
                                  if answer.status == "unknown" else None)
        if answer.status != "unknown":  # "unknown" sends the next check to the CRL too: not kept
            self._remember_ocsp(cid, result, now)
        return result

    def _remember_ocsp(self, cid: ocsp.CertId, result: RevocationResult, now: dt.datetime) -> None:
        lifetime = self.cache_seconds
        if result.next_update is not None:
            lifetime = min(lifetime, (result.next_update - now).total_seconds())
        if lifetime <= 0:
            return
        key = (cid.issuer_key_hash, cid.serial)
        self._ocsp_cache[key] = (time.monotonic() + lifetime, result)
        self._ocsp_cache.move_to_end(key)
        while len(self._ocsp_cache) > MAX_OCSP_ENTRIES:
            self._ocsp_cache.popitem(last=False)

    # ----------------------------------------------------------------------------------------------------------
    # CRL

    async def _check_crl(self, url: str, serial: int, issuer: asn1_x509.Certificate) -> RevocationResult:
        # One download per URL at a time: a burst of logins while the CRL is stale waits for the same fetch.
        lock = self._crl_locks.setdefault(url, asyncio.Lock())
        async with lock:
            try:
                crl = await self._verified_crl(url, issuer)
            except (_FetchError, crl_module.CrlError) as exc:
                return RevocationResult("unavailable", "crl", problem=f"CRL {url}: {exc}")
        entry = crl.lookup(serial)
        if entry is None:
            return RevocationResult("good", "crl", this_update=crl.this_update, next_update=crl.next_update)
        return RevocationResult("revoked", "crl", entry.time, entry.reason, this_update=crl.this_update,
                                next_update=crl.next_update)

    async def _verified_crl(self, url: str, issuer: asn1_x509.Certificate) -> crl_module.Crl:
        issuer_id = hashlib.sha256(x509_info.spki_der(issuer) + issuer["tbs_certificate"]["subject"].dump()).digest()
        entry = self._crl_cache.get(url)
        if entry is not None and entry[0] > time.monotonic():
            if issuer_id not in entry[2]:  # the same list asked about for another CA: check it against that one
                await asyncio.to_thread(crl_module.check_crl, entry[1], issuer, now=dt.datetime.now(dt.UTC),
                                        skew=CLOCK_SKEW)
                entry[2].add(issuer_id)
            return entry[1]
        body = await self._fetch(url, MAX_CRL_BYTES, None)
        now = dt.datetime.now(dt.UTC)
        crl = await asyncio.to_thread(_load_and_check, body, issuer, now)
        lifetime = (crl.next_update - now).total_seconds() if crl.next_update is not None else self.cache_seconds
        if lifetime > 0:
            self._crl_cache[url] = (time.monotonic() + lifetime, crl, {issuer_id})
            self._crl_cache.move_to_end(url)
            while len(self._crl_cache) > MAX_CRL_ENTRIES:
                self._crl_cache.popitem(last=False)
        return crl

    # ----------------------------------------------------------------------------------------------------------
    # HTTP

    async def _fetch(self, url: str, limit: int, ocsp_request: bytes | None) -> bytes:
        """GET a CRL or POST an OCSP request (RFC 6960 appendix A.1); the body, at most `limit` bytes."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            if ocsp_request is None:
                context = self._session.get(url)
            else:
                context = self._session.post(url, data=ocsp_request,
                                             headers={"Content-Type": "application/ocsp-request"})
            async with context as response:
                if response.status != 200:
                    raise _FetchError(f"HTTP status {response.status}")
                if (response.content_length or 0) > limit:
                    raise _FetchError(f"the answer is larger than {limit} bytes")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > limit:
                        raise _FetchError(f"the answer is larger than {limit} bytes")
                return bytes(body)
        except TimeoutError as exc:
            raise _FetchError(f"no answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise _FetchError(f"cannot reach it ({exc or type(exc).__name__})") from exc


def _load_and_check(body: bytes, issuer: asn1_x509.Certificate, now: dt.datetime) -> crl_module.Crl:
    crl = crl_module.load_crl(body)
    crl_module.check_crl(crl, issuer, now=now, skew=CLOCK_SKEW)
    return crl


def _as_asn1(cert: Certificate) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    return x509_info.load_certificate(cert.public_bytes(serialization.Encoding.DER))


def _crl_urls(cert: asn1_x509.Certificate) -> list[str]:
    urls = []
    for point in cert.crl_distribution_points:
        try:
            url = point.url
        except ValueError:  # a name relative to the issuer: no URL to fetch
            continue
        if _is_http(url):
            urls.append(url)
    return urls


def _is_http(url: str | None) -> bool:
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))
