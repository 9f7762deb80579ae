"""Base64 as the protocol carries documents and signatures: fast for tens of MB, strict, and cheap to put in JSON.

Why pybase64: the standard library's binascii decodes about 200 MB/s (≈ 65 ms for a 10 MB document's 13 MB of
Base64, all of it holding the GIL); pybase64's SIMD code does the same in ≈ 1.3 ms and lets other threads run.
The standard library stays as the fallback where pybase64 has no wheel and cannot be built.

`Base64Text` marks a reply value as Base64 text: `replies.encode_reply` puts it into the JSON as it is, without
escaping (Base64's alphabet needs none), instead of json.dumps scanning 13 MB of it character by character. A large
value is `Base64Pieces` instead (`encode_pieces`): the text in pieces of 1 MiB, each a short C call, never joined
on the agent's side; a `str` subclass could not be used there, since making one copies the whole string again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

try:
    import pybase64 as _fast
except ImportError:  # pragma: no cover - pybase64 is a dependency; this is for odd platforms without a wheel
    _fast = None


class Base64Text(str):
    """A str known to hold only the Base64 alphabet (A-Z a-z 0-9 + / =)."""


#: Bytes encoded per piece of `Base64Pieces`: 1 MiB of text (a multiple of 3, so that no piece needs padding).
PIECE_BYTES = 3 * 256 * 1024


class Base64Pieces:
    """A large Base64 value as pieces of text whose concatenation is the value. Deliberately not a str or a list:
    only `replies` knows how to put it into a reply (json.dumps refuses it rather than writing an array)."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def __len__(self) -> int:
        return sum(len(piece) for piece in self.pieces)

    def text(self) -> str:
        """The whole value as one string (tests; the agent itself never needs it)."""
        return "".join(self.pieces)


def decode(text: str | memoryview) -> bytes:
    """Strict Base64 (RFC 4648 alphabet, padding required); MIME line breaks and spaces are allowed.
    Raises ValueError for anything else. `text` may be the ASCII bytes of the text, left where they are."""
    try:
        return _fast.b64decode(text, validate=True) if _fast is not None else base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        pass
    # Line breaks (PEM-like, MIME): rare, so only now is the whole string split and joined again.
    joined: str | bytes = "".join(text.split()) if isinstance(text, str) else b"".join(bytes(text).split())
    try:
        return _fast.b64decode(joined, validate=True) if _fast is not None else base64.b64decode(joined, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(str(exc)) from None


def encode(data: bytes) -> Base64Text:
    return Base64Text(_encode_text(data))


def encode_pieces(parts: Sequence[bytes], piece_bytes: int = PIECE_BYTES) -> Base64Text | Base64Pieces:
    """The Base64 of the concatenation of `parts`, without concatenating them: `Base64Text` when it is small,
    `Base64Pieces` of about 1 MiB each otherwise (a signed 10 MB document: fourteen short C calls instead of one
    of ≈ 7 ms plus a copy of ≈ 7 ms, all holding the GIL). `piece_bytes` must be a multiple of 3."""
    if sum(len(part) for part in parts) <= piece_bytes:
        return encode(b"".join(parts))
    pieces, carry = encode_pieces_open(parts, piece_bytes)  # carry: 0-2 bytes short of a whole group of three
    if carry:
        pieces.append(_encode_text(carry))
    return Base64Pieces(pieces)


def encode_pieces_open(parts: Sequence[bytes], piece_bytes: int = PIECE_BYTES) -> tuple[list[str], bytes]:
    """`encode_pieces` of a value whose end is not known yet: the Base64 pieces of `parts` as far as whole groups of
    three bytes go, and the 0-2 bytes left over, which belong to the first group of what follows (see
    `close_pieces`)."""
    pieces: list[str] = []
    carry = b""
    for part in parts:
        view = memoryview(part)
        if carry:
            need = 3 - len(carry)
            if len(view) < need:
                carry += bytes(view)
                continue
            pieces.append(_encode_text(carry + bytes(view[:need])))
            view, carry = view[need:], b""
        whole = len(view) - len(view) % 3
        for start in range(0, whole, piece_bytes):
            pieces.append(_encode_text(view[start:min(start + piece_bytes, whole)]))
        carry = bytes(view[whole:])
    return pieces, carry


def close_pieces(pieces: list[str], carry: bytes, rest: bytes) -> Base64Pieces:
    """The value `encode_pieces_open` began, now that its end `rest` is known."""
    return Base64Pieces([*pieces, _encode_text(carry + rest)])


def _encode_text(data: bytes | memoryview) -> str:
    if _fast is not None:
        return _fast.b64encode_as_string(data)
    return base64.b64encode(data).decode("ascii")
