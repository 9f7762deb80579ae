"""Verify CMS SignedData: every signer's signature, messageDigest and certificate chain to given trust anchors.

Pure library (bytes in, result out), so the same code can serve a portal-side verifier later. Algorithms:
O'zDSt/OZMST (GOST R 34.11-94 digest, s||r signature, curve told by the public point), RSA PKCS#1 v1.5 and
ECDSA with SHA-256/384/512 (see `x509_info.verify_signature`).

Hostile input never raises: a CMS that cannot be parsed at all raises `CmsError` (the one exception); every
other problem — a malformed SignerInfo, an unknown algorithm, a missing certificate, a broken chain — becomes a
failed check with a reason in that signer's `problems`. The outer framing is read by `cms`'s BER walker (BER
with indefinite lengths, as E-IMZO emits, and depth limits against hostile nesting), not parsed a second time.

What is checked per signer (RFC 5652 §5.4-5.6, RFC 5280 §6 in a reduced form):
* the signer's certificate is in the CMS (or among the anchors), found by issuerAndSerialNumber or SKI;
* with signed attributes: exactly one contentType equal to eContentType, exactly one messageDigest equal to the
  digest of the content (attached, or given for a detached CMS); the signature covers the attributes as a SET;
  without signed attributes the signature covers the content itself;
* the chain: each certificate's issuer is found by name among the CMS certificates and the anchors, its
  signature verifies with the issuer's key, every certificate is valid at `at` (else the signingTime, else
  now), every issuer is a CA (basicConstraints cA, pathLenConstraint, keyCertSign if keyUsage is present), and
  the path ends at a trust anchor. Revocation (CRL/OCSP) is not checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from asn1crypto import cms as asn1_cms
from asn1crypto import core, x509

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.cms import CmsError, parse_signed_data
from eimzo_agent.crypto.der import encoded
from eimzo_agent.crypto.x509_info import AlgorithmError, CertificateError

__all__ = ["CmsError", "CmsVerification", "SignerVerification", "verify_cms"]

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)

_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_SIGNING_TIME = "1.2.840.113549.1.9.5"

#: Longer chains than this are not built (E-IMZO's are user -> CA -> root).
MAX_CHAIN_LENGTH = 8
#: Issuer signatures checked per signer at most: a hostile CMS full of cross-signed look-alike CA certificates
#: must not turn path building into millions of (pure-Python, for O'zDSt) signature checks.
MAX_LINK_CHECKS = 32
#: Parsed trust-anchor sets kept (a server passes the same few sets on every call).
ANCHOR_SETS_KEPT = 8
#: Issuer-signature checks remembered, by the exact DER of both certificates (a pure function of those bytes):
#: the CA -> root links repeat on every signature, a person's own link on every login of theirs.
LINKS_KEPT = 4096
#: Parsed CMS certificates remembered by their DER.
CERTIFICATES_KEPT = 4096


@dataclass(frozen=True)
class SignerVerification:
    """The checks of one SignerInfo. `valid` only when every check passed."""

    certificate: x509.Certificate | None
    signing_time: dt.datetime | None
    certificate_found: bool = False
    signature_valid: bool = False
    digest_matches: bool = False
    chain_valid: bool = False
    #: Signer certificate first, trust anchor last; empty unless the chain is valid.
    chain: tuple[x509.Certificate, ...] = ()
    #: Why a check failed, in English, for logs and developers (never key material).
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.certificate_found and self.signature_valid and self.digest_matches and self.chain_valid


@dataclass(frozen=True)
class CmsVerification:
    #: The encapsulated content; None for a detached CMS.
    content: bytes | None
    signers: tuple[SignerVerification, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        """At least one signer, and every signer valid."""
        return bool(self.signers) and all(signer.valid for signer in self.signers)


def verify_cms(
    cms_der: bytes,
    content: bytes | None = None,
    trust_anchors: Sequence[bytes] = (),
    at: dt.datetime | None = None,
) -> CmsVerification:
    """Verify every signer of `cms_der` (DER or BER); `content` is the signed data of a detached CMS.

    `trust_anchors` are DER certificates; a chain is valid only if it ends at one of them. `at` (timezone-aware)
    is when certificates must be valid; by default each signer's signingTime, else the current time. Raises
    CmsError only when `cms_der` is not SignedData at all or an anchor is not a certificate.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    try:
        parsed = parse_signed_data(cms_der)
    except CmsError:
        raise
    except _ASN1_ERRORS as exc:  # the walker reports known damage as CmsError; anything else is damage too
        raise CmsError(f"malformed CMS: {exc}") from exc
    anchors = _load_anchors(trust_anchors)
    embedded = _load_embedded(parsed.certificates)
    context = _Context(
        content_type=_oid_of_tlv(parsed.content_type),
        content=_content_to_check(parsed.content, content),
        content_problem=_content_problem(parsed.content, content),
        certificates=[cert for cert, _ in embedded],
        anchors=[cert for cert, _ in anchors],
        at=at,
        ders={id(cert): der for cert, der in (*anchors, *embedded)},
    )
    signers = tuple(_verify_signer(der, context) for der in parsed.signer_infos)
    return CmsVerification(parsed.content, signers)


