"""O'zDSt 1092:2009 keys: OIDs, SubjectPublicKeyInfo and PKCS#8 encodings, and the CMS `Signer`.

The math (GOST R 34.10-2001 on the CryptoPro curves, GOST R 34.11-94 hash) lives in `ozdst` and `gost94`;
this module is about bytes on the wire and in key files. asn1crypto's `keys` classes raise KeyError on the
national OIDs as soon as a key is touched, so keys are parsed here with small generic Sequence classes.

Which curve a key is on is decided by its public point (A, B or C: a point lies on a wrong curve with
probability ~2^-256), never by the paramset OID: the public sources disagree on what paramset .2 means
(a real MVD certificate has its key on CryptoPro-C; OpenImzo maps .2 to CryptoPro-B).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from asn1crypto import algos, core, x509

from . import ozdst
from .gost94 import gost94_digest
from .signer import CmsProfile

__all__ = [
    "OZDST",
    "OZMST",
    "Family",
    "OzdstPrivateKey",
    "OzdstPublicKey",
    "OzdstSigner",
    "Pkcs8Key",
    "certificate_public_key",
    "family_of",
    "is_ozdst_key_oid",
    "load_pkcs8",
    "paramset_for",
    "parse_spki",
    "read_pkcs8",
]

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Family:
    """One generation of the national algorithms: the key OID and the OIDs that go with it in CMS and X.509."""

    name: str
    key_oid: str  # also the prefix of the family's paramset OIDs (<key_oid>.1 = curve A, ...)
    digest_oid: str
    signature_oid: str


#: O'zDSt 1092:2009 / 1106:2009, what every E-IMZO key issued so far uses.
OZDST = Family("OZDST", "1.2.860.3.15.1.1.2.1", "1.2.860.3.15.1.3.2.1.1", "1.2.860.3.15.1.1.2.2.2.2")
#: OZMST (2024), which E-IMZO's key generation now steers to. Same math as O'zDSt according to OpenImzo only:
#: unconfirmed against a real OZMST key or signature (none is public), see docs/compat.md.
OZMST = Family("OZMST", "1.2.860.3.15.2.1.2.1", "1.2.860.3.15.2.3.2.1.1", "1.2.860.3.15.2.1.2.2.2.2")

_FAMILIES = {family.key_oid: family for family in (OZDST, OZMST)}

# Paramset suffix we *write* for a curve. Readers (ours included) ignore it and test the point instead; .2 is
# used for both B and C because the sources give it to each (see the module docstring).
_PARAMSET_SUFFIX = {ozdst.CRYPTOPRO_A.name: "1", ozdst.CRYPTOPRO_B.name: "2", ozdst.CRYPTOPRO_C.name: "2"}

_COORDINATE = 32  # bytes per coordinate and per scalar


def is_ozdst_key_oid(oid: str) -> bool:
    """True for the O'zDSt and OZMST public-key algorithm OIDs."""
    return oid in _FAMILIES


def family_of(key_oid: str) -> Family:
    try:
        return _FAMILIES[key_oid]
    except KeyError:
        raise ValueError(f"{key_oid} is not an O'zDSt/OZMST key algorithm") from None


def paramset_for(curve: ozdst.Curve, family: Family = OZDST) -> str:
    """The paramset OID written into new keys and certificates for `curve`."""
    try:
        return f"{family.key_oid}.{_PARAMSET_SUFFIX[curve.name]}"
    except KeyError:
        raise ValueError(f"no paramset OID for curve {curve.name}") from None


# --------------------------------------------------------------------------------------------------------------
# Generic ASN.1 shapes (no OID maps, so national OIDs pass through)


class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _PublicKeyInfo(core.Sequence):
    _fields = [("algorithm", _AlgorithmIdentifier), ("public_key", core.OctetBitString)]


class _ParamSet(core.Sequence):
    """SPKI parameters of an O'zDSt key: SEQUENCE { paramset OID } (E-IMZO writes no digest paramset)."""

    _fields = [("paramset", core.ObjectIdentifier)]


