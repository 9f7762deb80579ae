"""CMS (PKCS#7) SignedData: create, co-sign ("append") and inspect, the way E-IMZO's pkcs7 plugin does.

Small structures (attributes, SignerInfo, algorithm identifiers) are built with asn1crypto, but the outer
framing is read and written by hand. Two reasons:

* the signed document can be tens of MB; asn1crypto caches a full copy of the encoding at every nesting level,
  whereas here the content is copied once when read and once into the output;
* co-signing must keep the existing SignerInfos and certificates byte-for-byte, also when the input is BER with
  indefinite lengths (OpenSSL ``-stream`` and the real E-IMZO emit that), so they are carried over as raw bytes.

All algorithms (digest, signature, the messageDigest hash) come from the `Signer`, so national
(O'z DSt) signers plug in unchanged. The output is DER: SET OF elements are sorted (X.690 §11.6), as OpenSSL and
Bouncy Castle do, so signers and certificates appear in encoding order, not in the order they were added.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

# Importing asn1crypto.tsp also registers the signingCertificateV2 attribute type with asn1crypto.cms.
from asn1crypto import algos, core, tsp, x509
from asn1crypto import cms as asn1_cms

from eimzo_agent.crypto.der import encoded as _encoded
from eimzo_agent.crypto.der import header as _header
from eimzo_agent.crypto.der import tlv as _tlv
from eimzo_agent.crypto.signer import Signer

__all__ = [
    "CmsError",
    "SignatureResult",
    "SignedDataInfo",
    "SignerView",
    "add_unsigned_attribute",
    "append_signer",
    "attach_content",
    "create_pkcs7",
    "create_signed_data",
    "merge_signed_data",
    "read_signed_data",
]

AttributeMode = Literal["cades", "eimzo"]

# DER of the OID TLVs we match on or emit as-is.
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1

# Identifier octets (universal / context-specific, primitive / constructed) used by SignedData.
_INTEGER, _OCTETS, _OCTETS_CONSTRUCTED, _OID = 0x02, 0x04, 0x24, 0x06
_SEQUENCE, _SET, _CTX0, _CTX1 = 0x30, 0x31, 0xA0, 0xA1

# Deeply nested indefinite lengths would otherwise exhaust Python's recursion limit on hostile input.
_MAX_DEPTH = 64

# Short attribute names as in RFC 4514 (and cryptography's Name.rfc4514_string), others print as dotted OIDs.
_RFC4514_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}


class CmsError(ValueError):
    """Input CMS cannot be used; message is safe to log (no key material)."""


@dataclass(frozen=True)
class SignatureResult:
    #: The whole ContentInfo(SignedData), DER, in pieces: an attached document's content is one of them as it was
    #: given (a 10 MB document is not copied into the CMS unless someone asks for `cms_der`).
    cms_parts: tuple[bytes, ...]
    signer_serial_hex: str  # signer certificate serial as Java's BigInteger.toString(16), e.g. "7283d8ca"
    signature: bytes  # SignerInfo.signature octets of the signer just added

    @functools.cached_property
    def cms_der(self) -> bytes:
        return self.cms_parts[0] if len(self.cms_parts) == 1 else b"".join(self.cms_parts)


@dataclass(frozen=True)
class SignerView:
    """One SignerInfo, decoded for display and tests."""

    issuer: str
    serial_hex: str
    digest_algorithm: str
    signature_algorithm: str
    signing_time: datetime | None
    message_digest: bytes | None
    certificate_der: bytes | None
    signature: bytes


@dataclass(frozen=True)
class SignedDataInfo:
    content: bytes | None  # None when detached
    signers: list[SignerView]


# --------------------------------------------------------------------------------------------------------------
# Public API


def create_pkcs7(
    content: bytes,
    signer: Signer,
    *,
    detached: bool,
    signing_time: datetime | None = None,
    signed_attributes: AttributeMode = "cades",
    message_digest: bytes | None = None,
) -> SignatureResult:
    """Sign `content` into a new SignedData; `signed_attributes="eimzo"` gives exactly E-IMZO's three attributes.
    `message_digest`: the content's digest with the signer's algorithm when it is already known (a large document
    hashed while it arrived), so that the content is not hashed again."""
    digesting = signer if message_digest is None else _PresetDigest(signer, message_digest)
    signer_info, signature = _signer_info(content, _OID_DATA, digesting, signing_time, signed_attributes)
    certificates = _unique([_encoded(signer.certificate), *(_encoded(cert) for cert in signer.chain)])
    cms_parts = _content_info_parts(
        version=asn1_cms.CMSVersion("v1").dump(),
        digest_algorithms=[signer.digest_algorithm.dump()],
        content_type=_OID_DATA,
        content=None if detached else content,
        certificates=certificates,
        crls=[],
        signer_infos=[signer_info],
    )
    return SignatureResult(cms_parts, _serial_hex(signer.certificate.serial_number), signature)


def create_detached_pkcs7_from_digest(
    message_digest: bytes,
    signer: Signer,
    *,
    signing_time: datetime | None = None,
    signed_attributes: AttributeMode = "cades",
) -> SignatureResult:
    """A detached signature over a document hashed elsewhere (batch signing: the page hashed it with the key's
    digest algorithm); the same CMS `create_pkcs7(content, detached=True)` makes, without the content."""
    if len(message_digest) != len(signer.digest(b"")):
        raise ValueError(f"a {len(signer.digest(b''))}-byte digest is expected, not {len(message_digest)} bytes")
    return create_pkcs7(b"", _PresetDigest(signer, message_digest), detached=True, signing_time=signing_time,
                        signed_attributes=signed_attributes)


def attached_prefix(content: bytes, signer: Signer, *, signing_time: datetime, signed_attributes: AttributeMode,
                    digest_size: int, signature_size: int) -> bytes:
    """What `create_pkcs7(content, signer, detached=False, ...)` with this signing time writes before the content,
    known before the content's digest: those bytes depend only on lengths, so they hold for any digest of
    `digest_size` bytes and any signature of `signature_size` (every signature of an O'zDSt key has 64 bytes; an
    ECDSA signature's length varies, so a caller relying on this compares it with the real CMS's first part).
    No signature is made."""
    stand_in = _PresetDigest(signer, bytes(digest_size), placeholder_signature=bytes(signature_size))
    return create_pkcs7(content, stand_in, detached=False, signing_time=signing_time,
                        signed_attributes=signed_attributes).cms_parts[0]


class _PresetDigest:
    """A signer whose messageDigest is already known, and for `attached_prefix` whose signature is a placeholder:
    everything else is the wrapped signer's."""

    def __init__(self, signer: Signer, message_digest: bytes, placeholder_signature: bytes | None = None) -> None:
        self._signer = signer
        self._digest = message_digest
        self._placeholder = placeholder_signature

    def __getattr__(self, name: str) -> Any:
        return getattr(self._signer, name)

    def digest(self, data: bytes) -> bytes:
        return self._digest

    def sign(self, message: bytes) -> bytes:
        return self._placeholder if self._placeholder is not None else self._signer.sign(message)