# --------------------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Context:
    content_type: str | None
    content: bytes | None
    content_problem: str | None
    certificates: list[x509.Certificate]
    anchors: list[x509.Certificate]
    at: dt.datetime | None
    #: id(certificate) -> its DER, computed once: asn1crypto re-encodes on every dump() when a header ends
    #: in 0x80, which made the DER comparisons of path building a large part of a login's time.
    ders: dict[int, bytes] = field(default_factory=dict)

    def der(self, cert: x509.Certificate) -> bytes:
        return self.ders.get(id(cert)) or encoded(cert)


def _oid_of_tlv(tlv: bytes) -> str | None:
    try:
        return core.ObjectIdentifier.load(tlv, strict=True).dotted
    except _ASN1_ERRORS:
        return None


def _content_to_check(attached: bytes | None, given: bytes | None) -> bytes | None:
    return attached if attached is not None else given


def _content_problem(attached: bytes | None, given: bytes | None) -> str | None:
    if attached is None and given is None:
        return "the CMS is detached and no content was given to check it against"
    if attached is not None and given is not None and attached != given:
        return "the content given differs from the content inside the CMS"
    return None


class _Lru:
    """A small thread-safe LRU map: verification runs in worker threads (the portal server, the agent)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: object, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_anchor_sets = _Lru(ANCHOR_SETS_KEPT)
_links = _Lru(LINKS_KEPT)
_certificates = _Lru(CERTIFICATES_KEPT)


def _load_anchors(anchors: Sequence[bytes]) -> tuple[tuple[x509.Certificate, bytes], ...]:
    """The anchors parsed, once per distinct set: parsing them was a quarter of a portal login's time. The
    certificates are warmed (every lazily parsed part the checks read) before they are shared between threads."""
    key = tuple(bytes(der) for der in anchors)
    kept = _anchor_sets.get(key)
    if kept is not None:
        return kept  # type: ignore[return-value]
    loaded = []
    for number, der in enumerate(key, 1):
        try:
            loaded.append(_warm(x509_info.load_certificate(der)))
        except CertificateError as exc:
            raise CmsError(f"trust anchor {number} is not a certificate: {exc}") from exc
    result = tuple(loaded)
    _anchor_sets.put(key, result)
    return result


def _warm(cert: x509.Certificate) -> tuple[x509.Certificate, bytes]:
    """`cert` with the lazily parsed parts the checks read parsed now (so threads sharing it only read), and its
    DER as `dump` gives it."""
    with contextlib.suppress(*_ASN1_ERRORS):  # malformed extensions: the checks that read them report it
        cert.basic_constraints_value, cert.key_usage_value, cert.key_identifier  # noqa: B018
    return cert, cert.dump()


def _load_embedded(choices: list[bytes]) -> list[tuple[x509.Certificate, bytes]]:
    """The CMS's X.509 certificates; other CertificateChoices and unreadable certificates are left out. Parsed
    ones are kept by their DER: a person's certificate comes back with every signature of theirs."""
    certificates = []
    for der in choices:
        if not der or der[0] != 0x30:  # [0]..[3] are attribute/other certificate formats
            continue
        kept = _certificates.get(der)
        if kept is None:
            try:
                kept = _warm(x509_info.load_certificate(der))
            except CertificateError:
                continue
            _certificates.put(der, kept)
        certificates.append(kept)
    return certificates  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------
# One signer


def _verify_signer(der: bytes, context: _Context) -> SignerVerification:
    try:
        info = asn1_cms.SignerInfo.load(der, strict=True)
        return _check_signer(info, context)
    except _ASN1_ERRORS as exc:
        return SignerVerification(None, None, problems=(f"malformed SignerInfo: {exc}",))


