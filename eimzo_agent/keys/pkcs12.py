"""PKCS#12 (.pfx) key files: list aliases without the password, open them with precise errors, write them.

`cryptography` says "Invalid password or PKCS12 data" for every failure, but the person at the keyboard
needs to know whether the password was wrong, the file damaged or the algorithm unknown. So the structure is
parsed with asn1crypto, the MAC is verified here (RFC 7292 Appendix B), the key bags are decrypted here just
far enough to read their algorithm, and only then is the file handed to a backend that turns it into signers.

Backends make the store extensible: `CryptographyBackend` handles RSA and NIST EC keys; the national-algorithm
backend (O'zDSt keys that `cryptography` cannot parse) registers itself with `register_backend` and can reuse
the building blocks here (`parse_pfx`, `iter_safe_bags`, `decrypt_key_bag`, `decrypt_pbe`, `pkcs12_kdf`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from asn1crypto import algos, core
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.hazmat.primitives.serialization import pkcs12

from ..crypto.ozdst_keys import OzdstPrivateKey, OzdstSigner
from ..crypto.signer import CryptographySigner, Signer
from .alias import build_alias
from .errors import KeyErrorKind, KeyStoreError

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)

#: KDF iteration counts above this are refused: a hostile file must not hang the agent for minutes.
MAX_ITERATIONS = 1_000_000
_MAX_NESTING = 8  # nested SafeContents bags

_MAC_HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})
_KEY_BAG_IDS = frozenset({"key_bag", "pkcs8_shrouded_key_bag"})

OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
_EC_CURVES = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1", "1.3.132.0.35": "secp521r1"}
_EC_CURVE_NAMES = frozenset(_EC_CURVES.values())


# --------------------------------------------------------------------------------------------------
# Structure


def parse_pfx(data: bytes) -> asn1_pkcs12.Pfx:
    """Parse a PFX and walk its unencrypted part, so that later code meets no lazy-parsing surprises."""
    try:
        pfx = asn1_pkcs12.Pfx.load(bytes(data), strict=True)
        if pfx["version"].native != "v3":
            raise ValueError(f"PFX version {pfx['version'].native} (expected 3)")
        content_type = pfx["auth_safe"]["content_type"].native
        if content_type != "data":
            detail = f"PFX integrity mode {content_type} (only password mode is supported)"
            raise KeyStoreError(KeyErrorKind.UNSUPPORTED, detail)
        for bag in iter_safe_bags(pfx):
            _bag_attributes(bag)
    except _ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"not a well-formed PKCS#12 file: {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - guarded by _MAX_NESTING
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "PKCS#12 structure nested too deeply") from exc
    return pfx


def _auth_safe_bytes(pfx: asn1_pkcs12.Pfx) -> bytes:
    """The octets the MAC covers: the content of the authSafe `data` ContentInfo."""
    content = pfx["auth_safe"]["content"].native
    if not isinstance(content, bytes):
        raise ValueError("authSafe holds no data")
    return content


def has_mac(pfx: asn1_pkcs12.Pfx) -> bool:
    return not isinstance(pfx["mac_data"], core.Void)


def iter_safe_bags(pfx: asn1_pkcs12.Pfx, password: str | None = None) -> Iterator[asn1_pkcs12.SafeBag]:
    """Every bag of the file: unencrypted SafeContents always, encrypted ones only when `password` is given.

    Decrypting needs the password: a wrong one raises WRONG_PASSWORD (no MAC) or DAMAGED_FILE (the MAC
    accepted it, so the container itself is bad); an unknown cipher raises UNSUPPORTED.
    """
    for info in asn1_pkcs12.AuthenticatedSafe.load(_auth_safe_bytes(pfx)):
        kind = info["content_type"].native
        if kind == "data":
            yield from _flatten(asn1_pkcs12.SafeContents.load(info["content"].native), 0)
        elif kind == "encrypted_data" and password is not None:
            try:
                yield from _flatten(_decrypt_safe_contents(pfx, info["content"], password), 0)
            except _ASN1_ERRORS as exc:
                detail = f"malformed encrypted container: {exc}"
                raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail) from exc


def _flatten(contents: asn1_pkcs12.SafeContents, depth: int) -> Iterator[asn1_pkcs12.SafeBag]:
    if depth > _MAX_NESTING:
        raise ValueError("SafeContents nested too deeply")
    for bag in contents:
        if bag["bag_id"].native == "safe_contents":
            yield from _flatten(bag["bag_value"], depth + 1)
        else:
            yield bag


def _decrypt_safe_contents(pfx: asn1_pkcs12.Pfx, encrypted_data: core.Asn1Value,
                           password: str) -> asn1_pkcs12.SafeContents:
    content_info = encrypted_data["encrypted_content_info"]
    ciphertext = content_info["encrypted_content"].native or b""
    plain = decrypt_pbe(content_info["content_encryption_algorithm"], ciphertext, password,
                        accept=_is_safe_contents)
    if plain is None:
        raise _decryption_failed(pfx, "an encrypted certificate container")
    return asn1_pkcs12.SafeContents.load(plain)


def _is_safe_contents(plain: bytes) -> bool:
    try:
        contents = asn1_pkcs12.SafeContents.load(plain, strict=True)
        return all(isinstance(bag["bag_id"].native, str) for bag in contents)
    except _ASN1_ERRORS:
        return False


def _bag_attributes(bag: asn1_pkcs12.SafeBag) -> tuple[str | None, bytes | None]:
    """(friendlyName, localKeyId) of a bag, None where absent."""
    name: str | None = None
    key_id: bytes | None = None
    attributes = bag["bag_attributes"]
    if isinstance(attributes, core.Void):
        return None, None
    for attribute in attributes:
        kind, values = attribute["type"].native, attribute["values"]
        if not len(values):
            continue
        if kind == "friendly_name" and name is None:
            name = _first_text(values)
        elif kind == "local_key_id" and key_id is None:
            key_id = values[0].native
    return name, key_id


def _first_text(values: core.SetOf) -> str | None:
    """The first value of a friendlyName; some writers use UTF8String where RFC 7292 says BMPString."""
    try:
        return values[0].native
    except _ASN1_ERRORS:
        native = core.Asn1Value.load(values.contents).native
        return native if isinstance(native, str) else None


def _is_key_bag(bag: asn1_pkcs12.SafeBag) -> bool:
    return bag["bag_id"].native in _KEY_BAG_IDS


def _bag_certificate(bag: asn1_pkcs12.SafeBag) -> asn1_x509.Certificate | None:
    """The X.509 certificate of a certBag, None for other bags or unreadable certificates."""
    if bag["bag_id"].native != "cert_bag":
        return None
    try:
        value = bag["bag_value"]
        if value["cert_id"].native != "x509":
            return None
        cert = value["cert_value"].parsed
        cert["tbs_certificate"]["subject"].native  # noqa: B018 - force the lazy parse here, not later
        return cert
    except _ASN1_ERRORS:
        return None


# --------------------------------------------------------------------------------------------------
# Listing without a password


def list_aliases(data: bytes) -> list[str]:
    """Aliases of the key entries, read without the password (as E-IMZO's `list_all_certificates` does)."""
    pfx = parse_pfx(data)
    bags = list(iter_safe_bags(pfx))
    key_bags = [bag for bag in bags if _is_key_bag(bag)]
    certs = [(cert, _bag_attributes(bag)[1]) for bag in bags if (cert := _bag_certificate(bag)) is not None]
    return [_listed_alias(bag, certs, len(key_bags)) for bag in key_bags]


def _listed_alias(bag: asn1_pkcs12.SafeBag, certs: list[tuple[asn1_x509.Certificate, bytes | None]],
                  key_count: int) -> str:
    name, key_id = _bag_attributes(bag)
    if name is not None:
        return name.lower()
    cert = _certificate_for_key_bag(key_id, certs, key_count)
    if cert is None:
        return ""
    try:
        return build_alias(cert)
    except _ASN1_ERRORS:
        return ""


def _certificate_for_key_bag(key_id: bytes | None, certs: list[tuple[asn1_x509.Certificate, bytes | None]],
                             key_count: int) -> asn1_x509.Certificate | None:
    """The readable certificate of a key: by localKeyId, or the only end entity of a single-key file."""
    if key_id is not None:
        return next((cert for cert, cert_key_id in certs if cert_key_id == key_id), None)
    if key_count != 1:
        return None
    issuers = {cert.issuer.dump() for cert, _ in certs if cert.subject != cert.issuer}
    leaves = [cert for cert, _ in certs if cert.subject.dump() not in issuers]
    return leaves[0] if len(leaves) == 1 else None


# --------------------------------------------------------------------------------------------------
# MAC (RFC 7292 Appendix B)


def pkcs12_kdf(hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int,
               length: int) -> bytes:
    """RFC 7292 B.2 key derivation; `purpose` 1 = cipher key, 2 = IV, 3 = MAC key; `password` already BMP."""
    block = hashlib.new(hash_name).block_size
    salt_part = _repeat_to(salt, block * -(-len(salt) // block))
    password_part = _repeat_to(password, block * -(-len(password) // block))
    material = bytearray(salt_part + password_part)
    diversifier = bytes([purpose]) * block
    output = bytearray()
    while True:
        digest = hashlib.new(hash_name, diversifier + material).digest()
        for _ in range(iterations - 1):
            digest = hashlib.new(hash_name, digest).digest()
        output += digest
        if len(output) >= length:
            return bytes(output[:length])
        increment = int.from_bytes(_repeat_to(digest, block), "big") + 1
        for start in range(0, len(material), block):
            value = (int.from_bytes(material[start:start + block], "big") + increment) % (1 << (8 * block))
            material[start:start + block] = value.to_bytes(block, "big")


def _repeat_to(data: bytes, length: int) -> bytes:
    return (data * (length // len(data) + 1))[:length] if data else b""


def bmp_passwords(password: str) -> list[bytes]:
    """PKCS#12 password encodings to try: BMPString + 00 00; for "" also the empty byte string.

    OpenSSL and Windows derive the keys of "no password" files from an empty byte string (a NULL password)
    rather than from the two-byte terminator, so both must be accepted.
    """
    bmp = password.encode("utf-16-be") + b"\x00\x00"
    return [bmp] if password else [bmp, b""]


def verify_mac(pfx: asn1_pkcs12.Pfx, password: str) -> bool:
    """Check the file's MAC with `password`: True if it verified, False if the file has no MAC.

    Raises WRONG_PASSWORD on mismatch, UNSUPPORTED for a MAC algorithm we do not know (e.g. PBMAC1).
    """
    if not has_mac(pfx):
        return False
    try:
        mac_data = pfx["mac_data"]
        algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"]
        name, expected = algorithm.native, mac_data["mac"]["digest"].native
        salt, iterations = mac_data["mac_salt"].native, mac_data["iterations"].native
        content = _auth_safe_bytes(pfx)
    except _ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed MAC data: {exc}") from exc
    if name not in _MAC_HASHES:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"MAC algorithm {algorithm.dotted} is not supported")
    _check_iterations(iterations, "MAC")
    size = hashlib.new(name).digest_size
    for secret in bmp_passwords(password):
        key = pkcs12_kdf(name, secret, salt, 3, iterations, size)
        if hmac.compare_digest(hmac.new(key, content, name).digest(), expected):
            return True
    raise KeyStoreError(KeyErrorKind.WRONG_PASSWORD, f"the password does not match the file's MAC ({name})")


def _check_iterations(iterations: int, what: str) -> None:
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise KeyStoreError(
            KeyErrorKind.UNSUPPORTED, f"{what} iteration count {iterations} is outside 1..{MAX_ITERATIONS}"
        )


def _decryption_failed(pfx: asn1_pkcs12.Pfx, what: str) -> KeyStoreError:
    """The error for a bag that does not decrypt: damage if the MAC vouched for the password."""
    if has_mac(pfx):
        return KeyStoreError(
            KeyErrorKind.DAMAGED_FILE, f"{what} does not decrypt although the password passed the MAC check"
        )
    return KeyStoreError(
        KeyErrorKind.WRONG_PASSWORD, f"{what} does not decrypt with this password (the file has no MAC)"
    )


# --------------------------------------------------------------------------------------------------
# Password-based decryption (PKCS#12 PBE and PBES2)

# oid -> (cipher, key bytes, RC2 effective key bits)
_PKCS12_PBE = {
    "1.2.840.113549.1.12.1.3": ("3des", 24, 0),
    "1.2.840.113549.1.12.1.4": ("3des", 16, 0),
    "1.2.840.113549.1.12.1.5": ("rc2", 16, 128),
    "1.2.840.113549.1.12.1.6": ("rc2", 5, 40),
}
_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_PBKDF2_PRFS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.113549.2.7": hashes.SHA1,
    "1.2.840.113549.2.8": hashes.SHA224,
    "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384,
    "1.2.840.113549.2.11": hashes.SHA512,
}
# oid -> (cipher, key bytes)
_PBES2_CIPHERS = {
    "2.16.840.1.101.3.4.1.2": ("aes", 16),
    "2.16.840.1.101.3.4.1.22": ("aes", 24),
    "2.16.840.1.101.3.4.1.42": ("aes", 32),
    "1.2.840.113549.3.7": ("3des", 24),
}


@dataclass(frozen=True)
class _Pbe:
    """One way to turn a password into (key, IV) for a cipher."""

    cipher: str
    key_size: int
    rc2_bits: int
    derive: Callable[[bytes], tuple[bytes, bytes]]
    passwords: list[bytes]


def decrypt_pbe(algorithm: algos.EncryptionAlgorithm, ciphertext: bytes, password: str,
                accept: Callable[[bytes], bool] = lambda _plain: True) -> bytes | None:
    """Decrypt password-based encrypted data; None if no password encoding gives an acceptable plaintext.

    `accept` tells a right plaintext from one whose padding checked out by luck (1 in 256 for a wrong key).
    Raises UNSUPPORTED for an encryption scheme we do not implement, DAMAGED_FILE for malformed parameters.
    """
    pbe = _pbe_scheme(algorithm, password)
    for secret in pbe.passwords:
        key, iv = pbe.derive(secret)
        plain = _cbc_decrypt(pbe.cipher, key, iv, ciphertext, pbe.rc2_bits)
        if plain is not None and accept(plain):
            return plain
    return None


def _pbe_scheme(algorithm: algos.EncryptionAlgorithm, password: str) -> _Pbe:
    try:
        oid = algorithm["algorithm"].dotted
        if oid in _PKCS12_PBE:
            return _pkcs12_pbe(oid, algorithm["parameters"], password)
        if oid == _OID_PBES2:
            return _pbes2(algorithm["parameters"], password)
    except _ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed encryption parameters: {exc}") from exc
    raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"encryption algorithm {oid} is not supported")


def _pkcs12_pbe(oid: str, params: core.Asn1Value, password: str) -> _Pbe:
    cipher, key_size, rc2_bits = _PKCS12_PBE[oid]
    salt, iterations = params["salt"].native, params["iterations"].native
    _check_iterations(iterations, "key derivation")

    def derive(secret: bytes) -> tuple[bytes, bytes]:
        return (pkcs12_kdf("sha1", secret, salt, 1, iterations, key_size),
                pkcs12_kdf("sha1", secret, salt, 2, iterations, 8))

    return _Pbe(cipher, key_size, rc2_bits, derive, bmp_passwords(password))


def _pbes2(params: core.Asn1Value, password: str) -> _Pbe:
    kdf, scheme = params["key_derivation_func"], params["encryption_scheme"]
    if kdf["algorithm"].dotted != _OID_PBKDF2:
        detail = f"key derivation {kdf['algorithm'].dotted} is not supported"
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, detail)
    kdf_params, scheme_oid = kdf["parameters"], scheme["algorithm"].dotted
    prf_oid = kdf_params["prf"]["algorithm"].dotted
    if scheme_oid not in _PBES2_CIPHERS:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"PBES2 cipher {scheme_oid} is not supported")
    if prf_oid not in _PBKDF2_PRFS:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"PBKDF2 PRF {prf_oid} is not supported")
    cipher, key_size = _PBES2_CIPHERS[scheme_oid]
    salt, iterations = kdf_params["salt"].native, kdf_params["iteration_count"].native
    iv = scheme["parameters"].native
    _check_iterations(iterations, "key derivation")
    prf = _PBKDF2_PRFS[prf_oid]

    def derive(secret: bytes) -> tuple[bytes, bytes]:
        return PBKDF2HMAC(prf(), key_size, salt, iterations).derive(secret), iv

    return _Pbe(cipher, key_size, 0, derive, _pbes2_passwords(password))


def _pbes2_passwords(password: str) -> list[bytes]:
    """UTF-8 (OpenSSL, Java's SunJCE) and the low byte of each UTF-16 unit (BouncyCastle); same for ASCII."""
    utf8 = password.encode("utf-8")
    low_bytes = password.encode("utf-16-be")[1::2]
    return [utf8] if low_bytes == utf8 else [utf8, low_bytes]


def _cbc_decrypt(cipher: str, key: bytes, iv: bytes, data: bytes, rc2_bits: int) -> bytes | None:
    """CBC-decrypt and strip PKCS#7 padding; None if the length or padding is wrong (wrong key, mostly)."""
    block = 16 if cipher == "aes" else 8
    if not data or len(data) % block or len(iv) != block:
        return None
    if cipher == "rc2":
        padded = _rc2_cbc_decrypt(key, rc2_bits, iv, data)
    else:
        algorithm = algorithms.AES(key) if cipher == "aes" else TripleDES(key)
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
    unpadder = PKCS7(block * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


# RC2 (RFC 2268), needed because certificates in BouncyCastle and `openssl -legacy` files are encrypted
# with 40-bit RC2, which neither `cryptography` nor a default OpenSSL 3 provides. Decryption only, speed
# irrelevant.
_RC2_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
_RC2_SHIFTS = (1, 2, 3, 5)


def _rc2_key_schedule(key: bytes, effective_bits: int) -> list[int]:
    """The 64 16-bit key words of RFC 2268 §2."""
    size = len(key)
    effective_bytes = (effective_bits + 7) // 8
    mask = 0xFF % (1 << (8 + effective_bits - 8 * effective_bytes))
    expanded = bytearray(128)
    expanded[:size] = key
    for i in range(size, 128):
        expanded[i] = _RC2_PITABLE[(expanded[i - 1] + expanded[i - size]) & 0xFF]
    expanded[128 - effective_bytes] = _RC2_PITABLE[expanded[128 - effective_bytes] & mask]
    for i in range(127 - effective_bytes, -1, -1):
        expanded[i] = _RC2_PITABLE[expanded[i + 1] ^ expanded[i + effective_bytes]]
    return list(struct.unpack("<64H", expanded))


def _rc2_decrypt_block(words: list[int], block: bytes) -> bytes:
    """RFC 2268 §4: five r-mixing rounds, r-mashing, six r-mixing, r-mashing, five r-mixing, all reversed."""
    r = list(struct.unpack("<4H", block))
    j = 63
    for rounds in (5, 0, 6, 0, 5):
        if rounds == 0:
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - words[r[i - 1] & 63]) & 0xFFFF
            continue
        for _ in range(rounds):
            for i in (3, 2, 1, 0):
                shift = _RC2_SHIFTS[i]
                r[i] = ((r[i] >> shift) | (r[i] << (16 - shift))) & 0xFFFF
                r[i] = (r[i] - words[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
                j -= 1
    return struct.pack("<4H", *r)


def _rc2_cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    words = _rc2_key_schedule(key, effective_bits)
    out = bytearray()
    previous = iv
    for start in range(0, len(data), 8):
        block = data[start:start + 8]
        out += bytes(a ^ b for a, b in zip(_rc2_decrypt_block(words, block), previous, strict=True))
        previous = block
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Key bags


@dataclass(frozen=True)
class KeyAlgorithm:
    """The algorithm of a PKCS#8 key: its OID and, when the parameters are a bare OID, that OID (EC curve)."""

    oid: str
    parameter: str | None = None

    def describe(self) -> str:
        return f"{self.oid} ({self.parameter})" if self.parameter else self.oid


def pkcs8_algorithm(der: bytes) -> KeyAlgorithm:
    """Read a PKCS#8 key's algorithm generically (national OIDs break asn1crypto's keys module)."""
    info = core.Sequence.load(der, strict=True)
    if len(info) < 3 or not isinstance(info[0], core.Integer) or info[0].native not in (0, 1):
        raise ValueError("not a PKCS#8 PrivateKeyInfo")
    identifier = info[1]
    if not isinstance(identifier, core.Sequence) or not isinstance(identifier[0], core.ObjectIdentifier):
        raise ValueError("PKCS#8 algorithm identifier is malformed")
    parameter = identifier[1] if len(identifier) > 1 else None
    return KeyAlgorithm(
        identifier[0].dotted, parameter.dotted if isinstance(parameter, core.ObjectIdentifier) else None
    )


def _is_pkcs8(plain: bytes) -> bool:
    try:
        pkcs8_algorithm(plain)
    except _ASN1_ERRORS:
        return False
    return True


def decrypt_key_bag(pfx: asn1_pkcs12.Pfx, bag: asn1_pkcs12.SafeBag, password: str) -> bytes:
    """The PKCS#8 DER of a keyBag or pkcs8ShroudedKeyBag; precise KeyStoreError when it cannot be had."""
    try:
        value = bag["bag_value"]
        if bag["bag_id"].native == "key_bag":
            return value.untag().dump()
        algorithm, ciphertext = value["encryption_algorithm"], value["encrypted_data"].native
    except _ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed key bag: {exc}") from exc
    plain = decrypt_pbe(algorithm, ciphertext, password, accept=_is_pkcs8)
    if plain is None:
        raise _decryption_failed(pfx, "the private key")
    return plain


def key_algorithms(pfx: asn1_pkcs12.Pfx, password: str) -> list[KeyAlgorithm | None]:
    """The algorithm of every key bag (None where the bag's cipher is unknown to us).

    Key bags normally sit in unencrypted SafeContents; encrypted ones are opened only when no key was found.
    """
    bags = [bag for bag in iter_safe_bags(pfx) if _is_key_bag(bag)]
    if not bags:
        bags = [bag for bag in iter_safe_bags(pfx, password) if _is_key_bag(bag)]
    found: list[KeyAlgorithm | None] = []
    for bag in bags:
        try:
            found.append(pkcs8_algorithm(decrypt_key_bag(pfx, bag, password)))
        except KeyStoreError as exc:
            if exc.kind is not KeyErrorKind.UNSUPPORTED:
                raise
            found.append(None)
    return found


def key_bag_names(pfx: asn1_pkcs12.Pfx) -> list[str | None]:
    """friendlyName of each key bag in unencrypted SafeContents, None where absent."""
    return [_bag_attributes(bag)[0] for bag in iter_safe_bags(pfx) if _is_key_bag(bag)]


# --------------------------------------------------------------------------------------------------
# Opening with a password


@dataclass(frozen=True)
class UnlockedKey:
    """A decrypted key entry: its alias, a signer, and the certificates that go with it."""

    alias: str
    signer: Signer
    certificate: asn1_x509.Certificate
    #: Other certificates of the file in issuer order (the end entity's issuer first), end entity excluded.
    chain: tuple[asn1_x509.Certificate, ...]


class PfxBackend(Protocol):
    """Turns a PFX whose MAC already verified into key entries, for the key algorithms it knows.

    `open` returns None when the file's keys are not of its algorithms ("not mine": the next backend tries),
    a list (possibly empty) of entries otherwise, and raises KeyStoreError for everything else. Signers
    that are not `CryptographySigner` should offer `matches_certificate() -> bool` for the KEY_MISMATCH
    check.
    """

    name: str

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None: ...


class CryptographyBackend:
    """RSA and NIST EC (P-256/384/521) keys through `cryptography`'s PKCS#12 loader (3DES, RC2, PBES2/AES)."""

    name = "cryptography"

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None:
        pfx = parse_pfx(data)
        unsupported: KeyStoreError | None = None
        try:
            found = key_algorithms(pfx, password)
        except KeyStoreError as exc:
            if exc.kind is not KeyErrorKind.UNSUPPORTED:
                raise
            found, unsupported = [], exc
        if any(algorithm is not None and not _loadable(algorithm) for algorithm in found):
            return None
        loaded = self._load(pfx, data, password, unsupported)
        if loaded is None:
            return None  # a cipher neither we nor cryptography know: perhaps another backend does
        if loaded.key is None:
            if found:
                raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "the key bag did not yield a private key")
            return []
        if not _usable_key(loaded.key):
            return None
        return [self._entry(pfx, loaded)]

    @staticmethod
    def _load(pfx: asn1_pkcs12.Pfx, data: bytes, password: str,
              unsupported: KeyStoreError | None) -> pkcs12.PKCS12KeyAndCertificates | None:
        # cryptography hands b"" and None (NULL) to OpenSSL differently; "no password" files use either.
        attempts: list[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
        error: Exception | None = None
        for attempt in attempts:
            try:
                return pkcs12.load_pkcs12(data, attempt)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                error = exc
        if unsupported is not None:
            return None
        if not has_mac(pfx):
            # Nothing vouched for the password yet: decrypting every container ourselves tells a wrong
            # password (raises WRONG_PASSWORD) from a file that cryptography cannot parse.
            for _bag in iter_safe_bags(pfx, password):
                pass
        reason = f"{type(error).__name__}: {error}"
        detail = f"the password is right, but cryptography cannot load the file ({reason})"
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail)

    @staticmethod
    def _entry(pfx: asn1_pkcs12.Pfx, loaded: pkcs12.PKCS12KeyAndCertificates) -> UnlockedKey:
        key = loaded.key
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        others = [item.certificate for item in loaded.additional_certs]
        if loaded.cert is not None:
            cert, name = loaded.cert.certificate, loaded.cert.friendly_name
        else:
            # No certificate paired with the key: take one whose public key is the key's, if any.
            cert = next((c for c in others if _same_public_key(key, c)), None)
            if cert is None:
                detail = "no certificate in the file belongs to the key"
                raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, detail)
            others, name = [c for c in others if c is not cert], None
        asn1_cert = _to_asn1(cert)
        chain = tuple(_to_asn1(c) for c in issuer_order(cert, others))
        alias = _entry_alias(pfx, name, asn1_cert)
        return UnlockedKey(alias, CryptographySigner(key, asn1_cert, chain), asn1_cert, chain)


def _entry_alias(pfx: asn1_pkcs12.Pfx, cert_name: bytes | None, cert: asn1_x509.Certificate) -> str:
    """What `list_aliases` shows for the key: its bag's friendlyName, else E-IMZO's alias of its certificate.

    (`list_aliases` shows "" when that certificate is encrypted; `open_pfx` then picks the file's only key.)
    """
    names = key_bag_names(pfx)
    if len(names) == 1:
        return names[0].lower() if names[0] is not None else build_alias(cert)
    if cert_name:
        return cert_name.decode("utf-8", "replace").lower()
    return build_alias(cert)


def _loadable(algorithm: KeyAlgorithm) -> bool:
    if algorithm.oid == OID_RSA:
        return True
    # EC parameters other than a named curve (explicit, or implicit in SEC1) are judged after loading.
    return algorithm.oid == OID_EC and (algorithm.parameter is None or algorithm.parameter in _EC_CURVES)


def _usable_key(key: object) -> bool:
    if isinstance(key, rsa.RSAPrivateKey):
        return True
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_CURVE_NAMES


_BACKENDS: list[PfxBackend] = [CryptographyBackend()]


def register_backend(backend: PfxBackend, *, first: bool = False) -> None:
    """Add a backend (first: tried before the others); one with the same name is replaced."""
    unregister_backend(backend.name)
    if first:
        _BACKENDS.insert(0, backend)
    else:
        _BACKENDS.append(backend)


def unregister_backend(name: str) -> None:
    _BACKENDS[:] = [backend for backend in _BACKENDS if backend.name != name]


def open_pfx(data: bytes, password: str, alias: str | None = None) -> UnlockedKey:
    """Decrypt the key entry `alias` (None or "": the only one) with `password`.

    Checks, each with its own error kind: structure (DAMAGED_FILE), MAC (WRONG_PASSWORD / UNSUPPORTED),
    key algorithm (UNSUPPORTED), alias (ALIAS_NOT_FOUND), key belongs to the certificate (KEY_MISMATCH).
    """
    entry = _select(_open_entries(data, password), alias)
    _check_key_matches(entry)
    return entry


def _open_entries(data: bytes, password: str) -> list[UnlockedKey]:
    pfx = parse_pfx(data)
    verify_mac(pfx, password)
    for backend in list(_BACKENDS):
        entries = backend.open(data, password)
        if entries is not None:
            return entries
    raise KeyStoreError(KeyErrorKind.UNSUPPORTED, _unsupported_detail(pfx, password))


def _unsupported_detail(pfx: asn1_pkcs12.Pfx, password: str) -> str:
    try:
        found = key_algorithms(pfx, password)
    except KeyStoreError as exc:
        return exc.detail
    names = sorted({algorithm.describe() for algorithm in found if algorithm is not None})
    return f"key algorithm {', '.join(names) or 'unknown'} is not supported"


def _select(entries: list[UnlockedKey], alias: str | None) -> UnlockedKey:
    wanted = (alias or "").lower()
    if not entries:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, "the file holds no private key")
    match = next((entry for entry in entries if entry.alias.lower() == wanted), None)
    if match is not None:
        return match
    if not wanted and len(entries) == 1:
        return entries[0]
    if not wanted:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, f"the file holds {len(entries)} keys; name one")
    raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, f"no key with alias {alias!r} in the file")


