"""/backend/auth's checks of one login signature, in E-IMZO-server's status codes. CPU work, no I/O: the server
runs it in a worker thread, after it has taken the challenge from the store and before it asks about revocation.

Order (the first failure is the answer): the signature and messageDigest (-10), signingTime against the server
clock (-5), the certificate valid now (-11: an expired key cannot log in, whatever its signingTime says), valid at
signingTime (-12), the chain to the trust anchors (-11) and keyUsage digitalSignature (-11).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import x509

from eimzo_agent.crypto.cms import CmsError, parse_signed_data
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.portal import replies

__all__ = ["CmsError", "LoginCheck", "check_login", "signed_content"]

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@dataclass(frozen=True)
class LoginCheck:
    status: int
    message: str = ""
    certificate: x509.Certificate | None = None
    #: The signer's issuer on the verified chain (for the revocation check); None unless status is OK.
    issuer: x509.Certificate | None = None


def signed_content(cms_der: bytes) -> bytes:
    """The encapsulated content (the challenge); CmsError when `cms_der` is not an attached SignedData."""
    content = parse_signed_data(cms_der).content
    if content is None:
        raise CmsError("the PKCS#7 is detached; a login signature holds the challenge (attached)")
    return content


def check_login(cms_der: bytes, anchors: Sequence[bytes], now: dt.datetime, max_skew: float) -> LoginCheck:
    """Every check but the challenge and revocation; CmsError when `cms_der` is not SignedData at all."""
    if len(parse_signed_data(cms_der).signer_infos) != 1:  # before any signature is checked: bounded work
        return LoginCheck(replies.BAD_SIGNATURE, "a login signature has exactly one signer")
    verification = verify_cms(cms_der, None, anchors)
    signer = verification.signers[0]
    if not (signer.certificate_found and signer.signature_valid and signer.digest_matches):
        return LoginCheck(replies.BAD_SIGNATURE, _first(signer.problems, "the signature is invalid"))
    cert = signer.certificate
    assert cert is not None  # certificate_found
    when = signer.signing_time
    if when is None:
        return LoginCheck(replies.BAD_SIGNING_TIME, "the signature has no signingTime", cert)
    if abs((when - now).total_seconds()) > max_skew:
        return LoginCheck(replies.BAD_SIGNING_TIME, f"signingTime {when:%Y-%m-%d %H:%M:%S}Z is too far from the "
                          "server clock: check the date and time of the user's computer", cert)
    if not _valid_at(cert, now):
        return LoginCheck(replies.BAD_CERTIFICATE, "the certificate is expired or not yet valid", cert)
    if not _valid_at(cert, when):
        return LoginCheck(replies.NOT_VALID_AT_SIGNING_TIME, "the certificate was not valid at signingTime", cert)
    if not signer.chain_valid:
        return LoginCheck(replies.BAD_CERTIFICATE, _first(signer.problems, "no chain to a trusted CA"), cert)
    if not _may_sign(cert):
        return LoginCheck(replies.BAD_CERTIFICATE, "the certificate's keyUsage lacks digitalSignature", cert)
    chain = signer.chain
    return LoginCheck(replies.OK, "", cert, chain[1] if len(chain) > 1 else chain[0])


def _first(problems: Sequence[str], default: str) -> str:
    return problems[0] if problems else default


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    validity = cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= when <= validity["not_after"].native)


def _may_sign(cert: x509.Certificate) -> bool:
    """keyUsage present with digitalSignature (Web eID's rule; E-IMZO's signing keys all carry it)."""
    try:
        usage = cert.key_usage_value
    except _ASN1_ERRORS:
        return False
    return usage is not None and "digital_signature" in usage.native
