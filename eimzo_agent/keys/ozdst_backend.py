"""O'zDSt / OZMST keys in .pfx files: the `PfxBackend` that opens them and the writer that creates them.

E-IMZO's .pfx is ordinary PKCS#12 (3DES / RC2 / PBES2 bags, HMAC MAC); only the PKCS#8 key algorithm is
national, which is why `cryptography` refuses the whole file. `pkcs12.open_pfx` has verified the MAC before a
backend runs, so this one just decrypts the key bags with the shared building blocks, finds each key's
certificate and checks that d·G is the certificate's point.

`pkcs12` imports this module at its end, which registers the backend after the `cryptography` one: RSA and
NIST EC files never reach it, and it declines (returns None) every file whose keys are not O'zDSt/OZMST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from asn1crypto import algos, core
from asn1crypto import cms as asn1_cms
from asn1crypto import keys as asn1_keys
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.padding import PKCS7

from ..crypto import ozdst
from ..crypto.ozdst_keys import (
    OzdstPrivateKey,
    OzdstPublicKey,
    OzdstSigner,
    Pkcs8Key,
    certificate_public_key,
    is_ozdst_key_oid,
    read_pkcs8,
)
from .alias import build_alias
from .errors import KeyErrorKind, KeyStoreError

# The private helpers are shared on purpose: the alias of an opened key must be read exactly as
# `list_aliases` reads it (same friendlyName quirks), or `load_key` and signing would disagree.
from .pkcs12 import (
    UnlockedKey,
    _bag_attributes,
    _bag_certificate,
    _is_key_bag,
    bmp_passwords,
    decrypt_key_bag,
    issuer_order,
    iter_safe_bags,
    parse_pfx,
    pkcs8_algorithm,
    pkcs12_kdf,
    register_backend,
)

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)

#: What the vendor's Java 8 agent reads: PKCS#12 PBE with 3-key 3DES, SHA-1 KDF, HMAC-SHA1 MAC.
WRITE_ITERATIONS = 2048
_SALT_BYTES = 20  # Java's PKCS12KeyStore uses 20-byte salts
_PBE_3DES = "pkcs12_sha1_tripledes_3key"  # 1.2.840.113549.1.12.1.3

_Cert = asn1_x509.Certificate
_CertEntry = tuple[asn1_x509.Certificate, bytes | None]  # certificate, localKeyId


class OzdstBackend:
    """Opens .pfx files whose key bags hold O'zDSt or OZMST keys."""

    name = "ozdst"

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None:
        pfx = parse_pfx(data)
        bags = [bag for bag in iter_safe_bags(pfx) if _is_key_bag(bag)]
        if not bags:  # keys inside encrypted containers are rare, but legal
            bags = [bag for bag in iter_safe_bags(pfx, password) if _is_key_bag(bag)]
        keys = []
        for bag in bags:
            der = _decrypted_ozdst_key(pfx, bag, password)
            if der is None:
                return None  # not (only) national keys: not ours, open_pfx reports it as unsupported
            keys.append((bag, der))
        if not keys:
            return None
        certs = [(cert, _bag_attributes(bag)[1]) for bag in iter_safe_bags(pfx, password)
                 if (cert := _bag_certificate(bag)) is not None]
        return [_entry(bag, der, certs) for bag, der in keys]


def _decrypted_ozdst_key(pfx: asn1_pkcs12.Pfx, bag: asn1_pkcs12.SafeBag, password: str) -> bytes | None:
    """The PKCS#8 DER of an O'zDSt/OZMST key bag, None for any other key (or a cipher we do not know)."""
    try:
        der = decrypt_key_bag(pfx, bag, password)
    except KeyStoreError as exc:
        if exc.kind is KeyErrorKind.UNSUPPORTED:
            return None
        raise
    try:
        algorithm = pkcs8_algorithm(der)
    except _ASN1_ERRORS:
        return None
    return der if is_ozdst_key_oid(algorithm.oid) else None