def _check_key_matches(entry: UnlockedKey) -> None:
    signer = entry.signer
    if isinstance(signer, CryptographySigner):
        try:
            certificate = x509.load_der_x509_certificate(entry.certificate.dump())
            matches = _same_public_key(signer.private_key, certificate)
        except (ValueError, UnsupportedAlgorithm):
            matches = False
    else:
        check = getattr(signer, "matches_certificate", None)
        matches = bool(check()) if callable(check) else True
    if not matches:
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")


# --------------------------------------------------------------------------------------------------
# Certificates


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _certificate_der(cert: x509.Certificate | asn1_x509.Certificate) -> bytes:
    if isinstance(cert, asn1_x509.Certificate):
        return cert.dump()
    return cert.public_bytes(serialization.Encoding.DER)


def _to_cryptography(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _same_public_key(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
                     cert: x509.Certificate) -> bool:
    try:
        return _public_der(private_key.public_key()) == _public_der(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


def issuer_order(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """`others` in issuer order (leaf's issuer, its issuer, ...), unrelated ones after; leaf dropped."""
    remaining = [cert for cert in others if cert != leaf]
    chain: list[x509.Certificate] = []
    current = leaf
    while current.subject != current.issuer:
        issuer = next((cert for cert in remaining if cert.subject == current.issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return chain + remaining


# --------------------------------------------------------------------------------------------------
# Writing


def serialize_pfx(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | OzdstPrivateKey,
                  certificate: x509.Certificate | asn1_x509.Certificate,
                  chain: Sequence[x509.Certificate | asn1_x509.Certificate], password: str, alias: str) -> bytes:
    """A PFX the vendor's Java 8 agent can open: 3DES-encrypted bags, SHA-1 MAC, friendlyName = alias.

    PFX files written by Java ≥ 17 defaults (PBES2/AES, HMAC-SHA256) do not open in Java 8, the Windows
    E-IMZO or the mobile app, so new files use the legacy algorithms. O'zDSt keys, which `cryptography` cannot
    write, go through the national backend's writer (same layout, E-IMZO's PKCS#8 key encoding).
    """
    if isinstance(private_key, OzdstPrivateKey):
        return ozdst_backend.serialize_ozdst_pfx(
            private_key, _certificate_der(certificate), [_certificate_der(cert) for cert in chain], password, alias
        )
    if not password:
        raise ValueError("a key file needs a non-empty password")
    if not _same_public_key(private_key, certificate):
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - the PKCS#12 MAC Java 8 understands
        .build(password.encode("utf-8"))
    )
    name = alias.lower().encode("utf-8") or None
    cas = list(chain) or None
    return pkcs12.serialize_key_and_certificates(name, private_key, certificate, cas, encryption)


def change_pfx_password(data: bytes, old_password: str, new_password: str) -> bytes:
    """The key entry, alias and chain re-written under `new_password` (legacy format, as `serialize_pfx`)."""
    entries = _open_entries(data, old_password)
    if not entries:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, "the file holds no private key")
    if len(entries) > 1:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"re-writing a file with {len(entries)} keys")
    entry = entries[0]
    _check_key_matches(entry)
    if isinstance(entry.signer, OzdstSigner):
        return serialize_pfx(entry.signer.private_key, entry.certificate, entry.chain, new_password, entry.alias)
    if not isinstance(entry.signer, CryptographySigner):
        raise KeyStoreError(
            KeyErrorKind.UNSUPPORTED, f"re-writing {type(entry.signer).__name__} keys is not supported"
        )
    return serialize_pfx(
        entry.signer.private_key,
        _to_cryptography(entry.certificate),
        [_to_cryptography(cert) for cert in entry.chain],
        new_password,
        entry.alias,
    )


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: a crash leaves the old file or the new one, never half of each.

    The original's permission bits are kept (a new file gets 0600). On failure the original is untouched and
    the temporary file removed.
    """
    path = Path(path)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot read {path}: {exc}") from exc
    temp_name: str | None = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except OSError as exc:
        if temp_name is not None:
            with suppress(OSError):
                os.unlink(temp_name)
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot write {path}: {exc}") from exc
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open directories, and needs no such step."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# The O'zDSt backend is built from the functions above: importing it last registers it after the cryptography
# backend, so RSA/EC files never reach it (and `serialize_pfx` can hand O'zDSt keys to its writer).
from . import ozdst_backend  # noqa: E402
