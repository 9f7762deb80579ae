"""/backend/pkcs7/verify/* and the two /frontend/pkcs7 helpers: pkcs7Info, its status code, and the signers whose
revocation the server still has to ask about. CPU work, no I/O (the server runs these in worker threads).

`crypto.pkcs7_info` does the checks (signature, messageDigest, chain at signingTime, the time-stamp token); this
module turns them into E-IMZO-server's status: -10 signature, -12 not valid at signingTime, -11 chain,
-21 time-stamp token. Revocation (-11 / -1) is added by the server afterwards, per signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import x509

from eimzo_agent.crypto import cms, x509_info
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.pkcs7_info import pkcs7_info
from eimzo_agent.portal import replies

__all__ = ["Verified", "attach", "join", "verify"]


@dataclass
class Verified:
    info: dict[str, Any]
    #: One per signer, in order: the status before revocation.
    statuses: list[int]
    #: (signer index, certificate, issuer) for every signer whose chain verified.
    to_check: list[tuple[int, x509.Certificate, x509.Certificate]] = field(default_factory=list)

    @property
    def status(self) -> int:
        """The first signer's failure, else OK; a CMS without signers is a bad signature."""
        if not self.statuses:
            return replies.BAD_SIGNATURE
        return next((status for status in self.statuses if status != replies.OK), replies.OK)

    @property
    def message(self) -> str:
        """Why the first failing signer failed ("" when all passed)."""
        if not self.statuses:
            return "the PKCS#7 has no signers"
        for signer, status in zip(self.info["signers"], self.statuses, strict=True):
            if status == replies.TOKEN_INVALID:
                return f"time-stamp token: {(signer.get('timeStampInfo') or {}).get('exception') or 'not valid'}"
            if status != replies.OK:
                return signer.get("exception") or "the signature is not valid"
        return ""


def verify(cms_der: bytes, content: bytes | None, anchors: Sequence[bytes]) -> Verified:
    """pkcs7Info of an attached (`content` None) or detached CMS; CmsError when it is not SignedData."""
    info = pkcs7_info(cms_der, content=content, anchors=anchors)
    pool = _certificates(cms_der, anchors)
    statuses, to_check = [], []
    for index, signer in enumerate(info["signers"]):
        statuses.append(_status(signer))
        chain = signer["certificate"]
        if signer["certificateVerified"] and chain:
            cert = pool.get(_key(chain[0]))
            issuer = pool.get(_key(chain[1])) if len(chain) > 1 else cert
            if cert is not None and issuer is not None:
                to_check.append((index, cert, issuer))
    return Verified(info, statuses, to_check)


def _status(signer: dict[str, Any]) -> int:
    if not signer["verified"]:
        return replies.BAD_SIGNATURE
    if not signer["certificateValidAtSigningTime"]:
        return replies.NOT_VALID_AT_SIGNING_TIME
    if not signer["certificateVerified"]:
        return replies.BAD_CERTIFICATE
    stamp = signer.get("timeStampInfo")
    if stamp is not None and not stamp.get("verified"):
        return replies.TOKEN_INVALID
    return replies.OK


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["serialNumber"], entry["subjectName"]


def _certificates(cms_der: bytes, anchors: Sequence[bytes]) -> dict[tuple[str, str], x509.Certificate]:
    """The CMS's certificates and the anchors by (hex serial, subject) as pkcs7Info prints them."""
    found: dict[tuple[str, str], x509.Certificate] = {}
    for der in [*cms.parse_signed_data(cms_der).certificates, *anchors]:
        try:
            cert = x509_info.load_certificate(der)
            key = (format(cert.serial_number, "x"), x509_info.format_name(cert.subject))
        except (x509_info.CertificateError, ValueError):
            continue
        found.setdefault(key, cert)
    return found


def attach(document: bytes, detached: bytes) -> tuple[int, str, bytes | None]:
    """make-attached: (status, message, attached CMS). Every signer must sign `document` (else -10)."""
    attached = cms.attach_content(detached, document)
    problem = _signature_problem(attached)
    if problem is not None:
        return replies.BAD_SIGNATURE, problem, None
    return replies.OK, "", attached


def join(first: bytes, second: bytes) -> bytes:
    """join: one CMS with the signers of both; CmsError when they sign different documents."""
    return cms.merge_signed_data(first, second)


def _signature_problem(attached: bytes) -> str | None:
    """Why a signer of `attached` does not sign its content (chains are not asked here), or None."""
    result = verify_cms(attached)
    if not result.signers:
        return "the PKCS#7 has no signers"
    for signer in result.signers:
        if not (signer.certificate_found and signer.signature_valid and signer.digest_matches):
            return signer.problems[0] if signer.problems else "a signature does not cover this document"
    return None
