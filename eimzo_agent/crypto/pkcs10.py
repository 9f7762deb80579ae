"""PKCS#10 certificate requests as E-IMZO makes them: subject from an X.500 string, policies, signature, info.

Pure: bytes and strings in, bytes and dicts out. Names are parsed the way BouncyCastle (which E-IMZO is built on)
parses them: `LABEL=value` pairs split on unescaped commas, `+` joining a multi-valued RDN, backslash escapes
(`\\,` `\\+` `\\=` `\\\\` and `\\XX` hex), labels case-insensitive (the labels `x509_info.format_name` prints,
plus common synonyms), dotted OIDs allowed, RDNs kept in the order written. Values are encoded as BouncyCastle's
BCStyle does: C, SERIALNUMBER, DN (dnQualifier) and TelephoneNumber as PrintableString, E (emailAddress) and DC as
IA5String, everything else as UTF8String. Certificate policies (E-IMZO's `cp_list`, comma-separated OIDs) go into
a critical certificatePolicies extension inside an extensionRequest attribute.

Requests are encoded by hand (a few TLVs: asn1crypto's object model costs milliseconds per request) and read with
generic asn1crypto classes (its key and CSR classes raise KeyError on the national key OIDs).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

from asn1crypto import core, pem
from asn1crypto import x509 as asn1_x509

from .der import tlv
from .new_keys import PrivateKey, sign, signature_algorithm_der, spki_der
from .x509_info import AlgorithmError, format_name, key_algorithm_name, signature_algorithm_name, verify_signature

__all__ = [
    "Pkcs10Error",
    "PolicyError",
    "SubjectError",
    "create_pkcs10",
    "decode_pkcs10",
    "parse_policies",
    "parse_subject",
    "pkcs10_info",
    "request_policies",
    "request_spki",
]

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)

OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_CERTIFICATE_POLICIES = "2.5.29.32"


class SubjectError(ValueError):
    """The subject string is malformed or names an attribute we do not know."""


class PolicyError(ValueError):
    """cp_list holds something that is not an OID."""


class Pkcs10Error(ValueError):
    """The bytes are not a PKCS#10 request."""


# --------------------------------------------------------------------------------------------------------------
# Subject names

