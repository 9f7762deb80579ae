"""/frontend/timestamp/pkcs7: an RFC 3161 token from the configured TSA for every signer that has none (CAdES-T).

Requests, tokens and attaching are `crypto.timestamp`'s; this module only does the HTTP (RFC 3161 §3.4:
POST application/timestamp-query, answer application/timestamp-reply) with aiohttp's client and a timeout.
O'zDSt/OZMST signers get the O'zDSt 1106 imprint the vendor's TSA expects, others SHA-256.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
from asn1crypto import cms as asn1_cms
from asn1crypto import core
from asn1crypto import x509 as asn1_x509

from eimzo_agent.crypto import cms, timestamp, x509_info
from eimzo_agent.crypto.ozdst_keys import is_ozdst_key_oid

__all__ = ["Stamped", "TsaClient", "TsaUnavailable"]

#: A TimeStampResp is a few kilobytes; a TSA that sends more is not answering a time-stamp request.
MAX_REPLY_BYTES = 256 * 1024


class TsaUnavailable(Exception):
    """The TSA could not be reached or refused; the message names the URL and why."""


@dataclass(frozen=True)
class Stamped:
    cms_der: bytes
    #: certificate_info of each signer that got a token (empty: every signer already had one).
    signers: list[dict[str, Any]]


class TsaClient:
    """One configured TSA and one HTTP client session for the server's lifetime (making a session per request
    would build a TLS context every time)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self._timeout = ClientTimeout(total=timeout)
        self._session: ClientSession | None = None

    async def stamp_signers(self, cms_der: bytes) -> Stamped:
        """`cms_der` with a token on every signer that lacked one; CmsError for a bad CMS, TsaUnavailable."""
        pending = await asyncio.to_thread(_unstamped, cms_der)
        stamped: list[dict[str, Any]] = []
        for serial_hex, signature, cert in pending:
            ozdst = is_ozdst_key_oid(x509_info.spki_algorithm(cert))
            request = timestamp.request_for_signature(signature, ozdst=ozdst)
            reply = await self._post(request)
            try:
                cms_der = await asyncio.to_thread(timestamp.attach_token, cms_der, serial_hex, reply)
            except timestamp.TimestampError as exc:
                raise TsaUnavailable(f"the TSA at {self.url} answered with an unusable token: {exc}") from None
            stamped.append(x509_info.certificate_info(cert))
        return Stamped(cms_der, stamped)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, request: bytes) -> bytes:
        if self._session is None:
            self._session = ClientSession(timeout=self._timeout)
        url = self.url
        try:
            async with self._session.post(url, data=request,
                                          headers={"Content-Type": "application/timestamp-query"}) as reply:
                if reply.status != 200:
                    raise TsaUnavailable(f"the TSA at {url} answered HTTP {reply.status}")
                body = await reply.content.read(MAX_REPLY_BYTES + 1)
        except (ClientError, TimeoutError, OSError) as exc:
            raise TsaUnavailable(f"the TSA at {url} is not answering: {exc or type(exc).__name__}") from None
        if len(body) > MAX_REPLY_BYTES:
            raise TsaUnavailable(f"the TSA at {url} sent an oversized reply")
        return body


def _unstamped(cms_der: bytes) -> list[tuple[str, bytes, asn1_x509.Certificate]]:
    """(serial hex, signature value, certificate) of each signer without a signatureTimeStampToken."""
    parsed = cms.parse_signed_data(cms_der)
    info = cms.read_signed_data(cms_der)
    pending = []
    for der, signer in zip(parsed.signer_infos, info.signers, strict=True):
        if _has_token(der):
            continue
        if signer.certificate_der is None:  # without it the signer can be neither named nor reported
            raise cms.CmsError(f"the certificate of signer {signer.serial_hex or '?'} is not in the PKCS#7")
        try:
            cert = x509_info.load_certificate(signer.certificate_der)
        except x509_info.CertificateError as exc:  # found by tests/test_portal_fuzz.py: a 500 before
            raise cms.CmsError(f"the signer's certificate is malformed: {exc}") from None
        pending.append((signer.serial_hex, signer.signature, cert))
    return pending


def _has_token(signer_info_der: bytes) -> bool:
    unsigned = asn1_cms.SignerInfo.load(signer_info_der)["unsigned_attrs"]
    if isinstance(unsigned, core.Void):
        return False
    return any(attr["type"].dotted == timestamp.OID_SIGNATURE_TIME_STAMP_TOKEN for attr in unsigned)
