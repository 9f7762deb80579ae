"""Password-based encryption of PKCS#12 contents: PKCS#12 PBE (RFC 7292 Appendix C) and PBES2 (RFC 8018).

Decryption covers what real files use (3DES, RC2-40/128, PBES2 with AES or 3DES); encryption covers what this
agent writes (3-key 3DES PBE, PBES2 with AES or 3DES), each with a fresh salt and IV. The ciphers are
`cryptography`'s, except RC2 with 40 effective bits (see `rc2`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asn1crypto import algos, core

from ...lazy_module import lazy_module
from ..errors import KeyErrorKind, KeyStoreError
from . import rc2
from .asn1 import ASN1_ERRORS
from .kdf import bmp_passwords, check_iterations, pbes2_passwords, pkcs12_kdf

if TYPE_CHECKING:
    from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
    from cryptography.hazmat.primitives import ciphers, hashes, padding
    from cryptography.hazmat.primitives.ciphers import algorithms, modes
    from cryptography.hazmat.primitives.kdf import pbkdf2
else:  # imported when a key bag is first decrypted or encrypted (see lazy_module)
    decrepit = lazy_module("cryptography.hazmat.decrepit.ciphers.algorithms")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    padding = lazy_module("cryptography.hazmat.primitives.padding")
    algorithms = lazy_module("cryptography.hazmat.primitives.ciphers.algorithms")
    ciphers = lazy_module("cryptography.hazmat.primitives.ciphers")
    modes = lazy_module("cryptography.hazmat.primitives.ciphers.modes")
    pbkdf2 = lazy_module("cryptography.hazmat.primitives.kdf.pbkdf2")

OID_PBE_3DES = "1.2.840.113549.1.12.1.3"  # pbeWithSHAAnd3-KeyTripleDES-CBC
OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_HMAC_SHA1 = "1.2.840.113549.2.7"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"

# oid -> (cipher, key bytes, RC2 effective key bits)
PKCS12_PBE = {
    OID_PBE_3DES: ("3des", 24, 0),
    "1.2.840.113549.1.12.1.4": ("3des", 16, 0),  # 2-key 3DES
    "1.2.840.113549.1.12.1.5": ("rc2", 16, 128),
    "1.2.840.113549.1.12.1.6": ("rc2", 5, 40),
}
# oid -> the PRF's hash, as the name of its class in cryptography's `hashes`
PBKDF2_PRFS: dict[str, str] = {
    OID_HMAC_SHA1: "SHA1",
    "1.2.840.113549.2.8": "SHA224",
    OID_HMAC_SHA256: "SHA256",
    "1.2.840.113549.2.10": "SHA384",
    "1.2.840.113549.2.11": "SHA512",
}
# oid -> (cipher, key bytes)
PBES2_CIPHERS = {
    "2.16.840.1.101.3.4.1.2": ("aes", 16),
    "2.16.840.1.101.3.4.1.22": ("aes", 24),
    OID_AES256_CBC: ("aes", 32),
    "1.2.840.113549.3.7": ("3des", 24),
}


@dataclass(frozen=True)
class PbeScheme:
    """How a password encrypts one part of a file: a PKCS#12 PBE, or PBES2 with PBKDF2 (`prf`, `cipher` set)."""

    oid: str
    iterations: int
    salt_size: int
    prf: str | None = None
    cipher: str | None = None


def scheme_of(algorithm: algos.EncryptionAlgorithm) -> PbeScheme:
    """The scheme of an existing AlgorithmIdentifier; UNSUPPORTED / DAMAGED_FILE as for decryption."""
    try:
        oid = algorithm["algorithm"].dotted
        params = algorithm["parameters"]
        if oid in PKCS12_PBE:
            return PbeScheme(oid, params["iterations"].native, len(params["salt"].native))
        if oid == OID_PBES2:
            kdf, scheme = params["key_derivation_func"], params["encryption_scheme"]
            _check_pbes2(kdf, scheme)
            kdf_params = kdf["parameters"]
            return PbeScheme(oid, kdf_params["iteration_count"].native, len(_pbkdf2_salt(kdf_params)),
                             kdf_params["prf"]["algorithm"].dotted, scheme["algorithm"].dotted)
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed encryption parameters: {exc}") from exc
    raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"encryption algorithm {oid} is not supported")