class _PrivateKeyInfo(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("private_key_algorithm", _AlgorithmIdentifier),
        ("private_key", core.OctetString),
        ("attributes", core.Any, {"implicit": 0, "optional": True}),
    ]


class _EcPrivateKey(core.Sequence):
    """SEC 1 ECPrivateKey, the privateKey of E-IMZO's (BouncyCastle's) O'zDSt PKCS#8."""

    _fields = [
        ("version", core.Integer),
        ("private_key", core.OctetString),
        ("parameters", core.ObjectIdentifier, {"explicit": 0, "optional": True}),
        ("public_key", core.OctetBitString, {"explicit": 1, "optional": True}),
    ]


# --------------------------------------------------------------------------------------------------------------
# Public keys


def _encode_point(point: tuple[int, int]) -> bytes:
    """DER OCTET STRING(64) = x LE || y LE: the content of the SPKI BIT STRING and of SEC1's publicKey."""
    return core.OctetString(ozdst.encode_public_key(*point)).dump()


def _decode_point(der: bytes) -> tuple[int, int]:
    raw = core.OctetString.load(der, strict=True).native
    if not isinstance(raw, bytes) or len(raw) != 2 * _COORDINATE:
        raise ValueError("an O'zDSt public key is 64 bytes")
    return ozdst.decode_public_key(raw)


def _curve_of(point: tuple[int, int]) -> ozdst.Curve:
    curve = ozdst.curve_of_point(*point)
    if curve is None:
        raise ValueError("the public key lies on none of the curves CryptoPro-A/B/C")
    return curve


@dataclass(frozen=True)
class OzdstPublicKey:
    """A public point with its family and the paramset OID it was (or will be) written with."""

    family: Family
    paramset_oid: str
    curve: ozdst.Curve
    point: tuple[int, int]

    def subject_public_key(self) -> bytes:
        """The value of the SPKI BIT STRING: DER OCTET STRING(64) = x LE || y LE (what key identifiers hash)."""
        return _encode_point(self.point)

    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo as E-IMZO writes it: {keyOID, SEQUENCE{paramset}}, BIT STRING{OCTET STRING}."""
        algorithm = _AlgorithmIdentifier(
            {"algorithm": self.family.key_oid, "parameters": _ParamSet({"paramset": self.paramset_oid})}
        )
        return _PublicKeyInfo({"algorithm": algorithm, "public_key": self.subject_public_key()}).dump()

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Check an s||r signature over gost94(`message`)."""
        return ozdst.verify_digest(self.curve, self.point, gost94_digest(message), signature)


def _paramset_of(parameters: core.Asn1Value | None) -> str | None:
    """The paramset OID of AlgorithmIdentifier parameters: a bare OID, or the first OID of a SEQUENCE."""
    if parameters is None or isinstance(parameters, core.Void):
        return None
    value = core.Asn1Value.load(parameters.dump(), strict=True)
    if isinstance(value, core.ObjectIdentifier):
        return value.dotted
    if isinstance(value, core.Sequence) and len(value) and isinstance(value[0], core.ObjectIdentifier):
        return value[0].dotted
    if isinstance(value, core.Null):
        return None
    raise ValueError("O'zDSt key parameters are neither a paramset OID nor a SEQUENCE starting with one")


def parse_spki(der: bytes) -> OzdstPublicKey:
    """Decode an O'zDSt/OZMST SubjectPublicKeyInfo; ValueError for anything else or a point on no known curve."""
    try:
        info = _PublicKeyInfo.load(der, strict=True)
        family = family_of(info["algorithm"]["algorithm"].dotted)
        paramset = _paramset_of(info["algorithm"]["parameters"])
        point = _decode_point(info["public_key"].native)
    except _ASN1_ERRORS as exc:
        raise ValueError(f"not an O'zDSt public key: {exc}") from exc
    curve = _curve_of(point)
    return OzdstPublicKey(family, paramset or paramset_for(curve, family), curve, point)


def certificate_public_key(cert: x509.Certificate) -> OzdstPublicKey:
    """The O'zDSt public key of a certificate (ValueError if it holds another kind of key)."""
    return parse_spki(cert["tbs_certificate"]["subject_public_key_info"].dump())