def _entry(bag: asn1_pkcs12.SafeBag, der: bytes, certs: list[_CertEntry]) -> UnlockedKey:
    name, key_id = _bag_attributes(bag)
    key, cert = _key_and_certificate(der, key_id, certs)
    # issuer_order only compares .subject/.issuer, which asn1crypto certificates have too (with DN matching).
    chain = tuple(issuer_order(cert, [other for other, _ in certs if other is not cert]))  # type: ignore[arg-type]
    # The same rule as list_aliases: friendlyName lower-cased, else E-IMZO's alias of the certificate.
    alias = name.lower() if name is not None else build_alias(cert)
    return UnlockedKey(alias, OzdstSigner(key, cert, chain), cert, chain)


def _key_and_certificate(der: bytes, key_id: bytes | None,
                         certs: list[_CertEntry]) -> tuple[OzdstPrivateKey, _Cert]:
    """The key and its certificate: the one with the same localKeyId, else any whose point is d·G."""
    pkcs8 = _read_key(der)
    paired = [cert for cert, cert_key_id in certs if key_id is not None and cert_key_id == key_id]
    by_curve: dict[str, OzdstPrivateKey] = {}  # d·G is costly: computed once per curve, not per certificate
    if pkcs8.point is not None:  # E-IMZO's encoding: the key says its curve (and its point must be d·G)
        key = _bind(pkcs8)
        by_curve = {curve.name: key for curve in ozdst.CURVES}
    for cert in paired or [cert for cert, _ in certs]:
        public = _ozdst_public_key(cert)
        if public is None:
            continue
        key = by_curve.get(public.curve.name) or _bound_or_none(pkcs8, public)
        if key is None:
            continue
        by_curve[public.curve.name] = key
        if key.curve == public.curve and key.public_point == public.point:
            return key, cert
    detail = "the private key does not belong to its certificate" if paired else \
        "no certificate in the file belongs to the key"
    raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, detail)


def _ozdst_public_key(cert: _Cert) -> OzdstPublicKey | None:
    try:
        return certificate_public_key(cert)
    except ValueError:
        return None


def _read_key(der: bytes) -> Pkcs8Key:
    try:
        return read_pkcs8(der)
    except ValueError as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"unreadable O'zDSt private key: {exc}") from exc


def _bind(pkcs8: Pkcs8Key) -> OzdstPrivateKey:
    try:
        return pkcs8.bind()
    except ValueError as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"inconsistent O'zDSt private key: {exc}") from exc


def _bound_or_none(pkcs8: Pkcs8Key, public: OzdstPublicKey) -> OzdstPrivateKey | None:
    """The key on `public`'s curve; None when d cannot be a key there (then that certificate is not its own)."""
    try:
        return pkcs8.bind(public)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------------------
# Writing


def serialize_ozdst_pfx(private_key: OzdstPrivateKey, certificate_der: bytes, chain_der: Sequence[bytes],
                        password: str, alias: str) -> bytes:
    """An O'zDSt .pfx in the legacy layout the vendor's Java 8 agent opens.

    PKCS#12 v3, authSafe = data holding (i) a plain SafeContents with the pkcs8ShroudedKeyBag
    (pbeWithSHAAnd3-KeyTripleDES-CBC, 2048 iterations, friendlyName = alias, localKeyId) and (ii) an
    encryptedData SafeContents with the certificate bags (3DES too); MAC HMAC-SHA1 with the PKCS#12 KDF.
    The key is PKCS#8 in E-IMZO's own encoding (`OzdstPrivateKey.pkcs8_der`).
    """
    if not password:
        raise ValueError("a key file needs a non-empty password")
    certificate = _Cert.load(certificate_der)
    public = _ozdst_public_key(certificate)
    if public is None or public.curve != private_key.curve or public.point != private_key.public_point:
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")
    secret = bmp_passwords(password)[0]
    local_key_id = hashlib.sha1(certificate_der).digest()  # noqa: S324 - OpenSSL's localKeyId convention
    attributes = _attributes(alias.lower(), local_key_id)
    key_bag = _shrouded_key_bag(private_key.pkcs8_der(), secret, attributes)
    cert_bags = [_cert_bag(certificate_der, attributes), *(_cert_bag(der, None) for der in chain_der)]
    auth_safe = asn1_pkcs12.AuthenticatedSafe(
        [
            asn1_cms.ContentInfo({"content_type": "data", "content": asn1_pkcs12.SafeContents([key_bag]).dump()}),
            _encrypted_data(asn1_pkcs12.SafeContents(cert_bags).dump(), secret),
        ]
    ).dump()
    return asn1_pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": asn1_cms.ContentInfo({"content_type": "data", "content": auth_safe}),
            "mac_data": _mac_data(auth_safe, secret),
        }
    ).dump()


