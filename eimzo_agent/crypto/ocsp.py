"""OCSP (RFC 6960) as bytes: the CertID of a certificate, the request, and the checks a client makes on an answer.

Pure library, no network: `portal.revocation` posts the request and hands the answer back to `check_response`;
the development responder (`dev.ocsp`) reads requests with `parse_request`. Everything is built and read with
asn1crypto rather than `cryptography.x509.ocsp`, because the national O'zDSt certificates carry keys
`cryptography` cannot load: the CertID hashes the issuer's name and key bytes as encoded (SHA-1, what every
responder understands), and response signatures go through `x509_info.verify_signature` (RSA, ECDSA, O'zDSt).

A response is believed only when it is signed by the certificate's issuer itself or by a responder certificate
that the issuer signed for id-kp-OCSPSigning (RFC 6960 §4.2.2.2), answers for exactly the CertID asked about,
echoes the request's nonce if it echoes one at all, and is current: thisUpdate not in the future beyond the clock
skew, nextUpdate (when given) not passed, and without nextUpdate no older than `max_age`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

from asn1crypto import core, x509
from asn1crypto import ocsp as asn1_ocsp

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.crl import reason_name
from eimzo_agent.crypto.x509_info import AlgorithmError, CertificateError

__all__ = [
    "CertId",
    "OcspError",
    "OcspStatus",
    "build_request",
    "cert_id",
    "check_response",
    "key_hash",
    "parse_request",
]

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)
_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9"


class OcspError(ValueError):
    """An OCSP message that is malformed, or a response that must not be believed."""


def key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the certificate's subjectPublicKey BIT STRING value (CertID.issuerKeyHash, ResponderID byKey).

    Read with generic ASN.1 classes: asn1crypto's key classes raise on the national key OIDs."""
    spki = core.Sequence.load(x509_info.spki_der(cert), strict=True)
    bits = spki[1]
    if not isinstance(bits, core.BitString):
        raise CertificateError("the SubjectPublicKeyInfo holds no BIT STRING")
    return hashlib.sha1(bits.contents[1:]).digest()  # noqa: S324 - RFC 6960's identifier hash, not a security check


@dataclass(frozen=True)
class CertId:
    """Which certificate a request or a single response is about (RFC 6960 §4.1.1), SHA-1 form."""

    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    def asn1(self) -> asn1_ocsp.CertId:
        return asn1_ocsp.CertId({
            "hash_algorithm": {"algorithm": "sha1", "parameters": core.Null()},
            "issuer_name_hash": self.issuer_name_hash,
            "issuer_key_hash": self.issuer_key_hash,
            "serial_number": self.serial,
        })

    @classmethod
    def from_asn1(cls, value: asn1_ocsp.CertId) -> CertId | None:
        """None for a CertID hashed with anything but SHA-1 (we never ask with another hash)."""
        if value["hash_algorithm"]["algorithm"].native != "sha1":
            return None
        return cls(value["issuer_name_hash"].native, value["issuer_key_hash"].native, value["serial_number"].native)


def cert_id(cert: x509.Certificate, issuer: x509.Certificate) -> CertId:
    """The CertID of `cert` issued by `issuer`: hashes of the issuer's name (as encoded) and key, and the serial."""
    name_hash = hashlib.sha1(issuer["tbs_certificate"]["subject"].dump()).digest()  # noqa: S324 - see key_hash
    return CertId(name_hash, key_hash(issuer), cert["tbs_certificate"]["serial_number"].native)


