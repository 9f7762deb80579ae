"""O'zDSt 1106:2009 hash = GOST R 34.11-94 with the CryptoPro S-box ("id-GostR3411-94-CryptoProParamSet"), zero IV.

hashlib has no GOST hash and no package on PyPI provides 34.11-94, so it is written here from the standard: a
256-bit state H, a running 256-bit sum of the message blocks and the bit length; each 32-byte block goes through
the step function (four GOST 28147-89 encryptions keyed from H and the block, then the linear "psi" shuffle).

Byte order throughout is the one of the standard's reference implementations: a 32-byte block is a little-endian
256-bit number, and the digest is the state's 32 bytes in that order (H("abc") = b285056d...2fd42c).

The work is done in C when it can be: by the extension `_gost94` when it was built at install time (~60 MB/s),
else by the same C core as a plain library beside this module, loaded with ctypes (`gost94_clib`; the Windows
installer ships it as gost94.dll, since no extension can be built for Windows on Debian). Otherwise, or with
EIMZO_AGENT_PURE_PYTHON=1, the table-driven pure-Python `PurePythonGost94` runs (~1 MB/s, enough for documents
of a few MB). All give identical results; `BACKEND` says which one `Gost94` uses, `ACCELERATED` whether it is C.
"""

from __future__ import annotations

import os
import struct
import threading
from types import ModuleType
from typing import NamedTuple, Protocol

from . import gost94_clib
from .gost94_clib import CLibrary

__all__ = ["ACCELERATED", "BACKEND", "Gost94", "PurePythonGost94", "gost94", "gost94_digest"]

# id-GostR3411-94-CryptoProParamSet (RFC 4357 §11.2): row i substitutes the i-th 4-bit nibble, lowest first.
SBOX_CRYPTOPRO: tuple[tuple[int, ...], ...] = (
    (10, 4, 5, 6, 8, 1, 3, 7, 13, 12, 14, 0, 9, 2, 11, 15),
    (5, 15, 4, 0, 2, 13, 11, 9, 1, 7, 6, 3, 12, 14, 10, 8),
    (7, 15, 12, 14, 9, 4, 1, 0, 3, 11, 5, 2, 6, 10, 8, 13),
    (4, 10, 7, 12, 0, 15, 2, 8, 14, 1, 6, 5, 13, 11, 9, 3),
    (7, 6, 4, 11, 9, 12, 2, 10, 1, 8, 0, 14, 15, 13, 3, 5),
    (7, 6, 2, 4, 13, 9, 15, 0, 10, 1, 5, 11, 8, 14, 12, 3),
    (13, 14, 4, 1, 7, 0, 5, 10, 3, 12, 8, 15, 6, 2, 9, 11),
    (1, 3, 10, 9, 5, 11, 4, 15, 8, 6, 7, 14, 13, 0, 2, 12),
)

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M256 = (1 << 256) - 1
# The constant C3 of the key schedule (C2 = C4 = 0), as the standard writes it (most significant byte first).
_C3 = 0xFF00FFFF000000FFFF0000FF00FFFF0000FF00FF00FF00FFFF00FF00FF00FF00
_BLOCK = 32

_WORDS16 = struct.Struct("<16H")
_KEY_WORDS = struct.Struct("<8I")
# Transformation P of the key schedule: key byte 4*k + i is input byte 8*i + k; as a slice list this is
# "every 8th byte starting at k", so the 8 subkeys are the little-endian words of the 8 stride-8 slices.
_P_ORDER = tuple(8 * i + k for k in range(8) for i in range(4))


# --- pure-Python implementation --------------------------------------------------------------------------------

