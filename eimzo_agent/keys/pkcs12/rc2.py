"""RC2 decryption with a reduced effective key size (RFC 2268), for 40-bit RC2 containers.

BouncyCastle (hence E-IMZO's Java agent) and `openssl pkcs12 -legacy` encrypt certificates with
pbeWithSHAAnd40BitRC2-CBC. `cryptography`'s RC2 (`hazmat.decrepit`, used for 128-bit RC2) fixes the effective key
size at 128 bits and has no way to set it, and RC2 with 40 effective bits cannot be expressed as a 128-bit key, so
this reduced form stays here. Decryption only, and only for old files; speed is irrelevant.
"""

from __future__ import annotations

import struct

_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
_SHIFTS = (1, 2, 3, 5)
BLOCK_SIZE = 8


def key_schedule(key: bytes, effective_bits: int) -> list[int]:
    """The 64 16-bit key words of RFC 2268 §2."""
    if not 1 <= len(key) <= 128 or not 1 <= effective_bits <= 1024:
        raise ValueError("RC2 key of 1..128 bytes and 1..1024 effective bits expected")
    size = len(key)
    effective_bytes = (effective_bits + 7) // 8
    mask = 0xFF % (1 << (8 + effective_bits - 8 * effective_bytes))
    expanded = bytearray(128)
    expanded[:size] = key
    for i in range(size, 128):
        expanded[i] = _PITABLE[(expanded[i - 1] + expanded[i - size]) & 0xFF]
    expanded[128 - effective_bytes] = _PITABLE[expanded[128 - effective_bytes] & mask]
    for i in range(127 - effective_bytes, -1, -1):
        expanded[i] = _PITABLE[expanded[i + 1] ^ expanded[i + effective_bytes]]
    return list(struct.unpack("<64H", expanded))


def decrypt_block(words: list[int], block: bytes) -> bytes:
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
                shift = _SHIFTS[i]
                r[i] = ((r[i] >> shift) | (r[i] << (16 - shift))) & 0xFFFF
                r[i] = (r[i] - words[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
                j -= 1
    return struct.pack("<4H", *r)


def cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """CBC-decrypt whole blocks (padding is the caller's business)."""
    if len(iv) != BLOCK_SIZE or len(data) % BLOCK_SIZE:
        raise ValueError("RC2-CBC needs an 8-byte IV and whole 8-byte blocks")
    words = key_schedule(key, effective_bits)
    out = bytearray()
    previous = iv
    for start in range(0, len(data), BLOCK_SIZE):
        block = data[start:start + BLOCK_SIZE]
        out += bytes(a ^ b for a, b in zip(decrypt_block(words, block), previous, strict=True))
        previous = block
    return bytes(out)
