"""Who signed a CMS and what checks passed, in E-IMZO-server's `pkcs7Info` shape.

Pure library (bytes in, dict out): the agent's `pkcs7.get_pkcs7_*_info` and a portal-side verifier
(/backend/pkcs7/verify/*) share it. The checks are `cms_verify.verify_cms`'s (signature, messageDigest, chain to
the given anchors at signing time); this module adds the facts a page shows: signer names, the certificate chain,
signing time, certificate policies and, when the signer carries one, its RFC 3161 timestamp.

Not checked: revocation (no CRL or OCSP), so E-IMZO-server's `OCSPResponse`, `statusUpdatedAt`,
`statusNextUpdateAt` and `revokedStatusInfo` are absent.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

from asn1crypto import cms as asn1_cms
from asn1crypto import core, x509

from eimzo_agent.crypto import timestamp, x509_info
from eimzo_agent.crypto.cms import CmsError, parse_signed_data
from eimzo_agent.crypto.cms_verify import MAX_CHAIN_LENGTH, MAX_LINK_CHECKS, SignerVerification, verify_cms
from eimzo_agent.crypto.der import encoded

__all__ = ["CmsError", "pkcs7_info"]

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
#: id-aa-signatureTimeStampToken (RFC 3161 appendix A): CAdES-T's unsigned attribute.
OID_SIGNATURE_TIMESTAMP = timestamp.OID_SIGNATURE_TIME_STAMP_TOKEN


def pkcs7_info(
    cms_der: bytes,
    *,
    content: bytes | None = None,
    anchors: Sequence[bytes],
    at: dt.datetime | None = None,
    tz: dt.tzinfo | None = None,
) -> dict[str, Any]:
    """`pkcs7Info` of `cms_der`: `signers[]` and, for an attached CMS, `documentBase64`.

    `content` is the signed data of a detached CMS; `anchors` are DER root certificates; `at` (timezone-aware)
    overrides when certificates must be valid (default: each signer's signingTime, else now); dates are printed
    in `tz` (default: the machine's zone). Raises CmsError when `cms_der` is not CMS SignedData at all.
    """
    verification = verify_cms(cms_der, content, anchors, at)
    parsed = parse_signed_data(cms_der)
    pool = _certificates(parsed.certificates) + [x509_info.load_certificate(der) for der in anchors]
    signers = [
        _signer(der, checked, pool, anchors, at, tz)
        for der, checked in zip(parsed.signer_infos, verification.signers, strict=True)
    ]
    info: dict[str, Any] = {"signers": signers}
    if parsed.content is not None:
        info["documentBase64"] = base64.b64encode(parsed.content).decode("ascii")
    return info


def _certificates(choices: list[bytes]) -> list[x509.Certificate]:
    found = []
    for der in choices:
        try:
            found.append(x509_info.load_certificate(der))
        except x509_info.CertificateError:
            continue  # attribute certificates and unreadable ones are shown nowhere
    return found


def _signer(der: bytes, checked: SignerVerification, pool: list[x509.Certificate], anchors: Sequence[bytes],
            at: dt.datetime | None, tz: dt.tzinfo | None) -> dict[str, Any]:
    try:
        info = asn1_cms.SignerInfo.load(der, strict=True)
        signature = info["signature"].native.hex()
        digest = _message_digest(info)
        signer_id = _signer_id(info["sid"], checked.certificate)
        stamp = _timestamp_info(info, anchors, tz)
    except _ASN1_ERRORS:
        signature, digest, signer_id, stamp = None, None, {"issuer": None, "subjectSerialNumber": None}, None
    cert = checked.certificate
    chain = list(checked.chain) or (_chain_by_name(cert, pool) if cert is not None else [])
    when = checked.signing_time or at or dt.datetime.now(dt.UTC)
    entry: dict[str, Any] = {
        "signerId": signer_id,
        "signingTime": x509_info.format_local_time(checked.signing_time, tz) if checked.signing_time else None,
        "signature": signature,
        "digest": digest,
        "certificate": [_certificate(c, tz) for c in chain],
        "verified": checked.certificate_found and checked.signature_valid and checked.digest_matches,
        "certificateVerified": checked.chain_valid,
        "certificateValidAtSigningTime": cert is not None and _valid_at(cert, when),
        "trustedCertificate": (_certificate(checked.chain[-1], tz)
                               if checked.chain and encoded(checked.chain[-1]) in set(anchors) else None),
        "policyIdentifiers": _policies(cert) if cert is not None else [],
        "exception": checked.problems[0] if checked.problems else None,
    }
    if stamp is not None:
        entry["timeStampInfo"] = stamp
    return entry


def _message_digest(info: asn1_cms.SignerInfo) -> str | None:
    attributes = info["signed_attrs"]
    if isinstance(attributes, core.Void):
        return None
    for attribute in attributes:
        if attribute["type"].dotted == _OID_MESSAGE_DIGEST and len(attribute["values"]) == 1:
            value = attribute["values"][0].native
            return value.hex() if isinstance(value, bytes) else None
    return None


def _signer_id(sid: asn1_cms.SignerIdentifier, cert: x509.Certificate | None) -> dict[str, Any]:
    """issuerAndSerialNumber as printed names and Java's hex serial; a subjectKeyIdentifier sid borrows both from
    the certificate it found (nothing else names the signer)."""
    if sid.name == "issuer_and_serial_number":
        return {"issuer": x509_info.format_name(sid.chosen["issuer"]),
                "subjectSerialNumber": format(sid.chosen["serial_number"].native, "x")}
    if cert is None:
        return {"issuer": None, "subjectSerialNumber": None}
    return {"issuer": x509_info.format_name(cert.issuer), "subjectSerialNumber": format(cert.serial_number, "x")}


def _chain_by_name(cert: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """Signer, its CA, ... for display when no trusted chain was found: each link is named as issuer and its
    signature verifies (a look-alike CA with the same name is not shown as the issuer); validity is not asked."""
    chain = [cert]
    checks_left = MAX_LINK_CHECKS  # as in cms_verify: look-alike CAs must not cost unbounded signature checks
    while len(chain) < MAX_CHAIN_LENGTH and not x509_info.issued_by(chain[-1], chain[-1]):
        on_chain = {encoded(link) for link in chain}
        issuer = None
        for candidate in pool:
            if encoded(candidate) in on_chain or not x509_info.issued_by(chain[-1], candidate):
                continue
            if checks_left <= 0:
                return chain
            checks_left -= 1
            if _signed_by(chain[-1], candidate):
                issuer = candidate
                break
        if issuer is None:
            break
        chain.append(issuer)
    return chain


def _signed_by(subject: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        return x509_info.verify_certificate_signature(subject, issuer)
    except x509_info.AlgorithmError:
        return False


def _certificate(cert: x509.Certificate, tz: dt.tzinfo | None) -> dict[str, Any]:
    tbs = cert["tbs_certificate"]
    return {
        "subjectInfo": x509_info.name_attributes(tbs["subject"]),
        "issuerInfo": x509_info.name_attributes(tbs["issuer"]),
        **x509_info.certificate_info(cert, tz),
    }


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    validity = cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= when <= validity["not_after"].native)


def _policies(cert: x509.Certificate) -> list[str]:
    try:
        policies = cert.certificate_policies_value
        return [p["policy_identifier"].dotted for p in policies] if policies is not None else []
    except _ASN1_ERRORS:
        return []


def _timestamp_info(info: asn1_cms.SignerInfo, anchors: Sequence[bytes],
                    tz: dt.tzinfo | None) -> dict[str, Any] | None:
    """The signer's first id-aa-signatureTimeStampToken as E-IMZO-server's `timeStampInfo`, checked against the
    signature value and (its TSA certificate) the same anchors; None when the signer has no token."""
    unsigned = info["unsigned_attrs"]
    if isinstance(unsigned, core.Void):
        return None
    values = [value for attribute in unsigned if attribute["type"].dotted == OID_SIGNATURE_TIMESTAMP
              for value in attribute["values"]]
    if not values:
        return None
    try:
        token = timestamp.read_token(values[0].dump())
    except timestamp.TimestampError as exc:
        return {"verified": False, "exception": str(exc)}
    problems = timestamp.verify_token(token, signature=info["signature"].native, anchors=anchors)
    return {**timestamp.token_info(token, tz), "verified": not problems,
            "exception": problems[0] if problems else None}
