"""A document's digests computed from its Base64 text piece by piece, while the text is still arriving.

Why: for a 10 MB document the O'zDSt hash (≈ 90 ms) is the largest single step of a signature, and it could only
start once the whole 13 MB request frame had arrived and been decoded. The WebSocket session feeds this the
document's Base64 as the frame comes in (server/prehash.py), so the hash runs meanwhile on another core; the
signature then takes the finished digest instead of hashing again (plugins/pkcs7.py).

Strict on purpose: it gives digests only for text the agent's own decoding (`protocol.base64data.decode`) would
decode to the same bytes in one go — the RFC 4648 alphabet in whole groups of four, padding only at the very end.
Anything else (line breaks, spaces, a stray character, a length not a multiple of four) makes it give up, and the
signature hashes the decoded document itself as before. Not thread-safe: one feeder at a time (the session's one
worker thread).
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable

from eimzo_agent.crypto.gost94 import gost94

try:
    import pybase64 as _base64
except ImportError:  # pragma: no cover - pybase64 is a dependency; binascii is the fallback elsewhere too
    _base64 = None

#: The digests this can make, by the names `feed`'s caller asks for.
ALGORITHMS = {"sha256": hashlib.sha256, "gost94": gost94}


def _decode(text: bytes | memoryview) -> bytes:
    if _base64 is not None:
        return _base64.b64decode(text, validate=True)
    return binascii.a2b_base64(text, strict_mode=True)


class Base64Digests:
    """Digests of the bytes a Base64 text decodes to, fed in pieces of any size."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._states = {name: ALGORITHMS[name]() for name in algorithms}
        self._carry = b""  # 0-3 characters waiting for the rest of their group of four
        self._padded = False  # a group with "=" was seen: it must have been the last
        self.failed = not self._states

    def feed(self, text: bytes | memoryview) -> None:
        """Take the next piece of the text (a memoryview is read, not copied)."""
        if self.failed or not len(text):
            return
        view = memoryview(text)
        if self._carry:
            need = 4 - len(self._carry)
            if len(view) < need:
                self._carry += bytes(view)
                return
            self._update(self._carry + bytes(view[:need]))
            view = view[need:]
            self._carry = b""
        whole = len(view) - len(view) % 4
        if whole:
            self._update(view[:whole])
        self._carry = bytes(view[whole:])

    def finish(self) -> dict[str, bytes] | None:
        """The digests by name, or None when the text was not plain strict Base64 (see the module's docstring)."""
        if self.failed or self._carry:  # a group of four left incomplete: not Base64
            return None
        return {name: state.digest() for name, state in self._states.items()}

    def _update(self, groups: bytes | memoryview) -> None:
        if self._padded:  # more text after a padded group
            self.failed = True
        if self.failed:
            return
        # Strict decoding refuses an "=" anywhere but in the last group of what it is given; so a piece ending in
        # padding must be the text's last.
        if b"=" in bytes(groups[-2:]):
            self._padded = True
        try:
            data = _decode(groups)
        except (binascii.Error, ValueError, TypeError):
            self.failed = True
            return
        for state in self._states.values():
            state.update(data)
