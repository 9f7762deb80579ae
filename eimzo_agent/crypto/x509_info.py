"""X.509 certificates: E-IMZO's `certificate_info` view and signature checks for RSA, ECDSA and O'zDSt.

E-IMZO is Java + BouncyCastle, and portals parse what it prints (they split `subjectName` on commas to find
CN, TIN, PINFL), so names are printed the way BouncyCastle's X500Name/X509Name `toString()` prints them: RDNs in
the order they are encoded in the certificate (not reversed as in RFC 4514), BouncyCastle's attribute labels
(`CN`, `Name`, `SURNAME`, `UID`, `T`, `E`, `BusinessCategory`, …; unknown OIDs dotted), `+` inside a
multi-valued RDN and BouncyCastle's backslash escaping. The national root, for instance, is encoded E, C, L,
O, CN and so prints as "E=info@mitc.uz,C=UZ,L=…,O=…,CN=…".

Signature checks take the SubjectPublicKeyInfo as DER: asn1crypto's key classes raise KeyError on the national
key OIDs, so O'zDSt keys go through `ozdst_keys.parse_spki` and the others through `cryptography`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any, Literal

from asn1crypto import core, x509

from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst_keys import OZDST, OZMST, parse_spki
from eimzo_agent.lazy_module import lazy_module

if TYPE_CHECKING:
    from cryptography import exceptions
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
else:  # imported at the first RSA/ECDSA signature checked (see lazy_module)
    exceptions = lazy_module("cryptography.exceptions")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")

__all__ = [
    "AlgorithmError",
    "CertificateError",
    "certificate_info",
    "digest",
    "format_local_time",
    "format_name",
    "issued_by",
    "key_algorithm_name",
    "load_certificate",
    "name_attributes",
    "signature_algorithm_name",
    "spki_algorithm",
    "spki_der",
    "verify_certificate_signature",
    "verify_signature",
]

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class CertificateError(ValueError):
    """The bytes are not a well-formed X.509 certificate."""


class AlgorithmError(ValueError):
    """A signature cannot be checked: unknown algorithm, or algorithm, digest and key that do not go together."""


# --------------------------------------------------------------------------------------------------------------
# Loading


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate completely enough that later reads cannot fail; CertificateError otherwise.

    The public key is not decoded here: touching any part of asn1crypto's PublicKeyInfo raises KeyError for the
    national key OIDs. It is read as DER by `spki_der` and decoded by the signature check that needs it.
    """
    try:
        cert = x509.Certificate.load(bytes(der), strict=True)
        tbs = cert["tbs_certificate"]
        for part in ("version", "serial_number", "validity"):
            tbs[part].native  # noqa: B018 - asn1crypto parses lazily: surface errors now
        format_name(tbs["issuer"])
        format_name(tbs["subject"])
        spki_algorithm(cert)
        cert["signature_algorithm"]["algorithm"].dotted  # noqa: B018
        cert["signature_value"].native  # noqa: B018
        # asn1crypto's dump() re-encodes when a header ends in 0x80 (an indefinite length, or a definite one that
        # happens to end so), parsing the parts not read above: a malformed extension then raised later, in any
        # caller (found by tests/test_portal_fuzz.py with bit-flipped certificates). Surface it here.
        cert.dump()
    except _ASN1_ERRORS as exc:
        raise CertificateError(f"not an X.509 certificate: {exc}") from exc
    return cert