# --------------------------------------------------------------------------------------------------------------
# Private keys


@dataclass(frozen=True)
class OzdstPrivateKey:
    """The scalar d on a known curve. `d` stays out of repr so it never lands in a log or traceback."""

    family: Family
    paramset_oid: str
    curve: ozdst.Curve
    d: int = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.d < self.curve.q:
            raise ValueError("the private key is out of range for its curve")

    @classmethod
    def generate(cls, curve: ozdst.Curve = ozdst.CRYPTOPRO_A, family: Family = OZDST) -> OzdstPrivateKey:
        return cls(family, paramset_for(curve, family), curve, ozdst.generate_private_key(curve))

    @functools.cached_property
    def public_point(self) -> tuple[int, int]:
        """d·G, computed once per key object (a scalar multiplication costs tens of ms in pure Python)."""
        return ozdst.public_point(self.curve, self.d)

    def public_key(self) -> OzdstPublicKey:
        return OzdstPublicKey(self.family, self.paramset_oid, self.curve, self.public_point)

    def sign(self, message: bytes) -> bytes:
        """s||r (64 bytes) over gost94(`message`), the layout of E-IMZO's CMS and certificate signatures."""
        return ozdst.sign_digest(self.curve, self.d, gost94_digest(message))

    def pkcs8_der(self) -> bytes:
        """PKCS#8 the way E-IMZO (BouncyCastle) writes it: params = bare paramset OID, privateKey = SEC1
        ECPrivateKey{1, d big-endian, [0] paramset, [1] public point}. Readers of either style accept it."""
        ec_private_key = _EcPrivateKey(
            {
                "version": 1,
                "private_key": self.d.to_bytes(_COORDINATE, "big"),
                "parameters": self.paramset_oid,
                "public_key": _encode_point(self.public_point),
            }
        )
        algorithm = _AlgorithmIdentifier(
            {"algorithm": self.family.key_oid, "parameters": core.ObjectIdentifier(self.paramset_oid)}
        )
        return _PrivateKeyInfo(
            {"version": 0, "private_key_algorithm": algorithm, "private_key": ec_private_key.dump()}
        ).dump()


@dataclass(frozen=True)
class Pkcs8Key:
    """What an O'zDSt PKCS#8 says, before the curve is known (it may hold no public point to tell it by)."""

    family: Family
    paramset_oid: str | None
    d: int = field(repr=False)
    point: tuple[int, int] | None  # the public point stored beside d (encoding (a)), if any

    def bind(self, public_key: OzdstPublicKey | None = None) -> OzdstPrivateKey:
        """The key on its curve: the one its own public point lies on, else `public_key`'s (the certificate's).

        ValueError without either, when d is out of range for that curve, or when the stored point is not d·G.
        Whether the key belongs to a certificate is a separate check (`OzdstSigner.matches_certificate`).
        """
        point = self.point or (public_key.point if public_key is not None else None)
        if point is None:
            raise ValueError("the key file holds no public key to tell the O'zDSt curve by")
        curve = _curve_of(point)
        fallback = public_key.paramset_oid if public_key is not None else paramset_for(curve, self.family)
        key = OzdstPrivateKey(self.family, self.paramset_oid or fallback, curve, self.d)
        if self.point is not None and key.public_point != self.point:
            raise ValueError("the private key does not match the public key stored beside it")
        return key


