"""RFC 3161 time-stamps the way E-IMZO's `tsaclient` and `attach_timestamp_token_pkcs7` use them (CAdES-T).

Pure library, bytes in and out, no I/O: requests over a signature value or over data, reading a token (or a whole
TimeStampResp) into a `TimestampToken`, E-IMZO-server's `timeStampInfo` view of it, checking it, and attaching it
to a CMS signer as the unsigned attribute id-aa-signatureTimeStampToken.

O'zDSt/OZMST signers get the O'zDSt 1106 imprint (GOST R 34.11-94, OID 1.2.860.3.15.1.3.2.1.1, in the byte order
E-IMZO writes its messageDigest), as the vendor's TSA expects; everyone else SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, core, tsp, x509
from asn1crypto import cms as asn1_cms

from eimzo_agent.crypto import cms, x509_info
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst_keys import OZDST, OZMST
from eimzo_agent.crypto.x509_info import AlgorithmError

__all__ = [
    "OID_OZDST_1106",
    "OID_SHA256",
    "OID_SIGNATURE_TIME_STAMP_TOKEN",
    "TimeStampResponse",
    "TimestampError",
    "TimestampToken",
    "attach_token",
    "read_token",
    "request_for_data",
    "request_for_signature",
    "token_info",
    "verify_token",
]

OID_OZDST_1106 = OZDST.digest_oid  # 1.2.860.3.15.1.3.2.1.1
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_SIGNATURE_TIME_STAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"  # noqa: S105 - an OID, not a secret
OID_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"

#: Imprint algorithm names as E-IMZO prints them (its get_digest_hex names O'zDSt 1106 so).
_DIGEST_NAMES = {
    OID_OZDST_1106: "OZDST-1106-2009-2-A",
    OZMST.digest_oid: "OZMST-285-2024-2-A",
    OID_SHA256: "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
    "1.3.14.3.2.26": "SHA-1",
}

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


class TimeStampResponse(core.Sequence):
    """RFC 3161 TimeStampResp with the token OPTIONAL, as the RFC has it (asn1crypto's requires it, so a
    rejection could neither be read nor written with it)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", asn1_cms.ContentInfo, {"optional": True})]


class TimestampError(ValueError):
    """Not a time-stamp token, or a token that cannot be used here; the message is safe to show."""


@dataclass(frozen=True)
class TimestampToken:
    """A decoded RFC 3161 token (ContentInfo(SignedData(TSTInfo)))."""

    time: dt.datetime  # genTime, aware, UTC
    policy: str  # dotted OID
    serial: int
    tsa_name: str | None  # the TSTInfo's tsa field as text (directory names as E-IMZO prints names)
    imprint_algorithm: str  # dotted OID
    imprint_digest: bytes
    certificate: x509.Certificate | None  # the TSA certificate, when the token includes it
    der: bytes  # the token itself (not the TimeStampResp around it)
    nonce: int | None = None
    #: The TSA's SignerInfo identifier: (issuer name, serial) or None when it names the key by its identifier.
    signer_issuer: str | None = None
    signer_serial: int | None = None


# --------------------------------------------------------------------------------------------------------------
# Requests


def request_for_signature(signature: bytes, *, ozdst: bool, nonce: bool = True) -> bytes:
    """TimeStampReq DER over a CMS signature value (CAdES-T), certReq true."""
    return _request(signature, ozdst=ozdst, nonce=nonce)


def request_for_data(data: bytes, *, ozdst: bool) -> bytes:
    """TimeStampReq DER over `data`, certReq true, with a nonce."""
    return _request(data, ozdst=ozdst, nonce=True)


def _request(data: bytes, *, ozdst: bool, nonce: bool) -> bytes:
    oid = OID_OZDST_1106 if ozdst else OID_SHA256
    request: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": _digest_algorithm(oid), "hashed_message": _digest(oid, data)},
        "cert_req": True,
    }
    if nonce:
        request["nonce"] = secrets.randbits(63) | 1 << 62  # positive, 8 bytes, never zero
    return tsp.TimeStampReq(request).dump()