def spki_der(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo exactly as encoded."""
    return cert["tbs_certificate"]["subject_public_key_info"].dump()


def spki_algorithm(cert: x509.Certificate) -> str:
    """The public-key algorithm OID, read with generic ASN.1 classes (see `load_certificate`)."""
    algorithm = core.Sequence.load(spki_der(cert), strict=True)[0][0]
    if not isinstance(algorithm, core.ObjectIdentifier):
        raise ValueError("SubjectPublicKeyInfo does not start with an algorithm OID")
    return algorithm.dotted


# --------------------------------------------------------------------------------------------------------------
# Names in BouncyCastle's style

#: BouncyCastle's DefaultSymbols (BCStyle / X509Name): the labels E-IMZO prints in subjectName and issuerName.
_BC_SYMBOLS = {
    "2.5.4.6": "C",
    "2.5.4.10": "O",
    "2.5.4.12": "T",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.5": "SERIALNUMBER",
    "1.2.840.113549.1.9.1": "E",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "2.5.4.9": "STREET",
    "2.5.4.4": "SURNAME",
    "2.5.4.42": "GIVENNAME",
    "2.5.4.43": "INITIALS",
    "2.5.4.44": "GENERATION",
    "2.5.4.45": "UniqueIdentifier",
    "2.5.4.46": "DN",
    "2.5.4.65": "Pseudonym",
    "2.5.4.16": "PostalAddress",
    "2.5.4.41": "Name",
    "1.3.6.1.5.5.7.9.1": "DateOfBirth",
    "1.3.6.1.5.5.7.9.2": "PlaceOfBirth",
    "1.3.6.1.5.5.7.9.3": "Gender",
    "1.3.6.1.5.5.7.9.4": "CountryOfCitizenship",
    "1.3.6.1.5.5.7.9.5": "CountryOfResidence",
    "1.3.36.8.3.14": "NameAtBirth",
    "2.5.4.17": "PostalCode",
    "2.5.4.15": "BusinessCategory",
    "2.5.4.20": "TelephoneNumber",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.2.840.113549.1.9.8": "unstructuredAddress",
}

#: ASN.1 string types BouncyCastle prints as text (its ASN1String classes, except UniversalString).
_TEXT_TYPES = (
    core.UTF8String,
    core.PrintableString,
    core.IA5String,
    core.TeletexString,
    core.BMPString,
    core.VisibleString,
    core.NumericString,
    core.GeneralString,
    core.VideotexString,
    core.GraphicString,
)
_BC_ESCAPED = frozenset(',"\\+=<>;')


class _AttributeTypeAndValue(core.Sequence):
    # The value as raw ASN.1: asn1crypto's own classes insist on a string type per attribute and raise on others,
    # which BouncyCastle prints as "#<hex DER>".
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any)]


class _Rdn(core.SetOf):
    _child_spec = _AttributeTypeAndValue


class _RdnSequence(core.SequenceOf):
    _child_spec = _Rdn


def format_name(name: x509.Name) -> str:
    """The name as BouncyCastle's toString() prints it (see the module docstring); ValueError if malformed."""
    rdns = _RdnSequence.load(name.dump(), strict=True)
    return ",".join(
        "+".join(f"{_BC_SYMBOLS.get(atv['type'].dotted, atv['type'].dotted)}={_bc_value(atv['value'].dump())}"
                 for atv in rdn)
        for rdn in rdns
    )


def name_attributes(name: x509.Name) -> dict[str, str]:
    """The name's attributes by E-IMZO label ("CN", "SURNAME", "1.2.860.3.16.1.2", ...) with unescaped values, as
    E-IMZO-server's subjectInfo/issuerInfo; non-string values as '#' + hex DER; a repeated label keeps its first
    value. ValueError if malformed."""
    found: dict[str, str] = {}
    for rdn in _RdnSequence.load(name.dump(), strict=True):
        for atv in rdn:
            label = _BC_SYMBOLS.get(atv["type"].dotted, atv["type"].dotted)
            found.setdefault(label, _plain_value(atv["value"].dump()))
    return found


def _plain_value(der: bytes) -> str:
    try:
        parsed = core.Asn1Value.load(der, strict=True)
        text = parsed.native if isinstance(parsed, _TEXT_TYPES) else None
    except _ASN1_ERRORS:
        text = None
    return text if isinstance(text, str) else "#" + der.hex()


def _bc_value(der: bytes) -> str:
    """Text of a string value, else '#' + hex of its DER; escaped as BouncyCastle's IETFUtils.valueToString."""
    try:
        parsed = core.Asn1Value.load(der, strict=True)
        text = parsed.native if isinstance(parsed, _TEXT_TYPES) else None
    except _ASN1_ERRORS:
        text = None
    if not isinstance(text, str):
        return "#" + der.hex()  # nothing in a hex string is ever escaped
    return _bc_escape(text)


def _bc_escape(text: str) -> str:
    # A leading '#' would read as hex DER: escaped once, and that backslash is not escaped again.
    prefix, body = ("\\#", text[1:]) if text.startswith("#") else ("", text)
    escaped = prefix + "".join("\\" + ch if ch in _BC_ESCAPED else ch for ch in body)
    # Leading and trailing spaces would be lost by parsers that trim: BouncyCastle escapes each of them.
    inner = escaped.strip(" ")
    if not inner:
        return "\\ " * len(escaped)
    lead = len(escaped) - len(escaped.lstrip(" "))
    trail = len(escaped) - len(escaped.rstrip(" "))
    return "\\ " * lead + inner + "\\ " * trail


# --------------------------------------------------------------------------------------------------------------
# E-IMZO's certificate_info


def format_local_time(moment: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    """"yyyy.MM.dd HH:mm:ss" in `tz` (default: the machine's zone), as E-IMZO prints validity dates."""
    local = moment.astimezone(tz)
    # By hand: strftime does not zero-pad years below 1000 on every platform.
    return f"{local.year:04d}.{local.month:02d}.{local.day:02d} {local.hour:02d}:{local.minute:02d}:{local.second:02d}"


#: keyAlgName / signAlgName as E-IMZO (BouncyCastle with the national provider) reports them.
_KEY_ALGORITHM_NAMES = {
    OZDST.key_oid: "OZDST-1092-2009-2",
    OZMST.key_oid: "OZMST-286-2024-2",
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.10045.2.1": "EC",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}
_SIGNATURE_ALGORITHM_NAMES = {
    OZDST.signature_oid: "OZDST-1106-2009-2-AwithOZDST-1092-2009-2",
    OZMST.signature_oid: "OZMST-285-2024-2-AwithOZMST-286-2024-2",
    "1.2.840.113549.1.1.5": "SHA1withRSA",
    "1.2.840.113549.1.1.14": "SHA224withRSA",
    "1.2.840.113549.1.1.11": "SHA256withRSA",
    "1.2.840.113549.1.1.12": "SHA384withRSA",
    "1.2.840.113549.1.1.13": "SHA512withRSA",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.1": "SHA1withECDSA",
    "1.2.840.10045.4.3.1": "SHA224withECDSA",
    "1.2.840.10045.4.3.2": "SHA256withECDSA",
    "1.2.840.10045.4.3.3": "SHA384withECDSA",
    "1.2.840.10045.4.3.4": "SHA512withECDSA",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}


def key_algorithm_name(oid: str) -> str:
    return _KEY_ALGORITHM_NAMES.get(oid, oid)


def signature_algorithm_name(oid: str) -> str:
    return _SIGNATURE_ALGORITHM_NAMES.get(oid, oid)


def certificate_info(cert: x509.Certificate, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """E-IMZO's `certificate_info` object (x509.get_certificate_info; also each certificate of pkcs7 info)."""
    tbs = cert["tbs_certificate"]
    validity = tbs["validity"]
    return {
        "serialNumber": format(tbs["serial_number"].native, "x"),  # Java's BigInteger.toString(16)
        "subjectName": format_name(tbs["subject"]),
        "validFrom": format_local_time(validity["not_before"].native, tz),
        "validTo": format_local_time(validity["not_after"].native, tz),
        "issuerName": format_name(tbs["issuer"]),
        "publicKey": {
            "keyAlgName": key_algorithm_name(spki_algorithm(cert)),
            "publicKey": base64.b64encode(spki_der(cert)).decode("ascii"),
        },
        "signature": {
            "signAlgName": signature_algorithm_name(cert["signature_algorithm"]["algorithm"].dotted),
            "signature": cert["signature_value"].native.hex(),
        },
    }


# --------------------------------------------------------------------------------------------------------------
# Digests and signatures

HashName = Literal["sha256", "sha384", "sha512", "gost94"]
Family = Literal["rsa", "ecdsa", "ozdst"]

_DIGESTS: dict[str, HashName] = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    OZDST.digest_oid: "gost94",
    OZMST.digest_oid: "gost94",
}

#: signature OID -> (key family, hash it implies; None = the hash comes from the CMS digestAlgorithm).
_SIGNATURES: dict[str, tuple[Family, HashName | None]] = {
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.113549.1.1.1": ("rsa", None),  # rsaEncryption, as OpenSSL writes it into CMS
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey, seen in some CMS writers
    OZDST.signature_oid: ("ozdst", "gost94"),
    OZMST.signature_oid: ("ozdst", "gost94"),
    OZDST.key_oid: ("ozdst", "gost94"),  # some writers name the key algorithm instead of the signature one
    OZMST.key_oid: ("ozdst", "gost94"),
}

def _cryptography_hash(name: HashName) -> hashes.HashAlgorithm:
    return {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[name]()


def digest(digest_oid: str, data: bytes) -> bytes:
    """Hash `data` with the digest algorithm `digest_oid` (SHA-2 or O'zDSt 1106); AlgorithmError if unknown."""
    name = _DIGESTS.get(digest_oid)
    if name is None:
        raise AlgorithmError(f"digest algorithm {digest_oid} is not supported")
    return gost94_digest(data) if name == "gost94" else hashlib.new(name, data).digest()


def _scheme(signature_oid: str, digest_oid: str | None) -> tuple[Family, HashName]:
    entry = _SIGNATURES.get(signature_oid)
    if entry is None:
        raise AlgorithmError(f"signature algorithm {signature_algorithm_name(signature_oid)} is not supported")
    family, implied = entry
    given = None
    if digest_oid is not None:
        given = _DIGESTS.get(digest_oid)
        if given is None:
            raise AlgorithmError(f"digest algorithm {digest_oid} is not supported")
    hash_name = implied or given
    if hash_name is None:
        raise AlgorithmError(f"signature algorithm {signature_oid} needs a digest algorithm")
    if given is not None and given != hash_name:
        raise AlgorithmError(f"digest algorithm {digest_oid} does not go with signature algorithm {signature_oid}")
    return family, hash_name


def verify_signature(
    spki: bytes, signature_oid: str, message: bytes, signature: bytes, *, digest_oid: str | None = None
) -> bool:
    """True if `signature` over `message` verifies with the SubjectPublicKeyInfo `spki` (DER).

    False for a signature that does not verify (also a malformed one); AlgorithmError when it cannot be checked:
    unknown algorithm, a digest that does not go with the signature algorithm, or a key of another kind.
    """
    family, hash_name = _scheme(signature_oid, digest_oid)
    if family == "ozdst":
        try:
            key = parse_spki(spki)
        except ValueError as exc:
            raise AlgorithmError(f"the key does not fit an O'zDSt signature: {exc}") from exc
        return key.verify(message, signature)
    try:
        public_key = serialization.load_der_public_key(spki)
    except (ValueError, exceptions.UnsupportedAlgorithm) as exc:
        raise AlgorithmError(f"the public key cannot be read: {exc}") from exc
    fits = {"rsa": rsa.RSAPublicKey, "ecdsa": ec.EllipticCurvePublicKey}[family]
    if not isinstance(public_key, fits):
        raise AlgorithmError(f"a {type(public_key).__name__} cannot make a {family} signature")
    hash_algorithm = _cryptography_hash(hash_name)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, padding.PKCS1v15(), hash_algorithm)
        else:
            public_key.verify(signature, message, ec.ECDSA(hash_algorithm))
    except (exceptions.InvalidSignature, ValueError):
        return False  # cryptography reports some malformed signatures (bad DER) as ValueError
    return True


def issued_by(subject: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The subject names `issuer` as its issuer (RFC 5280 name comparison, as asn1crypto implements it)."""
    try:
        named, name = subject["tbs_certificate"]["issuer"], issuer["tbs_certificate"]["subject"]
        return named.dump() == name.dump() or bool(named == name)  # equal DER first: the full comparison is slow
    except _ASN1_ERRORS:
        return False


def verify_certificate_signature(subject: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if `subject` carries a valid signature by `issuer`'s key (names are checked by `issued_by`)."""
    return verify_signature(
        spki_der(issuer),
        subject["signature_algorithm"]["algorithm"].dotted,
        subject["tbs_certificate"].dump(),
        subject["signature_value"].native,
    )