# --------------------------------------------------------------------------------------------------
# Decryption


@dataclass(frozen=True)
class _Pbe:
    """One way to turn a password into (key, IV) for a cipher."""

    cipher: str
    rc2_bits: int
    derive: Callable[[bytes], tuple[bytes, bytes]]
    passwords: list[bytes]


def decrypt_pbe(algorithm: algos.EncryptionAlgorithm, ciphertext: bytes, password: str,
                accept: Callable[[bytes], bool] = lambda _plain: True) -> bytes | None:
    """Decrypt password-based encrypted data; None if no password encoding gives an acceptable plaintext.

    `accept` tells a right plaintext from one whose padding checked out by luck (1 in 256 for a wrong key).
    Raises UNSUPPORTED for an encryption scheme we do not implement, DAMAGED_FILE for malformed parameters.
    """
    pbe = _decryption(algorithm, password)
    for secret in pbe.passwords:
        key, iv = pbe.derive(secret)
        plain = _cbc_decrypt(pbe.cipher, key, iv, ciphertext, pbe.rc2_bits)
        if plain is not None and accept(plain):
            return plain
    return None


def _decryption(algorithm: algos.EncryptionAlgorithm, password: str) -> _Pbe:
    try:
        oid = algorithm["algorithm"].dotted
        if oid in PKCS12_PBE:
            return _pkcs12_pbe(oid, algorithm["parameters"], password)
        if oid == OID_PBES2:
            return _pbes2(algorithm["parameters"], password)
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed encryption parameters: {exc}") from exc
    raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"encryption algorithm {oid} is not supported")


def _pkcs12_pbe(oid: str, params: core.Asn1Value, password: str) -> _Pbe:
    cipher, key_size, rc2_bits = PKCS12_PBE[oid]
    salt, iterations = params["salt"].native, params["iterations"].native
    check_iterations(iterations, "key derivation")

    def derive(secret: bytes) -> tuple[bytes, bytes]:
        return (pkcs12_kdf("sha1", secret, salt, 1, iterations, key_size),
                pkcs12_kdf("sha1", secret, salt, 2, iterations, 8))

    return _Pbe(cipher, rc2_bits, derive, bmp_passwords(password))


def _check_pbes2(kdf: core.Asn1Value, scheme: core.Asn1Value) -> None:
    if kdf["algorithm"].dotted != OID_PBKDF2:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"key derivation {kdf['algorithm'].dotted} is not supported")
    if scheme["algorithm"].dotted not in PBES2_CIPHERS:
        detail = f"PBES2 cipher {scheme['algorithm'].dotted} is not supported"
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, detail)
    prf_oid = kdf["parameters"]["prf"]["algorithm"].dotted
    if prf_oid not in PBKDF2_PRFS:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"PBKDF2 PRF {prf_oid} is not supported")


def _pbkdf2_salt(kdf_params: core.Asn1Value) -> bytes:
    salt = kdf_params["salt"].native
    if not isinstance(salt, bytes):  # the `otherSource` alternative, which RFC 8018 reserves for future use
        raise ValueError("PBKDF2 salt is not an OCTET STRING")
    return salt


def _pbes2(params: core.Asn1Value, password: str) -> _Pbe:
    kdf, scheme = params["key_derivation_func"], params["encryption_scheme"]
    _check_pbes2(kdf, scheme)
    kdf_params = kdf["parameters"]
    cipher, key_size = PBES2_CIPHERS[scheme["algorithm"].dotted]
    prf = _prf_hash(kdf_params["prf"]["algorithm"].dotted)
    salt, iterations = _pbkdf2_salt(kdf_params), kdf_params["iteration_count"].native
    iv = scheme["parameters"].native
    check_iterations(iterations, "key derivation")

    def derive(secret: bytes) -> tuple[bytes, bytes]:
        return pbkdf2.PBKDF2HMAC(prf, key_size, salt, iterations).derive(secret), iv

    return _Pbe(cipher, 0, derive, pbes2_passwords(password))


