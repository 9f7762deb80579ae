"""DER by hand, where asn1crypto's object model costs too much per call (the CMS SignerInfo, PKCS#10 requests,
PKCS#12 certificate bags) or re-encodes what must stay as it is: the TLV writer, a value's DER computed once
(`encoded`), and a SEQUENCE OF's elements as they are (`elements`)."""

from __future__ import annotations

import weakref

from asn1crypto.core import Asn1Value

#: value -> value.dump(), for values that are never changed after loading (a kept signer's certificates).
_ENCODED: weakref.WeakKeyDictionary[Asn1Value, bytes] = weakref.WeakKeyDictionary()


def header(tag: int, length: int) -> bytes:
    """Identifier octet + definite length."""
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def tlv(tag: int, body: bytes) -> bytes:
    return header(tag, len(body)) + body


def encoded(value: Asn1Value) -> bytes:
    """`value.dump()`, computed once per object. asn1crypto takes any header whose last byte is 0x80 (a length
    such as 0x0280) for an indefinite length and re-encodes the whole structure on every dump(): ≈ 0.4 ms for a
    certificate, paid on every signature by a key whose certificate happens to have such a length. Only for
    values nobody changes after loading."""
    der = _ENCODED.get(value)
    if der is None:
        der = value.dump()
        _ENCODED[value] = der
    return der


def elements(encoded: bytes) -> list[bytes] | None:
    """The encodings of a constructed value's elements (a SEQUENCE OF, a SET OF) exactly as they are, for code that
    must copy what it does not change; None when the value or an element has an indefinite length or does not
    parse (the caller then takes its ordinary path)."""
    try:
        start, end = _contents(encoded, 0, len(encoded))
        if end != len(encoded):
            return None
        found = []
        while start < end:
            _, body_end = _contents(encoded, start, end)
            found.append(bytes(encoded[start:body_end]))
            start = body_end
        return found
    except (IndexError, ValueError):
        return None


def _contents(encoded: bytes, position: int, limit: int) -> tuple[int, int]:
    """(start, end) of the contents of the element at `position`: definite lengths, tag numbers below 31 only."""
    if encoded[position] & 0x1F == 0x1F:
        raise ValueError("high tag number")
    first = encoded[position + 1]
    position += 2
    if first < 0x80:
        length = first
    elif first == 0x80 or first > 0x84:
        raise ValueError("indefinite or oversized length")
    else:
        size = first & 0x7F
        length = int.from_bytes(encoded[position:position + size], "big")
        position += size
    if position + length > limit:
        raise ValueError("truncated")
    return position, position + length
