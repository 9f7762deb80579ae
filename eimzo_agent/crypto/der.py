"""DER's two primitives, for the structures written by hand where asn1crypto's object model costs too much per
call (the CMS SignerInfo, PKCS#10 requests, PKCS#12 certificate bags) or re-encodes what must stay as it is."""

from __future__ import annotations


def header(tag: int, length: int) -> bytes:
    """Identifier octet + definite length."""
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def tlv(tag: int, body: bytes) -> bytes:
    return header(tag, len(body)) + body