def _check_signer(info: asn1_cms.SignerInfo, context: _Context) -> SignerVerification:
    problems: list[str] = []
    cert = _signer_certificate(info["sid"], context.certificates + context.anchors)
    if cert is None:
        problems.append("the signer's certificate is not in the CMS")
    digest_oid = info["digest_algorithm"]["algorithm"].dotted
    signed_attrs = info["signed_attrs"]
    signing_time: dt.datetime | None = None
    if isinstance(signed_attrs, core.Void):
        message = context.content
        digest_matches = _no_attributes_digest(context, problems)
    else:
        attributes = _attributes(signed_attrs, problems)
        signing_time = _signing_time(attributes, problems)
        digest_matches = _check_attributes(attributes, digest_oid, context, problems)
        # RFC 5652 §5.4: the signature covers the DER of the attributes as SET OF (tag 0x31, not [0]).
        message = b"\x31" + signed_attrs.dump()[1:]
    signature_valid = False
    if cert is not None and message is not None:
        signature_valid = _check_signature(info, cert, digest_oid, message, problems)
    chain: tuple[x509.Certificate, ...] = ()
    if cert is not None:
        when = context.at or signing_time or dt.datetime.now(dt.UTC)
        chain = _build_chain(cert, context, when, problems)
    return SignerVerification(
        certificate=cert,
        signing_time=signing_time,
        certificate_found=cert is not None,
        signature_valid=signature_valid,
        digest_matches=digest_matches,
        chain_valid=bool(chain),
        chain=chain,
        problems=tuple(problems),
    )


def _signer_certificate(sid: asn1_cms.SignerIdentifier, pool: list[x509.Certificate]) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        return next((c for c in pool if c.serial_number == serial and _same_name(c.issuer, issuer)), None)
    key_id = sid.chosen.native
    return next((c for c in pool if _key_identifier(c) == key_id), None)


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    try:
        return a.dump() == b.dump() or bool(a == b)  # equal DER first: RFC 5280's comparison is slow
    except _ASN1_ERRORS:
        return False