def create_signed_data(content: bytes, content_type: str, signer: Signer, *, include_certificates: bool = True,
                       signing_time: datetime | None = None) -> bytes:
    """Attached SignedData over any content type with CAdES attributes, e.g. a TSTInfo for a time-stamp token.

    RFC 5652 §5.1: version 3 when the content is not id-data. `include_certificates` False leaves the signer's
    certificates out (an RFC 3161 request with certReq false).
    """
    oid_tlv = asn1_cms.ContentType(content_type).dump()
    signer_info, _ = _signer_info(content, oid_tlv, signer, signing_time, "cades")
    certificates = [_encoded(signer.certificate), *(_encoded(cert) for cert in signer.chain)]
    return _encode_content_info(
        version=asn1_cms.CMSVersion("v3" if oid_tlv != _OID_DATA else "v1").dump(),
        digest_algorithms=[signer.digest_algorithm.dump()],
        content_type=oid_tlv,
        content=content,
        certificates=_unique(certificates) if include_certificates else [],
        crls=[],
        signer_infos=[signer_info],
    )


def append_signer(
    cms_der: bytes,
    signer: Signer,
    *,
    signing_time: datetime | None = None,
    signed_attributes: AttributeMode = "cades",
) -> SignatureResult:
    """Add one signer to an attached SignedData, leaving the existing SignerInfos untouched."""
    parsed = parse_signed_data(cms_der)
    if parsed.content is None:
        raise CmsError(
            "the CMS is detached (no encapsulated content): cannot co-sign without the signed data"
        )
    signer_info, signature = _signer_info(
        parsed.content, parsed.content_type, signer, signing_time, signed_attributes
    )
    digest_algorithms = list(parsed.digest_algorithms)
    known_oids = {_digest_oid(der) for der in digest_algorithms}
    if signer.digest_algorithm["algorithm"].dotted not in known_oids:
        digest_algorithms.append(signer.digest_algorithm.dump())
    certificates = _unique(
        [*parsed.certificates, _encoded(signer.certificate), *(_encoded(cert) for cert in signer.chain)]
    )
    out = _encode_content_info(
        version=parsed.version,
        digest_algorithms=digest_algorithms,
        content_type=parsed.content_type,
        content=parsed.content,
        certificates=certificates,
        crls=parsed.crls,
        signer_infos=[*parsed.signer_infos, signer_info],
    )
    return SignatureResult((out,), _serial_hex(signer.certificate.serial_number), signature)