def build_request(cid: CertId, nonce: bytes | None = None) -> bytes:
    """An unsigned OCSPRequest (DER) for one certificate, with a nonce extension (RFC 8954) when given."""
    tbs: dict[str, object] = {"request_list": [{"req_cert": cid.asn1()}]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def parse_request(der: bytes) -> tuple[list[asn1_ocsp.CertId], bytes | None]:
    """The CertIDs a request asks about, as sent (answers echo them), and its nonce; OcspError if malformed."""
    try:
        request = asn1_ocsp.OCSPRequest.load(der, strict=True)
        ids = [item["req_cert"] for item in request["tbs_request"]["request_list"]]
        for value in ids:
            value.native  # noqa: B018 - asn1crypto parses lazily: surface errors now
        nonce = request.nonce_value.native if request.nonce_value is not None else None
    except _ASN1_ERRORS as exc:
        raise OcspError(f"not an OCSP request: {exc}") from exc
    if not ids:
        raise OcspError("the OCSP request asks about no certificate")
    return ids, nonce


@dataclass(frozen=True)
class OcspStatus:
    """What a believed response says about the certificate."""

    status: Literal["good", "revoked", "unknown"]
    this_update: dt.datetime
    next_update: dt.datetime | None
    revocation_time: dt.datetime | None = None
    reason: str | None = None  # RFC 5280 name, e.g. "keyCompromise"


def check_response(der: bytes, cid: CertId, issuer: x509.Certificate, *, nonce: bytes | None, now: dt.datetime,
                   skew: dt.timedelta, max_age: dt.timedelta) -> OcspStatus:
    """Check an OCSPResponse (DER) to a request for `cid` (see the module docstring); OcspError if not believed."""
    try:
        response = asn1_ocsp.OCSPResponse.load(der, strict=True)
        status = response["response_status"].native
        if status != "successful":
            raise OcspError(f"the responder answered {status!r}")
        if response["response_bytes"]["response_type"].native != "basic_ocsp_response":
            raise OcspError("the response is not a basic OCSP response")
        basic = response.basic_ocsp_response
        data = basic["tbs_response_data"]
        signer = _signer(basic, data["responder_id"], issuer, now, skew)
        _check_signature(basic, signer)
        if nonce is not None and response.nonce_value is not None and response.nonce_value.native != nonce:
            raise OcspError("the response's nonce is not the request's (a replayed answer)")
        single = next((item for item in data["responses"] if CertId.from_asn1(item["cert_id"]) == cid), None)
        if single is None:
            raise OcspError("the response does not answer for the certificate asked about")
        return _status(single, now, skew, max_age)
    except OcspError:
        raise
    except (AlgorithmError, CertificateError) as exc:
        raise OcspError(f"the response's signature cannot be checked: {exc}") from exc
    except _ASN1_ERRORS as exc:
        raise OcspError(f"not an OCSP response: {exc}") from exc


def _signer(basic: asn1_ocsp.BasicOCSPResponse, responder_id: asn1_ocsp.ResponderId, issuer: x509.Certificate,
            now: dt.datetime, skew: dt.timedelta) -> x509.Certificate:
    """The certificate that signed the response: the issuer, or a delegated responder the issuer authorised."""
    if _names(responder_id, issuer):
        return issuer
    for choice in basic["certs"]:
        candidate = x509_info.load_certificate(choice.dump())
        if not _names(responder_id, candidate):
            continue
        if x509_info.spki_der(candidate) == x509_info.spki_der(issuer):
            return candidate  # the issuer under another certificate of the same key
        if not (x509_info.issued_by(candidate, issuer) and x509_info.verify_certificate_signature(candidate, issuer)):
            raise OcspError("the responder's certificate was not issued by the certificate's CA")
        usage = candidate.extended_key_usage_value
        if usage is None or _OCSP_SIGNING not in {purpose.dotted for purpose in usage}:
            raise OcspError("the responder's certificate is not authorised for OCSP signing")
        validity = candidate["tbs_certificate"]["validity"]
        if not validity["not_before"].native - skew <= now <= validity["not_after"].native + skew:
            raise OcspError("the responder's certificate is not valid now")
        return candidate
    raise OcspError("the response is signed by neither the certificate's CA nor a responder it authorised")


def _names(responder_id: asn1_ocsp.ResponderId, cert: x509.Certificate) -> bool:
    if responder_id.name == "by_key":
        return bool(responder_id.chosen.native == key_hash(cert))
    return bool(responder_id.chosen == cert["tbs_certificate"]["subject"])


def _check_signature(basic: asn1_ocsp.BasicOCSPResponse, signer: x509.Certificate) -> None:
    valid = x509_info.verify_signature(x509_info.spki_der(signer), basic["signature_algorithm"]["algorithm"].dotted,
                                       basic["tbs_response_data"].dump(), basic["signature"].native)
    if not valid:
        raise OcspError("the response's signature does not verify")


def _status(single: asn1_ocsp.SingleResponse, now: dt.datetime, skew: dt.timedelta,
            max_age: dt.timedelta) -> OcspStatus:
    this_update = single["this_update"].native
    next_update = single["next_update"].native
    if this_update > now + skew:
        raise OcspError(f"the response was made in the future ({this_update:%Y-%m-%d %H:%M:%S} UTC)")
    if next_update is not None and next_update < now - skew:
        raise OcspError(f"the response is out of date (next update was due {next_update:%Y-%m-%d %H:%M:%S} UTC)")
    if next_update is None and this_update < now - max_age - skew:
        raise OcspError(f"the response is too old (made {this_update:%Y-%m-%d %H:%M:%S} UTC)")
    status = single["cert_status"]
    if status.name == "good":
        return OcspStatus("good", this_update, next_update)
    if status.name == "revoked":
        info = status.chosen
        reason = info["revocation_reason"]
        return OcspStatus("revoked", this_update, next_update, info["revocation_time"].native,
                          reason_name(reason.native if not isinstance(reason, core.Void) else None))
    return OcspStatus("unknown", this_update, next_update)
