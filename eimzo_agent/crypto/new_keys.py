"""New key pairs for enrollment: generation by E-IMZO's algorithm name, signing with them, self-signed certificates.

Keys come only from the OS random source: `secrets` (O'zDSt scalars, via `ozdst.generate_private_key`) and
`cryptography` (RSA/EC, OpenSSL's CSPRNG). Nothing a page sends (E-IMZO's `seed`) ever goes into a key.

O'zDSt/OZMST keys are made on curve CryptoPro-A, the curve of every E-IMZO key seen so far; RSA and EC keys are
for international CAs that issue to E-IMZO-style key files.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from typing import TYPE_CHECKING, TypeAlias

from asn1crypto import algos, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509

from ..lazy_module import lazy_module
from . import ozdst
from .ozdst_keys import OZDST, OZMST, OzdstPrivateKey, parse_spki

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
else:  # imported when an RSA/EC key is first made or used (see lazy_module)
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")

__all__ = [
    "ALGORITHMS",
    "AlgorithmUnknown",
    "PrivateKey",
    "algorithm_name",
    "generate",
    "public_key_matches",
    "self_signed_certificate",
    "sign",
    "signature_algorithm",
    "spki_der",
]

PrivateKey: TypeAlias = "OzdstPrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey"

#: E-IMZO's alg_name values (upper-cased) we generate keys for. "OZMST-286-2024-2" is what E-IMZO now steers to.
ALGORITHMS: tuple[str, ...] = (
    "OZDST-1092-2009-2", "OZMST-286-2024-2", "RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384",
)
_ALGORITHM_DER: dict[str, bytes] = {}
_EC_NAMES = ("EC-P256", "EC-P384")
# UTCTime covers 1950..2049; RFC 5280 §4.1.2.5 wants GeneralizedTime from 2050 on.
_UTC_TIME_LIMIT = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)


class _Spki(core.Sequence):
    # Generic: asn1crypto's PublicKeyInfo raises KeyError on the national key OIDs.
    _fields = [("algorithm", core.Any), ("public_key", core.OctetBitString)]


class AlgorithmUnknown(ValueError):
    """The alg_name is none of `ALGORITHMS`."""


def generate(alg_name: str) -> PrivateKey:
    """A new private key for E-IMZO's `alg_name` (case-insensitive); AlgorithmUnknown for anything else."""
    name = alg_name.strip().upper()
    if name == "OZDST-1092-2009-2":
        return OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A, OZDST)
    if name == "OZMST-286-2024-2":
        return OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A, OZMST)
    if name in ("RSA-2048", "RSA-3072", "RSA-4096"):
        return rsa.generate_private_key(65537, int(name[4:]))
    if name in _EC_NAMES:
        return ec.generate_private_key(ec.SECP256R1() if name == "EC-P256" else ec.SECP384R1())
    raise AlgorithmUnknown(f"unknown key algorithm {alg_name!r}; known: {', '.join(ALGORITHMS)}")


def algorithm_name(key: PrivateKey) -> str:
    """The alg_name `generate` would make this key for."""
    if isinstance(key, OzdstPrivateKey):
        return "OZMST-286-2024-2" if key.family == OZMST else "OZDST-1092-2009-2"
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    return {"secp256r1": "EC-P256", "secp384r1": "EC-P384"}.get(key.curve.name, f"EC-{key.curve.name}")


def spki_der(key: PrivateKey) -> bytes:
    """The key's SubjectPublicKeyInfo (O'zDSt keys as E-IMZO writes them)."""
    if isinstance(key, OzdstPrivateKey):
        return _ozdst_spki(key)
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _ozdst_spki(key: OzdstPrivateKey) -> bytes:
    """`key.public_key().spki_der()`, encoded by hand: {keyOID, SEQUENCE{paramset}}, BIT STRING{OCTET STRING(64)}."""
    def der(tag: int, content: bytes) -> bytes:
        return bytes((tag, len(content))) + content  # every part here is shorter than 128 bytes

    algorithm = der(0x30, _oid_der(key.family.key_oid) + der(0x30, _oid_der(key.paramset_oid)))
    return der(0x30, algorithm + der(0x03, b"\x00" + der(0x04, ozdst.encode_public_key(*key.public_point))))