def add_unsigned_attribute(cms_der: bytes, signer_index: int, attribute_der: bytes) -> bytes:
    """Add one unsigned attribute (an Attribute's DER) to the `signer_index`-th SignerInfo, in encoding order.

    Used to attach time-stamp tokens (CAdES-T). Only that SignerInfo changes: its unsignedAttrs [1] SET gets the
    attribute (created when absent); content, certificates and the other signers are carried over as found.
    """
    parsed = parse_signed_data(cms_der)
    if not 0 <= signer_index < len(parsed.signer_infos):
        raise CmsError(f"the CMS has no signer number {signer_index + 1}")
    old = parsed.signer_infos[signer_index]
    reader = _BerReader(old)
    fields = _expect(reader, reader.element(0, len(old)), _SEQUENCE, "SignerInfo")
    parts = [bytes(reader.raw(tlv)) for tlv in fields]
    if fields and fields[-1].tag == _CTX1:  # unsignedAttrs [1] IMPLICIT SET OF Attribute
        existing = [bytes(reader.raw(tlv)) for tlv in reader.children(fields[-1])]
        parts[-1] = _set_of(_CTX1, [*existing, attribute_der])
    else:
        parts.append(_set_of(_CTX1, [attribute_der]))
    body = b"".join(parts)
    signer_infos = list(parsed.signer_infos)
    signer_infos[signer_index] = _header(_SEQUENCE, len(body)) + body
    return _encode_content_info(
        version=parsed.version,
        digest_algorithms=parsed.digest_algorithms,
        content_type=parsed.content_type,
        content=parsed.content,
        certificates=parsed.certificates,
        crls=parsed.crls,
        signer_infos=signer_infos,
    )


def attach_content(cms_der: bytes, content: bytes) -> bytes:
    """The detached SignedData `cms_der` with `content` encapsulated (E-IMZO-server's make-attached).

    Signers, certificates and CRLs are carried over as found; whether the signatures cover `content` is the
    verifier's question, not this function's. An attached CMS is returned as it is when it holds this very
    content and refused (CmsError) when it holds another.
    """
    parsed = parse_signed_data(cms_der)
    if parsed.content is not None:
        if parsed.content != content:
            raise CmsError("the CMS already holds another document")
        return bytes(cms_der)
    return _encode_content_info(
        version=parsed.version,
        digest_algorithms=parsed.digest_algorithms,
        content_type=parsed.content_type,
        content=content,
        certificates=parsed.certificates,
        crls=parsed.crls,
        signer_infos=parsed.signer_infos,
    )