#: Upper-cased label -> OID: BouncyCastle's BCStyle DefaultLookUp (what E-IMZO accepts), incl. the labels
#: `format_name` prints. "SN" is serialNumber in BouncyCastle (not surname, as in RFC 4519): E-IMZO reads it so.
_LABELS: dict[str, str] = {
    "C": "2.5.4.6", "O": "2.5.4.10", "T": "2.5.4.12", "TITLE": "2.5.4.12", "OU": "2.5.4.11", "CN": "2.5.4.3",
    "L": "2.5.4.7", "ST": "2.5.4.8", "SERIALNUMBER": "2.5.4.5", "SN": "2.5.4.5", "STREET": "2.5.4.9",
    "E": "1.2.840.113549.1.9.1", "EMAILADDRESS": "1.2.840.113549.1.9.1", "DC": "0.9.2342.19200300.100.1.25",
    "UID": "0.9.2342.19200300.100.1.1", "SURNAME": "2.5.4.4", "GIVENNAME": "2.5.4.42", "INITIALS": "2.5.4.43",
    "GENERATION": "2.5.4.44", "UNIQUEIDENTIFIER": "2.5.4.45", "DN": "2.5.4.46", "PSEUDONYM": "2.5.4.65",
    "POSTALADDRESS": "2.5.4.16", "NAME": "2.5.4.41", "DATEOFBIRTH": "1.3.6.1.5.5.7.9.1",
    "PLACEOFBIRTH": "1.3.6.1.5.5.7.9.2", "GENDER": "1.3.6.1.5.5.7.9.3",
    "COUNTRYOFCITIZENSHIP": "1.3.6.1.5.5.7.9.4", "COUNTRYOFRESIDENCE": "1.3.6.1.5.5.7.9.5",
    "NAMEATBIRTH": "1.3.36.8.3.14", "POSTALCODE": "2.5.4.17", "BUSINESSCATEGORY": "2.5.4.15",
    "TELEPHONENUMBER": "2.5.4.20", "UNSTRUCTUREDNAME": "1.2.840.113549.1.9.2",
    "UNSTRUCTUREDADDRESS": "1.2.840.113549.1.9.8",
}
_PRINTABLE_OIDS = frozenset({"2.5.4.6", "2.5.4.5", "2.5.4.46", "2.5.4.20"})
_IA5_OIDS = frozenset({"1.2.840.113549.1.9.1", "0.9.2342.19200300.100.1.25"})
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
_DOTTED_OID = re.compile(r"(?:[0-2])(?:\.(?:0|[1-9][0-9]*))+")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside backslash escapes and double quotes (escapes are kept for `_unescape`)."""
    parts, current, escaped, quoted = [], [], False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped or quoted:
        raise SubjectError("the subject ends inside an escape or a quoted value")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    out, i, raw = [], 0, bytearray()
    while i < len(value):
        ch = value[i]
        if ch == "\\" and _HEX_PAIR.fullmatch(value[i + 1:i + 3]):
            raw.append(int(value[i + 1:i + 3], 16))  # \XX: a UTF-8 byte (RFC 4514)
            i += 3
            continue
        if raw:
            out.append(raw.decode("utf-8", errors="strict"))
            raw = bytearray()
        if ch == "\\":
            ch = value[i + 1]
            i += 1
        elif ch == '"':
            i += 1
            continue
        out.append(ch)
        i += 1
    if raw:
        out.append(raw.decode("utf-8", errors="strict"))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def _encode_value(oid: str, value: str) -> bytes:
    if value.startswith("#") and len(value) > 1:  # BouncyCastle: "#" + hex of the DER value
        try:
            return core.Asn1Value.load(bytes.fromhex(value[1:]), strict=True).dump()
        except (ValueError, TypeError) as exc:
            raise SubjectError(f"the value of {oid} is neither text nor hex DER") from exc
    if oid in _PRINTABLE_OIDS:
        if not _PRINTABLE.fullmatch(value):
            raise SubjectError(f"the value of {oid} may hold only PrintableString characters")
        return tlv(0x13, value.encode("ascii"))
    if oid in _IA5_OIDS:
        if not value.isascii():
            raise SubjectError(f"the value of {oid} may hold only ASCII characters")
        return tlv(0x16, value.encode("ascii"))
    try:
        return tlv(0x0C, value.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape
        raise SubjectError(f"the value of {oid} is not valid Unicode") from exc


def parse_subject(text: str) -> bytes:
    """The DER Name for an X.500 string such as "CN=ALIYEV VALI,UID=512345678,1.2.860.3.16.1.2=31234567890123,C=UZ".

    SubjectError for an empty string, a part without "=", an unknown label, an empty value, a bad country code.
    """
    if not text.strip():
        raise SubjectError("the subject is empty")
    rdns = []
    for part in _split(text, ","):
        if not part.strip():
            raise SubjectError("the subject has an empty part (two commas in a row?)")
        atvs = []
        for item in _split(part, "+"):
            label, equals, raw_value = item.partition("=")
            label = label.strip()
            if not equals or not label:
                raise SubjectError(f"{item.strip()!r} is not LABEL=value")
            oid = label if _DOTTED_OID.fullmatch(label) else _LABELS.get(label.upper())
            if oid is None:
                raise SubjectError(f"unknown attribute label {label!r}")
            try:
                value = _unescape(raw_value)
            except (UnicodeDecodeError, IndexError) as exc:
                raise SubjectError(f"the value of {label} has a broken escape") from exc
            if not value:
                raise SubjectError(f"the value of {label} is empty")
            if oid == "2.5.4.6" and not re.fullmatch(r"[A-Za-z]{2}", value):
                raise SubjectError(f"the country must be a two-letter code, not {value!r}")
            try:
                oid_der = _oid(oid)
            except ValueError as exc:
                raise SubjectError(f"{label!r} is not a valid object identifier") from exc
            atvs.append(tlv(0x30, oid_der + _encode_value(oid, value)))
        rdns.append(tlv(0x31, b"".join(sorted(atvs))))  # DER: a SET's elements in ascending order
    return tlv(0x30, b"".join(rdns))


# --------------------------------------------------------------------------------------------------------------
# Policies and the request


def parse_policies(cp_list: str) -> tuple[str, ...]:
    """The OIDs of a comma-separated cp_list (blanks ignored; "" gives none); PolicyError for a non-OID."""
    oids = tuple(item.strip() for item in cp_list.split(",") if item.strip())
    for oid in oids:
        if not _DOTTED_OID.fullmatch(oid):
            raise PolicyError(f"{oid!r} is not an object identifier")
    return oids


class _AnySet(core.SetOf):
    _child_spec = core.Any


class _Attribute(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("values", _AnySet)]


class _Attributes(core.SetOf):
    _child_spec = _Attribute


class _RequestInfo(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("subject", core.Any),
        ("subject_pk_info", core.Any),
        ("attributes", _Attributes, {"implicit": 0, "optional": True}),
    ]


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _Request(core.Sequence):
    _fields = [
        ("certification_request_info", _RequestInfo),
        ("signature_algorithm", _AlgorithmIdentifier),
        ("signature", core.OctetBitString),
    ]


@functools.lru_cache(maxsize=64)
def _extension_request(policies: tuple[str, ...]) -> bytes:
    """The extensionRequest attribute: Extensions { certificatePolicies, critical, { PolicyInformation… } }."""
    extension = asn1_x509.Extension({
        "extn_id": "certificate_policies",
        "critical": True,
        "extn_value": [{"policy_identifier": oid} for oid in policies],
    })
    extensions = asn1_x509.Extensions([extension]).dump()
    return tlv(0x30, _oid(OID_EXTENSION_REQUEST) + tlv(0x31, extensions))


def create_pkcs10(key: PrivateKey, subject_der: bytes, policies: tuple[str, ...] = ()) -> bytes:
    """A DER PKCS#10 request for `key`, the DER Name `subject_der` (kept byte for byte) and `policies`."""
    attributes = _extension_request(policies) if policies else b""
    # version 0, subject, SubjectPublicKeyInfo, [0] IMPLICIT SET OF Attribute (required, also when empty)
    info = tlv(0x30, b"\x02\x01\x00" + subject_der + spki_der(key) + tlv(0xA0, attributes))
    signature = sign(key, info)
    return tlv(0x30, info + signature_algorithm_der(key) + tlv(0x03, b"\x00" + signature))