def _attributes(alias: str, local_key_id: bytes) -> asn1_pkcs12.Attributes:
    return asn1_pkcs12.Attributes(
        [
            {"type": "friendly_name", "values": [alias]},
            {"type": "local_key_id", "values": [local_key_id]},
        ]
    )


def _shrouded_key_bag(pkcs8: bytes, secret: bytes, attributes: asn1_pkcs12.Attributes) -> asn1_pkcs12.SafeBag:
    algorithm, ciphertext = _pbe_encrypt(pkcs8, secret)
    value = asn1_keys.EncryptedPrivateKeyInfo({"encryption_algorithm": algorithm, "encrypted_data": ciphertext})
    return asn1_pkcs12.SafeBag(
        {"bag_id": "pkcs8_shrouded_key_bag", "bag_value": value, "bag_attributes": attributes}
    )


def _cert_bag(der: bytes, attributes: asn1_pkcs12.Attributes | None) -> asn1_pkcs12.SafeBag:
    value = asn1_pkcs12.CertBag({"cert_id": "x509", "cert_value": _Cert.load(der)})
    bag = {"bag_id": "cert_bag", "bag_value": value}
    if attributes is not None:
        bag["bag_attributes"] = attributes
    return asn1_pkcs12.SafeBag(bag)


def _encrypted_data(plain: bytes, secret: bytes) -> asn1_cms.ContentInfo:
    algorithm, ciphertext = _pbe_encrypt(plain, secret)
    encrypted = asn1_cms.EncryptedData(
        {
            "version": "v0",
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": algorithm,
                "encrypted_content": ciphertext,
            },
        }
    )
    return asn1_cms.ContentInfo({"content_type": "encrypted_data", "content": encrypted})


def _pbe_encrypt(plain: bytes, secret: bytes) -> tuple[algos.EncryptionAlgorithm, bytes]:
    """pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C) with a fresh salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = pkcs12_kdf("sha1", secret, salt, 1, WRITE_ITERATIONS, 24)
    iv = pkcs12_kdf("sha1", secret, salt, 2, WRITE_ITERATIONS, 8)
    padder = PKCS7(64).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    algorithm = algos.EncryptionAlgorithm(
        {"algorithm": _PBE_3DES, "parameters": {"salt": salt, "iterations": WRITE_ITERATIONS}}
    )
    return algorithm, encryptor.update(padded) + encryptor.finalize()


def _mac_data(auth_safe: bytes, secret: bytes) -> asn1_pkcs12.MacData:
    salt = secrets.token_bytes(_SALT_BYTES)
    key = pkcs12_kdf("sha1", secret, salt, 3, WRITE_ITERATIONS, 20)
    return asn1_pkcs12.MacData(
        {
            "mac": {
                "digest_algorithm": {"algorithm": "sha1", "parameters": core.Null()},
                "digest": hmac.new(key, auth_safe, "sha1").digest(),
            },
            "mac_salt": salt,
            "iterations": WRITE_ITERATIONS,
        }
    )


register_backend(OzdstBackend())