def merge_signed_data(first: bytes, second: bytes) -> bytes:
    """One SignedData with the signers of both (E-IMZO-server's join): same content type, and the same content
    when both carry it (the result is attached when either is). Signers, certificates, CRLs and digest
    algorithms found in both appear once; everything is carried over as found."""
    a, b = parse_signed_data(first), parse_signed_data(second)
    if a.content_type != b.content_type:
        raise CmsError("the two CMS have different content types")
    if a.content is not None and b.content is not None and a.content != b.content:
        raise CmsError("the two CMS sign different documents")
    return _encode_content_info(
        version=max(a.version, b.version),
        digest_algorithms=_unique([*a.digest_algorithms, *b.digest_algorithms]),
        content_type=a.content_type,
        content=a.content if a.content is not None else b.content,
        certificates=_unique([*a.certificates, *b.certificates]),
        crls=_unique([*a.crls, *b.crls]),
        signer_infos=_unique([*a.signer_infos, *b.signer_infos]),
    )


def read_signed_data(cms_der: bytes) -> SignedDataInfo:
    """Decode the content and a summary of each signer; raises CmsError on anything that is not SignedData."""
    parsed = parse_signed_data(cms_der)
    try:
        certificates = [
            x509.Certificate.load(der, strict=True) for der in parsed.certificates if der[0] == _SEQUENCE
        ]
        signers = [_signer_view(der, certificates) for der in parsed.signer_infos]
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise CmsError("malformed SignerInfo or certificate in the CMS") from exc
    return SignedDataInfo(parsed.content, signers)


# --------------------------------------------------------------------------------------------------------------
# Building one SignerInfo


def _signer_info(
    content: bytes,
    content_type: bytes,
    signer: Signer,
    signing_time: datetime | None,
    mode: AttributeMode,
) -> tuple[bytes, bytes]:
    """Return (SignerInfo DER, signature) for `signer` over `content`.

    Written as DER directly (the parts that depend only on the certificate are cached): this runs for every
    signature, and asn1crypto's object model cost ≈ 0.5 ms of a small document's signature (half the agent's own
    time when the person's "remember" keeps the key open). tests/test_cms.py checks the bytes against OpenSSL.
    """
    if mode not in ("cades", "eimzo"):
        raise ValueError(f"unknown signed_attributes mode {mode!r}")
    attributes = [
        _attribute(_OID_ATTR_CONTENT_TYPE, content_type),
        _attribute(_OID_ATTR_SIGNING_TIME, _utc_time(signing_time)),
        _attribute(_OID_ATTR_MESSAGE_DIGEST, _tlv(_OCTETS, signer.digest(content))),
    ]
    cert_der = _encoded(signer.certificate)
    if mode == "cades":
        attributes.append(_signing_certificate_v2(cert_der))
    # RFC 5652 §5.4: the signature covers the attributes as an explicit SET OF (tag 0x31), while the SignerInfo
    # stores the same contents [0] IMPLICIT. DER sorts a SET OF by the elements' encodings (X.690 §11.6).
    signed_attrs = _set_of(_SET, attributes)
    signature = signer.sign(signed_attrs)
    body = b"".join((
        b"\x02\x01\x01",  # version 1 (issuerAndSerialNumber)
        _issuer_and_serial(cert_der),
        signer.digest_algorithm.dump(),  # asn1crypto keeps the encoding of an unchanged value: ~4 µs
        bytes((_CTX0,)) + signed_attrs[1:],
        signer.signature_algorithm.dump(),
        _tlv(_OCTETS, signature),
    ))
    return _tlv(_SEQUENCE, body), signature