def _digest_algorithm(oid: str) -> algos.DigestAlgorithm:
    # E-IMZO writes the national digest OID with an explicit NULL, as OpenSSL does for SHA-2 in ts requests.
    return algos.DigestAlgorithm({"algorithm": oid, "parameters": core.Null()})


def _digest(oid: str, data: bytes) -> bytes:
    if oid == OID_OZDST_1106:
        return gost94_digest(data)
    try:
        return x509_info.digest(oid, data)
    except AlgorithmError as exc:
        raise TimestampError(str(exc)) from None


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_token(token_der: bytes) -> TimestampToken:
    """Decode a token, or the token inside a TimeStampResp; TimestampError for anything else."""
    if not isinstance(token_der, bytes | bytearray | memoryview) or not token_der:
        raise TimestampError("the time-stamp token is empty")
    data = bytes(token_der)
    try:
        info = asn1_cms.ContentInfo.load(data, strict=True)
        is_content_info = info["content_type"].dotted == "1.2.840.113549.1.7.2"
    except _ASN1_ERRORS:
        is_content_info = False
    if not is_content_info:
        data = _token_from_response(data)
        info = asn1_cms.ContentInfo.load(data, strict=True)
    try:
        return _decode(info, data)
    except TimestampError:
        raise
    except _ASN1_ERRORS as exc:
        raise TimestampError(f"malformed time-stamp token: {exc}") from None


def _token_from_response(data: bytes) -> bytes:
    try:
        response = TimeStampResponse.load(data, strict=True)
        status = response["status"]["status"].native
        token = response["time_stamp_token"]
        response["status"].native  # noqa: B018  - asn1crypto parses lazily; force it so damage surfaces here
    except _ASN1_ERRORS:
        raise TimestampError("not a time-stamp token or time-stamp response") from None
    if status not in ("granted", "granted_with_mods") or isinstance(token, core.Void):
        text = " ".join(response["status"]["status_string"].native or [])
        raise TimestampError(f"the time-stamp authority refused the request ({status}{': ' + text if text else ''})")
    return token.dump()


