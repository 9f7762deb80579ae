"""Base64 as the protocol carries documents and signatures: fast for tens of MB, strict, and cheap to put in JSON.

Why pybase64: the standard library's binascii decodes about 200 MB/s (≈ 65 ms for a 10 MB document's 13 MB of
Base64, all of it holding the GIL); pybase64's SIMD code does the same in ≈ 1.3 ms and lets other threads run.
The standard library stays as the fallback where pybase64 has no wheel and cannot be built.

`Base64Text` marks a reply value as Base64 text: `replies.encode_reply` puts it into the JSON as it is, without
escaping (Base64's alphabet needs none), instead of json.dumps scanning 13 MB of it character by character.
"""

from __future__ import annotations

import base64
import binascii

try:
    import pybase64 as _fast
except ImportError:  # pragma: no cover - pybase64 is a dependency; this is for odd platforms without a wheel
    _fast = None


class Base64Text(str):
    """A str known to hold only the Base64 alphabet (A-Z a-z 0-9 + / =)."""


def decode(text: str) -> bytes:
    """Strict Base64 (RFC 4648 alphabet, padding required); MIME line breaks and spaces are allowed.
    Raises ValueError for anything else."""
    try:
        return _fast.b64decode(text, validate=True) if _fast is not None else base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        pass
    # Line breaks (PEM-like, MIME): rare, so only now is the whole string split and joined again.
    joined = "".join(text.split())
    try:
        return _fast.b64decode(joined, validate=True) if _fast is not None else base64.b64decode(joined, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(str(exc)) from None


def encode(data: bytes) -> Base64Text:
    if _fast is not None:
        return Base64Text(_fast.b64encode_as_string(data))
    return Base64Text(base64.b64encode(data).decode("ascii"))