# DER of the attribute type OIDs: contentType, signingTime, messageDigest (PKCS#9).
_OID_ATTR_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")
_OID_ATTR_SIGNING_TIME = bytes.fromhex("06092a864886f70d010905")
_OID_ATTR_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")


def _attribute(type_oid: bytes, value: bytes) -> bytes:
    """Attribute ::= SEQUENCE { attrType OID, attrValues SET OF value } with one value."""
    return _tlv(_SEQUENCE, type_oid + _tlv(_SET, value))




def _utc_time(signing_time: datetime | None) -> bytes:
    """signingTime as a DER UTCTime in UTC with whole seconds (what E-IMZO emits), written directly: asn1crypto's
    object for it cost a tenth of a small document's signing time."""
    if signing_time is None:
        signing_time = datetime.now(UTC)
    elif signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    moment = signing_time.astimezone(UTC)
    if not 1950 <= moment.year <= 2049:
        raise ValueError("signing_time must be within 1950..2049 to fit UTCTime")
    return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))


# Why these two are cached by the certificate's DER: placing a parsed certificate's issuer Name into a new structure
# makes asn1crypto copy and re-encode it, which was most of a small document's signing time (≈ 10 ms of 12 for a
# P-256 key kept within a "remember" window; docs/performance.md). A signer's certificate does not change between
# its signatures, so they are built once and loaded from their bytes after that.


@functools.lru_cache(maxsize=64)
def _issuer_and_serial(cert_der: bytes) -> bytes:
    """The SignerIdentifier (issuerAndSerialNumber) of a certificate, DER."""
    cert = x509.Certificate.load(cert_der)
    return asn1_cms.SignerIdentifier(
        name="issuer_and_serial_number",
        value=asn1_cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}),
    ).dump()


@functools.lru_cache(maxsize=64)
def _signing_certificate_v2(cert_der: bytes) -> bytes:
    """ESS signingCertificateV2 (RFC 5035) binding the signer certificate: what makes the signature CAdES-BES."""
    cert = x509.Certificate.load(cert_der)
    ess_cert_id = tsp.ESSCertIDv2(
        {
            # hashAlgorithm left out: SHA-256 is its DEFAULT, and DER omits defaults.
            "cert_hash": hashlib.sha256(cert.dump()).digest(),
            "issuer_serial": {
                "issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                "serial_number": cert.serial_number,
            },
        }
    )
    value = tsp.SigningCertificateV2({"certs": [ess_cert_id]})
    return asn1_cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]}).dump()


# --------------------------------------------------------------------------------------------------------------
# Writing the outer DER framing


def _encode_content_info(**fields: Any) -> bytes:
    """ContentInfo(SignedData) DER, with `content` copied exactly once (into the join)."""
    return b"".join(_content_info_parts(**fields))


def _content_info_parts(
    *,
    version: bytes,
    digest_algorithms: list[bytes],
    content_type: bytes,
    content: bytes | None,
    certificates: list[bytes],
    crls: list[bytes],
    signer_infos: list[bytes],
) -> tuple[bytes, ...]:
    """ContentInfo(SignedData) DER as (what comes before the content, the content itself, what follows it); without
    content, one piece."""
    if content is None:
        encap_head = [_header(_SEQUENCE, len(content_type)), content_type]
        content_len = 0
    else:
        content_len = len(content)
        octets = _header(_OCTETS, content_len)
        explicit = _header(_CTX0, len(octets) + content_len)
        encap_len = len(content_type) + len(explicit) + len(octets) + content_len
        encap_head = [_header(_SEQUENCE, encap_len), content_type, explicit, octets]
    tail = [_set_of(_CTX0, certificates) if certificates else b"", _set_of(_CTX1, crls) if crls else b""]
    tail.append(_set_of(_SET, signer_infos))
    head = [version, _set_of(_SET, digest_algorithms), *encap_head]
    signed_data_len = sum(map(len, head)) + content_len + sum(map(len, tail))
    signed_data = _header(_SEQUENCE, signed_data_len)
    explicit_sd = _header(_CTX0, len(signed_data) + signed_data_len)
    outer_len = len(_OID_SIGNED_DATA) + len(explicit_sd) + len(signed_data) + signed_data_len
    prefix = b"".join([_header(_SEQUENCE, outer_len), _OID_SIGNED_DATA, explicit_sd, signed_data, *head])
    if not content:
        return (prefix + b"".join(tail),)
    return prefix, content, b"".join(tail)