def _prf_hash(oid: str) -> hashes.HashAlgorithm:
    """A new hash object for PBKDF2's PRF `oid` (one of PBKDF2_PRFS)."""
    hash_class: type[hashes.HashAlgorithm] = getattr(hashes, PBKDF2_PRFS[oid])
    return hash_class()


def _cbc_decrypt(cipher: str, key: bytes, iv: bytes, data: bytes, rc2_bits: int) -> bytes | None:
    """CBC-decrypt and strip PKCS#7 padding; None if the length or padding is wrong (wrong key, mostly)."""
    block = 16 if cipher == "aes" else 8
    if not data or len(data) % block or not isinstance(iv, bytes) or len(iv) != block:
        return None
    if cipher == "rc2" and rc2_bits != 128:
        padded = rc2.cbc_decrypt(key, rc2_bits, iv, data)
    else:
        decryptor = ciphers.Cipher(_block_cipher(cipher, key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(block * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _block_cipher(cipher: str, key: bytes) -> algorithms.AES | decrepit.TripleDES | decrepit.RC2:
    if cipher == "aes":
        return algorithms.AES(key)
    if cipher == "rc2":
        return decrepit.RC2(key)  # 128-bit key, 128 effective bits: the only RC2 `cryptography` offers
    return decrepit.TripleDES(key)


# --------------------------------------------------------------------------------------------------
# Encryption


def encrypt_pbe(scheme: PbeScheme, plain: bytes, password: str) -> tuple[algos.EncryptionAlgorithm, bytes]:
    """Encrypt `plain` under `scheme` with a fresh salt (and IV); the AlgorithmIdentifier and the ciphertext.

    Writes 3-key 3DES PKCS#12 PBE or PBES2 (PBKDF2 with any PRF above, AES or 3DES); ValueError for others.
    """
    check_iterations(scheme.iterations, "key derivation")
    salt = secrets.token_bytes(scheme.salt_size)
    if scheme.oid == OID_PBE_3DES:
        secret = bmp_passwords(password)[0]
        key = pkcs12_kdf("sha1", secret, salt, 1, scheme.iterations, 24)
        iv = pkcs12_kdf("sha1", secret, salt, 2, scheme.iterations, 8)
        algorithm = algos.EncryptionAlgorithm(
            {"algorithm": scheme.oid, "parameters": {"salt": salt, "iterations": scheme.iterations}}
        )
        return algorithm, _cbc_encrypt("3des", key, iv, plain)
    if scheme.oid == OID_PBES2 and scheme.prf in PBKDF2_PRFS and scheme.cipher in PBES2_CIPHERS:
        cipher, key_size = PBES2_CIPHERS[scheme.cipher]
        iv = secrets.token_bytes(16 if cipher == "aes" else 8)
        key = pbkdf2.PBKDF2HMAC(_prf_hash(scheme.prf), key_size, salt, scheme.iterations).derive(
            pbes2_passwords(password)[0]
        )
        kdf_params: dict[str, object] = {
            "salt": algos.Pbkdf2Salt(name="specified", value=salt),
            "iteration_count": scheme.iterations,
        }
        if scheme.prf != OID_HMAC_SHA1:  # the DEFAULT, which DER leaves out
            kdf_params["prf"] = {"algorithm": scheme.prf, "parameters": core.Null()}
        algorithm = algos.EncryptionAlgorithm({
            "algorithm": OID_PBES2,
            "parameters": {
                "key_derivation_func": {"algorithm": OID_PBKDF2, "parameters": kdf_params},
                "encryption_scheme": {"algorithm": scheme.cipher, "parameters": iv},
            },
        })
        return algorithm, _cbc_encrypt(cipher, key, iv, plain)
    raise ValueError(f"cannot encrypt with {scheme}")


def _cbc_encrypt(cipher: str, key: bytes, iv: bytes, plain: bytes) -> bytes:
    padder = padding.PKCS7(len(iv) * 8).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = ciphers.Cipher(_block_cipher(cipher, key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()
