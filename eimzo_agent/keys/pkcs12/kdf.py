"""Passwords to key bytes: the PKCS#12 KDF (RFC 7292 Appendix B) and the password encodings readers expect.

`cryptography` has no public PKCS#12 KDF, yet the MAC and the PBES1 ciphers of every PKCS#12 file need it.
"""

from __future__ import annotations

import hashlib

from ..errors import KeyErrorKind, KeyStoreError

#: KDF iteration counts above this are refused: a hostile file must not hang the agent for minutes.
MAX_ITERATIONS = 1_000_000


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
    rather than from the two-byte terminator, so both must be accepted. Writers use the first.
    """
    bmp = password.encode("utf-16-be") + b"\x00\x00"
    return [bmp] if password else [bmp, b""]


def pbes2_passwords(password: str) -> list[bytes]:
    """UTF-8 (OpenSSL, Java's SunJCE) and the low byte of each UTF-16 unit (BouncyCastle); same for ASCII.

    Writers use the first.
    """
    utf8 = password.encode("utf-8")
    low_bytes = password.encode("utf-16-be")[1::2]
    return [utf8] if low_bytes == utf8 else [utf8, low_bytes]


def check_iterations(iterations: int, what: str) -> None:
    """UNSUPPORTED for an iteration count outside 1..MAX_ITERATIONS."""
    if not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise KeyStoreError(
            KeyErrorKind.UNSUPPORTED, f"{what} iteration count {iterations} is outside 1..{MAX_ITERATIONS}"
        )