def read_pkcs8(der: bytes) -> Pkcs8Key:
    """Decode an O'zDSt/OZMST PKCS#8 key in either encoding (ValueError for anything else).

    (a) E-IMZO/BouncyCastle: params = bare paramset OID, privateKey = SEC1 ECPrivateKey (d big-endian, [0]
    paramset, [1] public point); (b) GOST style: params = SEQUENCE{paramset, digest paramset}, privateKey = d
    little-endian as raw octets or in an OCTET STRING, or an INTEGER.
    """
    try:
        info = _PrivateKeyInfo.load(der, strict=True)
        if info["version"].native not in (0, 1):
            raise ValueError(f"PKCS#8 version {info['version'].native}")
        algorithm = info["private_key_algorithm"]
        family = family_of(algorithm["algorithm"].dotted)
        paramset = _paramset_of(algorithm["parameters"])
        d, stored_paramset, point = _raw_private_key(info["private_key"].native)
    except _ASN1_ERRORS as exc:
        raise ValueError(f"not an O'zDSt private key: {exc}") from exc
    if not 0 < d < 1 << (8 * _COORDINATE):
        raise ValueError("the private key is zero or longer than 256 bits")
    return Pkcs8Key(family, paramset or stored_paramset, d, point)


def load_pkcs8(der: bytes, public_key: OzdstPublicKey | None = None) -> OzdstPrivateKey:
    """`read_pkcs8(der).bind(public_key)`: the key on the curve of its stored point or of `public_key`."""
    return read_pkcs8(der).bind(public_key)


_RawFields = tuple[int, str | None, tuple[int, int] | None]  # d, paramset OID, public point


def _raw_private_key(octets: bytes) -> _RawFields:
    """The privateKey field of (a) or (b): SEC1 SEQUENCE, raw 32 octets, OCTET STRING or INTEGER."""
    if len(octets) == _COORDINATE:  # (b), raw: no DER wrapper of any kind fits in exactly 32 octets with a d
        return int.from_bytes(octets, "little"), None, None
    inner = core.Asn1Value.load(octets, strict=True)
    if isinstance(inner, core.Sequence):
        return _sec1_private_key(octets)
    if isinstance(inner, core.OctetString):
        value = inner.native
        if not 0 < len(value) <= _COORDINATE:
            raise ValueError("a GOST-style private key holds at most 32 octets")
        return int.from_bytes(value, "little"), None, None
    if isinstance(inner, core.Integer):
        return inner.native, None, None
    raise ValueError("unknown O'zDSt privateKey layout")


def _sec1_private_key(octets: bytes) -> _RawFields:
    sec1 = _EcPrivateKey.load(octets, strict=True)
    if sec1["version"].native != 1:
        raise ValueError("ECPrivateKey version is not 1")
    scalar = sec1["private_key"].native
    if not 0 < len(scalar) <= _COORDINATE:
        raise ValueError("an O'zDSt private scalar holds at most 32 octets")
    parameters, public = sec1["parameters"], sec1["public_key"]
    paramset = None if isinstance(parameters, core.Void) else parameters.dotted
    point = None if isinstance(public, core.Void) else _decode_point(public.native)
    return int.from_bytes(scalar, "big"), paramset, point


# --------------------------------------------------------------------------------------------------------------
# Signer (crypto.signer.Signer protocol)


def _algorithm_with_null(spec: type[core.Sequence], oid: str) -> core.Sequence:
    # E-IMZO writes an explicit NULL; asn1crypto drops "parameters": None, so pass core.Null().
    return spec({"algorithm": oid, "parameters": core.Null()})


@dataclass
class OzdstSigner:
    """Signs CMS with an O'zDSt/OZMST key exactly as E-IMZO does (its three signed attributes, NULL params)."""

    private_key: OzdstPrivateKey
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate] = field(default_factory=tuple)

    #: Read by the pkcs7 plugin: E-IMZO's signed attributes (contentType, signingTime, messageDigest).
    cms_profile: ClassVar[CmsProfile] = "eimzo"

    def __post_init__(self) -> None:
        family = self.private_key.family
        self.digest_algorithm = _algorithm_with_null(algos.DigestAlgorithm, family.digest_oid)
        self.signature_algorithm = _algorithm_with_null(algos.SignedDigestAlgorithm, family.signature_oid)

    def digest(self, data: bytes) -> bytes:
        return gost94_digest(data)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def matches_certificate(self) -> bool:
        """d·G equals the certificate's public point (on the same curve)."""
        try:
            public = certificate_public_key(self.certificate)
        except ValueError:
            return False
        key = self.private_key
        return public.curve == key.curve and public.point == key.public_point