def decode_pkcs10(text: str) -> bytes:
    """DER of a request given as base64 or PEM ("CERTIFICATE REQUEST"); Pkcs10Error otherwise."""
    data = text.strip().encode("ascii", errors="replace")
    try:
        if pem.detect(data):
            _, _, der = pem.unarmor(data)
            return bytes(der)
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Pkcs10Error(f"neither base64 nor PEM: {exc}") from exc


def _load(der: bytes) -> _Request:
    try:
        request = _Request.load(der, strict=True)
        info = request["certification_request_info"]
        if info["version"].native != 0:
            raise ValueError(f"version {info['version'].native}")
        asn1_x509.Name.load(info["subject"].dump(), strict=True)
        _AlgorithmIdentifier.load(core.Sequence.load(info["subject_pk_info"].dump(), strict=True)[0].dump())
        request["signature_algorithm"]["algorithm"].dotted  # noqa: B018 - parse lazily-read parts now
        request["signature"].native  # noqa: B018
    except _ASN1_ERRORS as exc:
        raise Pkcs10Error(f"not a PKCS#10 request: {exc}") from exc
    return request


def request_spki(der: bytes) -> bytes:
    """The request's SubjectPublicKeyInfo (DER); Pkcs10Error if malformed."""
    return _load(der)["certification_request_info"]["subject_pk_info"].dump()


def request_policies(der: bytes) -> tuple[str, ...]:
    """The certificate policy OIDs the request's extensionRequest asks for."""
    info = _load(der)["certification_request_info"]
    found: list[str] = []
    for attribute in info["attributes"] or []:
        if attribute["type"].dotted != OID_EXTENSION_REQUEST:
            continue
        for value in attribute["values"]:
            for extension in asn1_x509.Extensions.load(value.dump()):
                if extension["extn_id"].dotted == OID_CERTIFICATE_POLICIES:
                    found.extend(p["policy_identifier"].dotted for p in extension["extn_value"].parsed)
    return tuple(found)


def pkcs10_info(der: bytes) -> dict[str, Any]:
    """E-IMZO's `pkcs10_info`: subjectName, publicKey{keyAlgName, publicKey}, signature{signAlgName, signature},
    verified (the request's own signature with its own key). Pkcs10Error if malformed."""
    request = _load(der)
    info = request["certification_request_info"]
    spki = info["subject_pk_info"].dump()
    key_oid = core.Sequence.load(spki)[0][0].dotted
    signature_oid = request["signature_algorithm"]["algorithm"].dotted
    signature = request["signature"].native
    try:
        verified = verify_signature(spki, signature_oid, info.dump(), signature)
    except AlgorithmError:
        verified = False
    return {
        "subjectName": format_name(asn1_x509.Name.load(info["subject"].dump())),
        "publicKey": {"keyAlgName": key_algorithm_name(key_oid), "publicKey": base64.b64encode(spki).decode()},
        "signature": {"signAlgName": signature_algorithm_name(signature_oid), "signature": signature.hex()},
        "verified": verified,
    }