def _decode(info: asn1_cms.ContentInfo, der: bytes) -> TimestampToken:
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].dotted != "1.2.840.113549.1.9.16.1.4":
        raise TimestampError("the signed content is not a TSTInfo: not a time-stamp token")
    if isinstance(encap["content"], core.Void):
        raise TimestampError("the time-stamp token holds no TSTInfo")
    tst = tsp.TSTInfo.load(bytes(encap["content"]), strict=True)
    tst.native  # noqa: B018  - asn1crypto parses lazily; force it so damage surfaces here
    signer_infos = signed["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampError(f"a time-stamp token has one signer, this one has {len(signer_infos)}")
    sid = signer_infos[0]["sid"]
    issuer = serial = None
    if sid.name == "issuer_and_serial_number":
        issuer = x509_info.format_name(sid.chosen["issuer"])
        serial = sid.chosen["serial_number"].native
    certificate = _tsa_certificate(signed, sid)
    nonce = tst["nonce"].native
    return TimestampToken(
        time=tst["gen_time"].native.astimezone(dt.UTC),
        policy=tst["policy"].dotted,
        serial=tst["serial_number"].native,
        tsa_name=_general_name(tst["tsa"]),
        imprint_algorithm=tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted,
        imprint_digest=tst["message_imprint"]["hashed_message"].native,
        certificate=certificate,
        der=der,
        nonce=nonce,
        signer_issuer=issuer,
        signer_serial=serial,
    )


def _tsa_certificate(signed: asn1_cms.SignedData, sid: asn1_cms.SignerIdentifier) -> x509.Certificate | None:
    certificates = signed["certificates"]
    if isinstance(certificates, core.Void):
        return None
    for choice in certificates:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            if cert.serial_number == sid.chosen["serial_number"].native and cert.issuer == sid.chosen["issuer"]:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _general_name(name: core.Asn1Value) -> str | None:
    if isinstance(name, core.Void):
        return None
    if name.name == "directory_name":
        # The choice is [4] EXPLICIT: format the Name inside, not the tagged wrapper.
        return x509_info.format_name(name.chosen.untag())
    value = name.chosen.native
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------------------------
# E-IMZO-server's timeStampInfo


def token_info(token: TimestampToken, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """The `timeStampInfo` object E-IMZO-server puts into pkcs7Info (and `get_timestamp_token_info` answers)."""
    return {
        "signerId": {
            "issuer": token.signer_issuer,
            "subjectSerialNumber": format(token.signer_serial, "x") if token.signer_serial is not None else None,
        },
        "tsaPolicy": token.policy,
        "time": x509_info.format_local_time(token.time, tz),
        "hashAlgorithm": _DIGEST_NAMES.get(token.imprint_algorithm, token.imprint_algorithm),
        "serialNumber": format(token.serial, "x"),  # Java's BigInteger.toString(16), like every serial E-IMZO prints
        "tsa": token.tsa_name,
        "messageImprintAlgOID": token.imprint_algorithm,
        "messageImprintDigest": token.imprint_digest.hex(),
    }


# --------------------------------------------------------------------------------------------------------------
# Checking


def verify_token(token: TimestampToken, *, signature: bytes, anchors: Sequence[bytes] = ()) -> list[str]:
    """Problems with `token` as a time-stamp over the signature value `signature`; an empty list means valid.

    Checked: the imprint is the digest of `signature`; the token's CMS signature and messageDigest verify with
    the TSA certificate; the TSA certificate has extendedKeyUsage timeStamping (RFC 3161 §2.3) and is the one
    signingCertificate(V2) names; with `anchors`, the chain from the TSA certificate to one of them at genTime.
    """
    problems = []
    if not _imprint_matches(token, signature):
        problems.append("the time-stamp imprint does not match the signature value")
    try:
        result = verify_cms(token.der, trust_anchors=anchors, at=token.time)
    except cms.CmsError as exc:
        return [*problems, f"the time-stamp token is not a readable CMS: {exc}"]
    if len(result.signers) != 1:
        return [*problems, "the time-stamp token must have exactly one signer"]
    signer = result.signers[0]
    for problem in signer.problems:
        if anchors or problem != "no trust anchors were given":
            problems.append(f"time-stamp token: {problem}")
    if signer.certificate is not None:
        try:
            problems.extend(_certificate_problems(token, signer.certificate))
        except _ASN1_ERRORS:
            problems.append("the token's signingCertificate attribute is malformed")
    return problems


def _imprint_matches(token: TimestampToken, signature: bytes) -> bool:
    try:
        expected = _digest(token.imprint_algorithm, signature)
    except TimestampError:
        return False
    return hmac.compare_digest(expected, token.imprint_digest)


def _certificate_problems(token: TimestampToken, cert: x509.Certificate) -> list[str]:
    problems = []
    try:
        usages = cert.extended_key_usage_value
        eku = [oid.dotted for oid in usages] if usages is not None else []
    except _ASN1_ERRORS:
        eku = []
    if OID_TIME_STAMPING not in eku:
        problems.append("the TSA certificate lacks the extended key usage timeStamping")
    if not _signing_certificate_matches(token, cert):
        problems.append("the token's signingCertificate attribute does not name the TSA certificate")
    return problems


def _signing_certificate_matches(token: TimestampToken, cert: x509.Certificate) -> bool:
    """ESS signingCertificate (SHA-1) or signingCertificateV2: its first certificate hash is the TSA's."""
    signer_info = asn1_cms.ContentInfo.load(token.der)["content"]["signer_infos"][0]
    attrs = signer_info["signed_attrs"]
    if isinstance(attrs, core.Void):
        return False
    for attr in attrs:
        kind = attr["type"].native
        if kind == "signing_certificate_v2":
            first = attr["values"][0]["certs"][0]
            algorithm = first["hash_algorithm"]["algorithm"].native
            try:
                actual = hashlib.new(algorithm, cert.dump()).digest()
            except (ValueError, TypeError):
                return False
            return hmac.compare_digest(actual, first["cert_hash"].native)
        if kind == "signing_certificate":
            first = attr["values"][0]["certs"][0]
            actual = hashlib.sha1(cert.dump()).digest()  # noqa: S324 - RFC 2634's ESSCertID is SHA-1 by definition
            return hmac.compare_digest(actual, first["cert_hash"].native)
    return False


# --------------------------------------------------------------------------------------------------------------
# Attaching (CAdES-T)


def attach_token(cms_der: bytes, signer_serial_hex: str, token_der: bytes) -> bytes:
    """Add `token_der` as signatureTimeStampToken to the SignerInfo whose certificate serial is `signer_serial_hex`.

    Refuses (TimestampError) an input that is not CMS, an unknown serial, a signer that already has a token, and a
    token whose imprint is not the digest of that signer's signature value. Everything but that one SignerInfo
    is carried over as found (see `cms.add_unsigned_attribute`).
    """
    token = read_token(token_der)
    try:
        parsed = cms.parse_signed_data(cms_der)
        signers = [_signer_key(der, parsed.certificates) for der in parsed.signer_infos]
    except cms.CmsError as exc:
        raise TimestampError(f"not a PKCS#7 signature: {exc}") from None
    except _ASN1_ERRORS:
        raise TimestampError("not a PKCS#7 signature: malformed SignerInfo") from None
    wanted = _serial_key(signer_serial_hex)
    matches = [i for i, (serial, _) in enumerate(signers) if serial == wanted]
    if not matches:
        raise TimestampError(f"the PKCS#7 has no signer with certificate serial {signer_serial_hex}")
    if len(matches) > 1:
        raise TimestampError(f"the PKCS#7 has several signers with certificate serial {signer_serial_hex}")
    index = matches[0]
    if _has_token(parsed.signer_infos[index]):
        raise TimestampError(f"the signer {signer_serial_hex} already has a time-stamp token")
    if not _imprint_matches(token, signers[index][1]):
        raise TimestampError("the time-stamp token was made for another signature (its imprint does not match "
                             f"the signature of signer {signer_serial_hex})")
    attribute = asn1_cms.CMSAttribute(
        {"type": "signature_time_stamp_token", "values": [asn1_cms.ContentInfo.load(token.der)]}
    ).dump()
    try:
        return cms.add_unsigned_attribute(cms_der, index, attribute)
    except cms.CmsError as exc:
        raise TimestampError(f"not a PKCS#7 signature: {exc}") from None


def _serial_key(serial_hex: str) -> int | None:
    """E-IMZO's serial text (lower hex, as create_pkcs7 replies) as a number; None when it is not hex."""
    try:
        return int(serial_hex.strip().lower().removeprefix("0x"), 16)
    except ValueError:
        return None


def _signer_key(signer_info_der: bytes, certificates: list[bytes]) -> tuple[int | None, bytes]:
    """(certificate serial, signature value) of one SignerInfo, touching only those fields: asn1crypto decodes
    lazily, and decoding a whole SignerInfo that already carries tokens costs far more than the attach itself."""
    info = asn1_cms.SignerInfo.load(signer_info_der)
    sid = info["sid"]
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
    else:  # subjectKeyIdentifier: the serial is the certificate's
        key_id = sid.chosen.native
        found = (x509.Certificate.load(der) for der in certificates if der[:1] == b"\x30")
        serial = next((cert.serial_number for cert in found if cert.key_identifier == key_id), None)
    return serial, info["signature"].native


def _has_token(signer_info_der: bytes) -> bool:
    unsigned = asn1_cms.SignerInfo.load(signer_info_der)["unsigned_attrs"]
    if isinstance(unsigned, core.Void):
        return False
    return any(attr["type"].dotted == OID_SIGNATURE_TIME_STAMP_TOKEN for attr in unsigned)