def _rol32(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def _half_table(rows: tuple[tuple[int, ...], ...], shift: int) -> list[int]:
    """f(x) for the 16-bit half x of a round input: 4 S-boxes, then the cipher's rotation by 11.

    S-box layer and rotation are applied nibble-wise/linearly, so the round function splits into
    lo[t & 0xFFFF] ^ hi[t >> 16]: two lookups per round, the fastest form found for CPython.
    """
    byte_lo = [rows[0][b & 15] | rows[1][b >> 4] << 4 for b in range(256)]
    byte_hi = [rows[2][b & 15] | rows[3][b >> 4] << 4 for b in range(256)]
    return [_rol32((byte_lo[x & 255] | byte_hi[x >> 8] << 8) << shift, 11) for x in range(65536)]




def _psi(y: int) -> int:
    """One step of the shuffle: 16-bit words shift down, the top word becomes y1^y2^y3^y4^y13^y16."""
    top = (y ^ (y >> 16) ^ (y >> 32) ^ (y >> 48) ^ (y >> 192) ^ (y >> 240)) & 0xFFFF
    return (y >> 16) | (top << 240)


def _psi_power_spreads(n: int) -> tuple[int, ...]:
    """psi^n is linear and acts on whole 16-bit words: output word j = XOR of some input words.

    spreads[i] has a 1 in each output word that input word i feeds, so psi^n(Y) = XOR_i (y_i * spreads[i]):
    the product cannot carry because y_i < 2^16 and the 1s are 16 bits apart. 16 multiplies instead of n steps.
    """
    spreads = []
    for i in range(16):
        y = 1 << (16 * i)
        for _ in range(n):
            y = _psi(y)
        spreads.append(y)
    return tuple(spreads)


def _linear_map(words: tuple[int, ...], sp: tuple[int, ...]) -> int:
    return (words[0] * sp[0] ^ words[1] * sp[1] ^ words[2] * sp[2] ^ words[3] * sp[3]
            ^ words[4] * sp[4] ^ words[5] * sp[5] ^ words[6] * sp[6] ^ words[7] * sp[7]
            ^ words[8] * sp[8] ^ words[9] * sp[9] ^ words[10] * sp[10] ^ words[11] * sp[11]
            ^ words[12] * sp[12] ^ words[13] * sp[13] ^ words[14] * sp[14] ^ words[15] * sp[15])


class _Tables(NamedTuple):
    lo: list[int]  # round function of the low 16 bits of the round input
    hi: list[int]  # ... of the high 16 bits
    # H' = psi^61(H ^ psi(M ^ psi^12(S))) = psi^61(H) ^ psi^62(M) ^ psi^74(S), psi being linear.
    psi61: tuple[int, ...]
    psi62: tuple[int, ...]
    psi74: tuple[int, ...]


_tables: _Tables | None = None
_tables_lock = threading.Lock()


def _pure_tables() -> _Tables:
    """Built on first use only (≈ 30 ms, ≈ 6 MB), so importing with the C accelerator costs nothing."""
    global _tables
    if _tables is None:
        with _tables_lock:
            if _tables is None:
                _tables = _Tables(_half_table(SBOX_CRYPTOPRO[0:4], 0), _half_table(SBOX_CRYPTOPRO[4:8], 16),
                                  _psi_power_spreads(61), _psi_power_spreads(62), _psi_power_spreads(74))
    return _tables


def _subkeys(w: int) -> tuple[int, ...]:
    """The 8 32-bit GOST 28147 subkeys of P(w)."""
    b = w.to_bytes(32, "little")
    return _KEY_WORDS.unpack(b[0::8] + b[1::8] + b[2::8] + b[3::8] + b[4::8] + b[5::8] + b[6::8] + b[7::8])


def _encrypt(block: int, key: tuple[int, ...], lo: list[int], hi: list[int]) -> int:
    """GOST 28147-89 ECB encryption of one 64-bit block (N1 = low word), 32 rounds unrolled by 8.

    Rounds alternate which half they update instead of swapping; after the even number of rounds the halves
    end up exchanged, which is the cipher's "no swap in the last round" output order.
    """
    k0, k1, k2, k3, k4, k5, k6, k7 = key
    a = block & _M32
    b = block >> 32
    for _ in range(3):  # rounds 1-24: subkeys k0..k7 three times
        t = (a + k0) & _M32
        b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (b + k1) & _M32
        a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (a + k2) & _M32
        b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (b + k3) & _M32
        a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (a + k4) & _M32
        b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (b + k5) & _M32
        a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (a + k6) & _M32
        b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
        t = (b + k7) & _M32
        a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    # rounds 25-32: subkeys k7..k0
    t = (a + k7) & _M32
    b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (b + k6) & _M32
    a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (a + k5) & _M32
    b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (b + k4) & _M32
    a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (a + k3) & _M32
    b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (b + k2) & _M32
    a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (a + k1) & _M32
    b ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    t = (b + k0) & _M32
    a ^= lo[t & 0xFFFF] ^ hi[t >> 16]
    return b | (a << 32)


def _a(y: int) -> int:
    """Transformation A: 64-bit words (y4, y3, y2, y1) -> (y1 ^ y2, y4, y3, y2)."""
    return (y >> 64) | (((y ^ (y >> 64)) & _M64) << 192)


def _compress(h: int, m: int, tables: _Tables) -> int:
    """The step function: new H from the state H and one 256-bit block M (both little-endian ints)."""
    lo, hi = tables.lo, tables.hi
    u, v = h, m
    k1 = _subkeys(u ^ v)
    u, v = _a(u), _a(_a(v))
    k2 = _subkeys(u ^ v)
    u, v = _a(u) ^ _C3, _a(_a(v))
    k3 = _subkeys(u ^ v)
    u, v = _a(u), _a(_a(v))
    k4 = _subkeys(u ^ v)
    s = (_encrypt(h & _M64, k1, lo, hi)
         | _encrypt((h >> 64) & _M64, k2, lo, hi) << 64
         | _encrypt((h >> 128) & _M64, k3, lo, hi) << 128
         | _encrypt(h >> 192, k4, lo, hi) << 192)
    return (_linear_map(_WORDS16.unpack(h.to_bytes(32, "little")), tables.psi61)
            ^ _linear_map(_WORDS16.unpack(m.to_bytes(32, "little")), tables.psi62)
            ^ _linear_map(_WORDS16.unpack(s.to_bytes(32, "little")), tables.psi74))


class PurePythonGost94:
    """hashlib-like streaming O'zDSt 1106 / GOST R 34.11-94 (CryptoPro S-box, zero IV) in pure Python."""

    name = "gost94-cryptopro"
    digest_size = 32
    block_size = 32

    __slots__ = ("_buffer", "_h", "_length", "_sigma")

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._h = 0  # zero IV
        self._sigma = 0  # sum of the blocks mod 2^256
        self._length = 0  # message bytes so far
        self._buffer = b""  # < 32 pending bytes
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self._length += len(view)
        offset = 0
        if self._buffer:
            offset = min(_BLOCK - len(self._buffer), len(view))
            self._buffer += bytes(view[:offset])
            if len(self._buffer) < _BLOCK:
                return
            self._absorb(self._buffer)
            self._buffer = b""
        end = offset + (len(view) - offset) // _BLOCK * _BLOCK
        if end > offset:
            self._absorb(view[offset:end])
        self._buffer = bytes(view[end:])

    def _absorb(self, blocks: bytes | memoryview) -> None:
        """Process whole 32-byte blocks; local variables because this is the hot loop."""
        tables = _pure_tables()
        h, sigma = self._h, self._sigma
        from_bytes, compress = int.from_bytes, _compress
        for start in range(0, len(blocks), _BLOCK):
            m = from_bytes(blocks[start:start + _BLOCK], "little")
            h = compress(h, m, tables)
            sigma = (sigma + m) & _M256
        self._h, self._sigma = h, sigma

    def digest(self) -> bytes:
        tables = _pure_tables()
        h, sigma = self._h, self._sigma
        if self._buffer:  # the last partial block is zero-padded; a message of whole blocks adds none
            m = int.from_bytes(self._buffer, "little")
            h = _compress(h, m, tables)
            sigma = (sigma + m) & _M256
        h = _compress(h, (self._length * 8) & _M256, tables)
        h = _compress(h, sigma, tables)
        return h.to_bytes(32, "little")

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> PurePythonGost94:
        clone = PurePythonGost94()
        clone._h, clone._sigma, clone._length, clone._buffer = self._h, self._sigma, self._length, self._buffer
        return clone


# --- implementation selection ----------------------------------------------------------------------------------

class _State(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> _State: ...


def _load_accelerator() -> tuple[str, ModuleType | CLibrary | None]:
    """(backend name, C implementation or None): the extension, else the plain library beside this module, else
    pure Python — which the user can force with EIMZO_AGENT_PURE_PYTHON=1."""
    if os.environ.get("EIMZO_AGENT_PURE_PYTHON", "").strip() not in ("", "0"):
        return "python", None
    try:
        from . import _gost94
    except ImportError:
        pass
    else:
        return "extension", _gost94
    library = gost94_clib.load()
    if library is not None:
        return "library", library
    return "python", None


BACKEND: str
BACKEND, _accelerator = _load_accelerator()
#: True when the hash runs in C (the extension or the ctypes library).
ACCELERATED: bool = _accelerator is not None


class Gost94:
    """hashlib-like streaming O'zDSt 1106 / GOST R 34.11-94 (CryptoPro S-box, zero IV).

    A thin wrapper so callers see one class whichever implementation runs underneath.
    """

    name = "gost94-cryptopro"
    digest_size = 32
    block_size = 32

    __slots__ = ("_state",)

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._state: _State = _accelerator.State() if _accelerator is not None else PurePythonGost94()
        if data:
            self._state.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._state.update(data)

    def digest(self) -> bytes:
        return self._state.digest()

    def hexdigest(self) -> str:
        return self._state.digest().hex()

    def copy(self) -> Gost94:
        clone = Gost94.__new__(Gost94)
        clone._state = self._state.copy()
        return clone


def gost94(data: bytes = b"") -> Gost94:
    """hashlib-style constructor."""
    return Gost94(data)


def gost94_digest(data: bytes) -> bytes:
    """One-shot digest (the C path skips the object for small inputs such as signed attributes)."""
    if _accelerator is not None:
        return _accelerator.digest(data)
    return PurePythonGost94(data).digest()