@functools.lru_cache(maxsize=16)
def _oid_der(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def public_key_matches(key: PrivateKey, spki: bytes) -> bool:
    """Whether the SubjectPublicKeyInfo `spki` (a certificate's, a request's) holds this key's public key.

    Compared as keys, not bytes: a CA may re-encode the parameters (O'zDSt paramset OID, EC named curve).
    """
    try:
        if isinstance(key, OzdstPrivateKey):
            public = parse_spki(spki)
            return public.family == key.family and public.curve == key.curve and public.point == key.public_point
        loaded = serialization.load_der_public_key(spki)
    except (ValueError, TypeError):
        return False
    return loaded == key.public_key()


def signature_algorithm_der(key: PrivateKey) -> bytes:
    """`signature_algorithm(key)` as DER (cached: one per key kind)."""
    kind = (key.family.signature_oid if isinstance(key, OzdstPrivateKey)
            else "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec")
    cached = _ALGORITHM_DER.get(kind)
    if cached is None:
        cached = _ALGORITHM_DER[kind] = signature_algorithm(key).dump()
    return cached


def signature_algorithm(key: PrivateKey) -> algos.SignedDigestAlgorithm:
    """The AlgorithmIdentifier of `sign`'s signatures (explicit NULL where E-IMZO and RFC 4055 write one)."""
    if isinstance(key, OzdstPrivateKey):
        return algos.SignedDigestAlgorithm({"algorithm": key.family.signature_oid, "parameters": core.Null()})
    if isinstance(key, rsa.RSAPrivateKey):
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()})
    return algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})  # RFC 5758 §3.2: no parameters


def sign(key: PrivateKey, message: bytes) -> bytes:
    """Sign `message` as `signature_algorithm(key)` says (O'zDSt: s||r over GOST R 34.11-94)."""
    if isinstance(key, OzdstPrivateKey):
        return key.sign(message)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def self_signed_certificate(key: PrivateKey, subject_der: bytes, *, days: int = 365,
                            now: dt.datetime | None = None) -> asn1_x509.Certificate:
    """A self-signed end-entity certificate for `key` and the DER Name `subject_der` (E-IMZO's temporary key).

    The subject's bytes are kept as they are (issuer = subject, exactly). Not a CA: basicConstraints cA=false.
    """
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    name = asn1_x509.Name.load(subject_der)
    spki = spki_der(key)
    key_bits = _Spki.load(spki)["public_key"].native
    tbs = asn1_x509.TbsCertificate({
        "version": "v3",
        "serial_number": int.from_bytes(os.urandom(20), "big") >> 1,  # 159 random bits, positive
        "signature": signature_algorithm(key),
        "issuer": name,
        "validity": {"not_before": _time(now - dt.timedelta(minutes=5)),
                     "not_after": _time(now + dt.timedelta(days=days))},
        "subject": name,
        # Loaded as-is: asn1crypto's key classes would choke on the national OIDs if asked to encode them.
        "subject_public_key_info": asn1_keys.PublicKeyInfo.load(spki),
        "extensions": [
            {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
            {"extn_id": "key_usage", "critical": True,
             "extn_value": {"digital_signature", "non_repudiation"}},
            {"extn_id": "key_identifier", "critical": False,
             "extn_value": hashlib.sha1(key_bits).digest()},  # noqa: S324 - an identifier, RFC 5280 method 1
        ],
    })
    return asn1_x509.Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": signature_algorithm(key),
        "signature_value": sign(key, tbs.dump()),
    })


def _time(moment: dt.datetime) -> asn1_x509.Time:
    moment = moment.astimezone(dt.UTC)
    return asn1_x509.Time(name="utc_time" if moment < _UTC_TIME_LIMIT else "general_time", value=moment)