def _set_of(tag: int, elements: Iterable[bytes]) -> bytes:
    body = b"".join(sorted(elements))
    return _header(tag, len(body)) + body


def _unique(items: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(items))


def _serial_hex(serial: int) -> str:
    """Like Java's BigInteger.toString(16), which E-IMZO returns: lower case, no padding, '-' if negative."""
    return format(serial, "x")


# --------------------------------------------------------------------------------------------------------------
# Reading: a minimal BER walker over the outer structure


@dataclass(frozen=True)
class _Tlv:
    tag: int  # first identifier octet
    start: int  # offset of the identifier
    body: int  # offset of the first content octet
    end: int  # offset past the last content octet (before the end-of-contents octets if indefinite)
    next: int  # offset of the following element
    indefinite: bool


@dataclass(frozen=True)
class ParsedSignedData:
    version: bytes
    digest_algorithms: list[bytes]
    content_type: bytes  # the eContentType OID TLV
    content: bytes | None
    certificates: list[bytes]  # CertificateChoices, as found (certificates are DER by nature)
    crls: list[bytes]
    signer_infos: list[bytes]  # as found: these are what co-signing must not alter


class _BerReader:
    """Walks BER without copying: elements are offsets into one memoryview of the input."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self._cache: dict[int, _Tlv] = {}  # indefinite elements are walked once, not once per ancestor

    def element(self, pos: int, limit: int, depth: int = 0) -> _Tlv:
        cached = self._cache.get(pos)
        if cached is not None:
            if cached.next > limit:
                raise CmsError("malformed CMS (element overruns its parent)")
            return cached
        if depth > _MAX_DEPTH:
            raise CmsError("CMS nesting is too deep")
        tag, body, length = self._header(pos, limit)
        if length is not None:
            end = body + length
            if end > limit:
                raise CmsError("CMS is truncated")
            tlv = _Tlv(tag, pos, body, end, end, indefinite=False)
        else:
            end = self._find_end_of_contents(body, limit, depth)
            tlv = _Tlv(tag, pos, body, end, end + 2, indefinite=True)
        self._cache[pos] = tlv
        return tlv

    def children(self, parent: _Tlv, depth: int = 0) -> Iterator[_Tlv]:
        pos = parent.body
        while pos < parent.end:
            child = self.element(pos, parent.end, depth + 1)
            yield child
            pos = child.next

    def raw(self, tlv: _Tlv) -> memoryview:
        return self.view[tlv.start : tlv.next]

    def _header(self, pos: int, limit: int) -> tuple[int, int, int | None]:
        """Return (first identifier octet, offset of contents, length or None when indefinite)."""
        view = self.view
        if pos + 2 > limit:
            raise CmsError("CMS is truncated")
        tag = view[pos]
        pos += 1
        if tag & 0x1F == 0x1F:  # high tag number: skip the continuation octets
            while pos < limit and view[pos] & 0x80:
                pos += 1
            pos += 1
        if pos >= limit:
            raise CmsError("CMS is truncated")
        first = view[pos]
        pos += 1
        if first < 0x80:
            return tag, pos, first
        if first == 0x80:
            if not tag & 0x20:
                raise CmsError("indefinite length on a primitive element")
            return tag, pos, None
        size = first & 0x7F
        if size > 8 or pos + size > limit:
            raise CmsError("invalid length in CMS")
        return tag, pos + size, int.from_bytes(view[pos : pos + size], "big")

    def _find_end_of_contents(self, pos: int, limit: int, depth: int) -> int:
        view = self.view
        while pos + 2 <= limit:
            if view[pos] == 0 and view[pos + 1] == 0:
                return pos
            pos = self.element(pos, limit, depth + 1).next
        raise CmsError("CMS is truncated (missing end-of-contents)")


def parse_signed_data(data: bytes) -> ParsedSignedData:
    """Split ContentInfo(SignedData) into its parts; DER or BER (indefinite lengths) accepted."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CmsError("CMS must be bytes")
    reader = _BerReader(data)
    top = reader.element(0, len(reader.view))
    outer = _expect(reader, top, _SEQUENCE, "ContentInfo")
    if len(outer) != 2 or bytes(reader.raw(outer[0])) != _OID_SIGNED_DATA:
        raise CmsError("not a CMS SignedData (ContentInfo content type is not signedData)")
    (signed_data,) = _expect(reader, outer[1], _CTX0, "ContentInfo content", count=1)
    fields = _expect(reader, signed_data, _SEQUENCE, "SignedData")
    if len(fields) < 4 or fields[0].tag != _INTEGER or fields[1].tag != _SET:
        raise CmsError("malformed SignedData")
    content_type, content = _parse_encap(reader, fields[2])
    optional = {tlv.tag: tlv for tlv in fields[3:-1]}
    if len(optional) != len(fields) - 4 or not set(optional) <= {_CTX0, _CTX1}:
        raise CmsError("malformed SignedData (unexpected fields)")
    return ParsedSignedData(
        version=bytes(reader.raw(fields[0])),
        digest_algorithms=_elements(reader, fields[1], algos.DigestAlgorithm),
        content_type=content_type,
        content=content,
        certificates=_elements(reader, optional.get(_CTX0), asn1_cms.CertificateChoices),
        crls=_elements(reader, optional.get(_CTX1), asn1_cms.RevocationInfoChoice),
        signer_infos=_elements(reader, _expect_tlv(fields[-1], _SET, "SignerInfos"), asn1_cms.SignerInfo),
    )