def _key_identifier(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.key_identifier
    except _ASN1_ERRORS:
        return None


def _no_attributes_digest(context: _Context, problems: list[str]) -> bool:
    """Without signed attributes the signature itself covers the content: the digest check is the signature's."""
    if context.content_problem:
        problems.append(context.content_problem)
        return False
    return True


def _attributes(signed_attrs: asn1_cms.CMSAttributes, problems: list[str]) -> dict[str, list[core.Asn1Value]]:
    """Values by attribute OID; an attribute type that appears twice is reported (RFC 5652 §5.3)."""
    found: dict[str, list[core.Asn1Value]] = {}
    for attribute in signed_attrs:
        oid = attribute["type"].dotted
        if oid in found:
            problems.append(f"signed attribute {oid} appears more than once")
        found[oid] = list(attribute["values"])
    return found


def _single(attributes: dict[str, list[core.Asn1Value]], oid: str) -> core.Asn1Value | None:
    values = attributes.get(oid)
    return values[0] if values is not None and len(values) == 1 else None


def _signing_time(attributes: dict[str, list[core.Asn1Value]], problems: list[str]) -> dt.datetime | None:
    value = _single(attributes, _OID_SIGNING_TIME)
    if value is None:
        return None
    try:
        moment = value.native
    except _ASN1_ERRORS:
        problems.append("the signingTime attribute is malformed")
        return None
    return moment if isinstance(moment, dt.datetime) and moment.tzinfo is not None else None


def _check_attributes(
    attributes: dict[str, list[core.Asn1Value]], digest_oid: str, context: _Context, problems: list[str]
) -> bool:
    """contentType matches eContentType and messageDigest matches the content."""
    content_type = _single(attributes, _OID_CONTENT_TYPE)
    if content_type is None or content_type.dotted != context.content_type:
        problems.append("the contentType attribute is missing or differs from the encapsulated content type")
        return False
    expected = _single(attributes, _OID_MESSAGE_DIGEST)
    if expected is None or not isinstance(expected.native, bytes):
        problems.append("the messageDigest attribute is missing or malformed")
        return False
    if context.content_problem or context.content is None:
        problems.append(context.content_problem or "no content to check")
        return False
    try:
        actual = x509_info.digest(digest_oid, context.content)
    except AlgorithmError as exc:
        problems.append(str(exc))
        return False
    if not hmac.compare_digest(actual, expected.native):
        problems.append("the messageDigest attribute does not match the content")
        return False
    return True


def _check_signature(
    info: asn1_cms.SignerInfo, cert: x509.Certificate, digest_oid: str, message: bytes, problems: list[str]
) -> bool:
    try:
        valid = x509_info.verify_signature(
            x509_info.spki_der(cert),
            info["signature_algorithm"]["algorithm"].dotted,
            message,
            info["signature"].native,
            digest_oid=digest_oid,
        )
    except AlgorithmError as exc:
        problems.append(str(exc))
        return False
    if not valid:
        problems.append("the signature does not verify with the signer's certificate")
    return valid


# --------------------------------------------------------------------------------------------------------------
# The certificate chain


def _build_chain(
    cert: x509.Certificate, context: _Context, when: dt.datetime, problems: list[str]
) -> tuple[x509.Certificate, ...]:
    """Signer ... anchor, or () with the reason in `problems`."""
    if not context.anchors:
        problems.append("no trust anchors were given")
        return ()
    search = _Search(context.anchors + context.certificates, {context.der(a) for a in context.anchors}, when,
                     context.der)
    path = search.extend([cert])
    reasons = search.reasons
    if path is None:
        problems.append(reasons[0] if reasons else "no chain to a trust anchor")
        return ()
    return tuple(path)


@dataclass
class _Search:
    """Depth-first search for a path from a certificate up to an anchor, with a bounded number of link checks."""

    pool: list[x509.Certificate]
    anchors: set[bytes]
    when: dt.datetime
    der: Callable[[x509.Certificate], bytes]
    #: Why dead ends were dead, first one first (that is the one reported).
    reasons: list[str] = field(default_factory=list)
    checks_left: int = MAX_LINK_CHECKS

    def extend(self, path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        current = path[-1]
        if not _valid_at(current, self.when):
            self.reasons.append(f"certificate {_describe(current)} is not valid at {self.when.isoformat()}")
            return None
        if self.der(current) in self.anchors:
            return path
        if len(path) >= MAX_CHAIN_LENGTH:
            self.reasons.append("the chain is too long")
            return None
        on_path = {self.der(c) for c in path}
        candidates = [c for c in self.pool if self.der(c) not in on_path and x509_info.issued_by(current, c)]
        if not candidates:
            self.reasons.append(f"no issuer certificate for {_describe(current)}")
        for issuer in candidates:
            if self.checks_left <= 0:
                self.reasons.append("too many candidate issuer certificates")
                return None
            self.checks_left -= 1
            problem = _link_problem(current, issuer, intermediates_below=len(path) - 1,
                                    link=(self.der(current), self.der(issuer)))
            if problem is not None:
                self.reasons.append(problem)
                continue
            found = self.extend([*path, issuer])
            if found is not None:
                return found
        return None


def _link_problem(subject: x509.Certificate, issuer: x509.Certificate, intermediates_below: int,
                  link: tuple[bytes, bytes]) -> str | None:
    """Why `issuer` cannot have issued `subject` in this path, or None."""
    try:
        constraints = issuer.basic_constraints_value
        key_usage = issuer.key_usage_value
    except _ASN1_ERRORS:
        return f"certificate {_describe(issuer)} has malformed extensions"
    if constraints is None or not constraints["ca"].native:
        return f"certificate {_describe(issuer)} is not a CA certificate"
    path_length = constraints["path_len_constraint"].native
    if path_length is not None and intermediates_below > path_length:
        return f"the path length constraint of {_describe(issuer)} is exceeded"
    if key_usage is not None and "key_cert_sign" not in key_usage.native:
        return f"certificate {_describe(issuer)} may not sign certificates (keyUsage)"
    valid = _links.get(link)
    if valid is None:
        try:
            valid = x509_info.verify_certificate_signature(subject, issuer)
        except (AlgorithmError, *_ASN1_ERRORS) as exc:
            return f"the signature of {_describe(subject)} cannot be checked: {exc}"
        _links.put(link, valid)
    return None if valid else f"the signature of {_describe(subject)} does not verify with {_describe(issuer)}"


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    validity = cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= when <= validity["not_after"].native)


def _describe(cert: x509.Certificate) -> str:
    return f"'{x509_info.format_name(cert['tbs_certificate']['subject'])}' (serial {cert.serial_number:x})"