def _parse_encap(reader: _BerReader, encap: _Tlv) -> tuple[bytes, bytes | None]:
    """EncapsulatedContentInfo -> (eContentType OID TLV, content or None when detached)."""
    parts = _expect(reader, encap, _SEQUENCE, "EncapsulatedContentInfo")
    if not parts or parts[0].tag != _OID or len(parts) > 2:
        raise CmsError("malformed EncapsulatedContentInfo")
    content_type = bytes(reader.raw(parts[0]))
    if len(parts) == 1:
        return content_type, None
    (octets,) = _expect(reader, parts[1], _CTX0, "eContent", count=1)
    chunks = list(_octet_chunks(reader, octets))
    # One chunk (DER) is copied once by bytes(); BER chunks once by join.
    content = bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
    return content_type, content


def _octet_chunks(reader: _BerReader, tlv: _Tlv, depth: int = 0) -> Iterator[memoryview]:
    """Content octets of an OCTET STRING, primitive or constructed (BER splits streamed content in chunks)."""
    if depth > _MAX_DEPTH:
        raise CmsError("CMS nesting is too deep")
    if tlv.tag == _OCTETS:
        yield reader.view[tlv.body : tlv.end]
    elif tlv.tag == _OCTETS_CONSTRUCTED:
        for child in reader.children(tlv):
            yield from _octet_chunks(reader, child, depth + 1)
    else:
        raise CmsError("eContent is not an OCTET STRING")


def _expect(reader: _BerReader, tlv: _Tlv, tag: int, what: str, count: int | None = None) -> list[_Tlv]:
    children = list(reader.children(_expect_tlv(tlv, tag, what)))
    if count is not None and len(children) != count:
        raise CmsError(f"malformed {what}")
    return children


def _expect_tlv(tlv: _Tlv, tag: int, what: str) -> _Tlv:
    if tlv.tag != tag:
        raise CmsError(f"malformed {what}")
    return tlv


def _elements(reader: _BerReader, parent: _Tlv | None, spec: type[core.Asn1Value]) -> list[bytes]:
    """Encodings of a SET's elements: kept as found when definite-length, re-encoded to DER when not."""
    if parent is None:
        return []
    result = []
    for child in reader.children(parent):
        if spec in (asn1_cms.SignerInfo, algos.DigestAlgorithm) and child.tag != _SEQUENCE:
            raise CmsError(f"malformed {spec.__name__} in the CMS")
        raw = bytes(reader.raw(child))
        result.append(_load(spec, raw).dump(force=True) if child.indefinite else raw)
    return result


def _load(spec: type[core.Asn1Value], der: bytes) -> core.Asn1Value:
    try:
        value = spec.load(der, strict=True)
        value.native  # noqa: B018  - asn1crypto parses lazily; force it so errors surface here
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise CmsError(f"malformed {spec.__name__} in the CMS") from exc
    return value


def _digest_oid(der: bytes) -> str:
    return _load(algos.DigestAlgorithm, der)["algorithm"].dotted


# --------------------------------------------------------------------------------------------------------------
# Reading: per-signer view


def _signer_view(der: bytes, certificates: list[x509.Certificate]) -> SignerView:
    info = _load(asn1_cms.SignerInfo, der)
    cert = _find_certificate(info["sid"], certificates)
    sid = info["sid"].chosen
    if info["sid"].name == "issuer_and_serial_number":
        issuer, serial = sid["issuer"], sid["serial_number"].native
    else:  # subjectKeyIdentifier: issuer and serial only known through the certificate
        issuer, serial = (cert.issuer, cert.serial_number) if cert is not None else (None, None)
    attrs = _signed_attr_values(info)
    signing_time = attrs.get("signing_time")
    message_digest = attrs.get("message_digest")
    return SignerView(
        issuer=_rfc4514(issuer) if issuer is not None else "",
        serial_hex=_serial_hex(serial) if serial is not None else "",
        digest_algorithm=info["digest_algorithm"]["algorithm"].native,
        signature_algorithm=info["signature_algorithm"]["algorithm"].native,
        signing_time=signing_time if isinstance(signing_time, datetime) else None,
        message_digest=message_digest if isinstance(message_digest, bytes) else None,
        certificate_der=cert.dump() if cert is not None else None,
        signature=info["signature"].native,
    )


def _signed_attr_values(info: asn1_cms.SignerInfo) -> dict[str, object]:
    """First value of each signed attribute, by asn1crypto name (or dotted OID)."""
    attrs = info["signed_attrs"]
    if isinstance(attrs, core.Void):
        return {}
    return {attr["type"].native: attr["values"][0].native for attr in attrs if len(attr["values"])}


def _find_certificate(
    sid: asn1_cms.SignerIdentifier, certificates: list[x509.Certificate]
) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        matches = (c for c in certificates if c.serial_number == serial and c.issuer == issuer)
    else:
        key_id = sid.chosen.native
        matches = (c for c in certificates if c.key_identifier == key_id)
    return next(matches, None)


def _rfc4514(name: x509.Name) -> str:
    """RFC 4514 string (most specific RDN first), the way cryptography's Name.rfc4514_string() prints it."""
    rdns = []
    for rdn in reversed(name.chosen):
        rdns.append("+".join(_rfc4514_attribute(attr) for attr in rdn))
    return ",".join(rdns)


def _rfc4514_attribute(attr: x509.NameTypeAndValue) -> str:
    oid = attr["type"].dotted
    key = _RFC4514_NAMES.get(oid, oid)
    value = attr["value"].native
    if not isinstance(value, str):
        return f"{key}=#{attr['value'].dump().hex()}"
    return f"{key}={_escape_dn_value(value)}"


def _escape_dn_value(value: str) -> str:
    if not value:
        return ""
    for special in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(special, "\\" + special)
    value = value.replace("\0", "\\00")
    if value[0] in ("#", " "):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value
