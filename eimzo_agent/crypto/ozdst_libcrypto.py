"""O'zDSt (GOST R 34.10-2001) verification's point arithmetic in OpenSSL's libcrypto, through ctypes.

Why: a portal server checks two O'zDSt signatures per login, and the pure-Python z1*G + z2*Q of `ozdst` costs
≈ 1.7 ms each. libcrypto does prime-curve arithmetic for any curve (`cryptography` exposes only named curves),
and one `EC_POINT_mul(group, R, z1, Q, z2)` computes the whole sum in C (≈ 0.45 ms: OpenSSL's generic
Montgomery code, it has no tuned code for these curves). Only *verification* comes here: its inputs are public.
Signing stays in `ozdst` (it handles secrets and blinds them).

Contract: `combination_matches` answers True/False, or None when libcrypto could not be used (not installed,
disabled, an allocation or call failed) — the caller then uses its pure-Python path. It never raises. Input
checks (point on the curve, 0 < r, s < q) are the caller's and run before it; libcrypto checks the point again.

Threads: each `EC_GROUP` is built once per curve under a lock and only read afterwards (OpenSSL allows shared
read-only groups); every call makes its own BN_CTX, BIGNUMs and points and frees them before returning. ctypes
drops the GIL during the C calls, so verifications in worker threads run in parallel. The groups live as long as
the process.

Off switch: EIMZO_AGENT_PURE_PYTHON=1 (the same variable that turns off the C hash) or `set_enabled(False)`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from typing import Protocol

__all__ = ["available", "call_count", "combination_matches", "set_enabled"]


class Curve(Protocol):
    """What this module reads of `ozdst.Curve` (a Protocol, so that `ozdst` can import this module, not both ways)."""

    @property
    def name(self) -> str: ...
    @property
    def p(self) -> int: ...
    @property
    def a(self) -> int: ...
    @property
    def b(self) -> int: ...
    @property
    def q(self) -> int: ...
    @property
    def gx(self) -> int: ...
    @property
    def gy(self) -> int: ...


_VOIDP = ctypes.c_void_p
_INT = ctypes.c_int

# name: (restype, argtypes); pointers as c_void_p so they stay plain ints and can be NULL-checked
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "BN_CTX_new": (_VOIDP, []),
    "BN_CTX_free": (None, [_VOIDP]),
    "BN_bin2bn": (_VOIDP, [ctypes.c_char_p, _INT, _VOIDP]),
    "BN_bn2binpad": (_INT, [_VOIDP, ctypes.c_char_p, _INT]),
    "BN_new": (_VOIDP, []),
    "BN_free": (None, [_VOIDP]),
    "BN_value_one": (_VOIDP, []),
    "EC_GROUP_new_curve_GFp": (_VOIDP, [_VOIDP, _VOIDP, _VOIDP, _VOIDP]),
    "EC_GROUP_set_generator": (_INT, [_VOIDP, _VOIDP, _VOIDP, _VOIDP]),
    "EC_GROUP_free": (None, [_VOIDP]),
    "EC_POINT_new": (_VOIDP, [_VOIDP]),
    "EC_POINT_free": (None, [_VOIDP]),
    "EC_POINT_set_affine_coordinates": (_INT, [_VOIDP, _VOIDP, _VOIDP, _VOIDP, _VOIDP]),
    "EC_POINT_get_affine_coordinates": (_INT, [_VOIDP, _VOIDP, _VOIDP, _VOIDP, _VOIDP]),
    "EC_POINT_is_at_infinity": (_INT, [_VOIDP, _VOIDP]),
    "EC_POINT_mul": (_INT, [_VOIDP, _VOIDP, _VOIDP, _VOIDP, _VOIDP, _VOIDP]),
    "ERR_clear_error": (None, []),
}

_setup_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_tried = False
_groups: dict[str, int] = {}  # curve name -> EC_GROUP*, read-only once stored
_failed_curves: set[str] = set()
_enabled = os.environ.get("EIMZO_AGENT_PURE_PYTHON", "").strip() in ("", "0")
_calls = 0  # EC_POINT_mul calls made, for tests and benchmarks


def _load() -> ctypes.CDLL | None:
    """libcrypto with the prototypes set, or None; tried once per process."""
    global _lib, _lib_tried
    if _lib_tried:
        return _lib
    with _setup_lock:
        if not _lib_tried:
            _lib = _open_library()
            _lib_tried = True
    return _lib


def _open_library() -> ctypes.CDLL | None:
    # Not find_library on macOS: it finds /usr/lib/libcrypto.dylib, a stub that aborts the process when loaded.
    found = ctypes.util.find_library("crypto") if sys.platform != "darwin" else None
    # libcrypto-3.dll: the one python.org's Windows builds ship for `ssl` (our MSI's bundled Python has it).
    for name in (found, "libcrypto.so.3", "libcrypto-3-x64.dll", "libcrypto-3.dll", "libcrypto.3.dylib"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for func, (restype, argtypes) in _SIGNATURES.items():
                proto = getattr(lib, func)
                proto.restype = restype
                proto.argtypes = argtypes
        except (OSError, AttributeError):  # missing library, or one without these (OpenSSL < 1.1.1)
            continue
        return lib
    return None


def _bn(lib: ctypes.CDLL, value: int) -> int | None:
    """A new BIGNUM holding value >= 0 (the caller frees it), None on failure."""
    data = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return lib.BN_bin2bn(data, len(data), None) or None


def _build_group(lib: ctypes.CDLL, curve: Curve) -> int | None:
    """EC_GROUP* for the curve with G of order q, cofactor 1; None on failure.

    No EC_GROUP_precompute_mult: it is deprecated in OpenSSL 3 and gained < 3 % here (measured)."""
    ctx = lib.BN_CTX_new()
    bns = [_bn(lib, v) for v in (curve.p, curve.a, curve.b, curve.gx, curve.gy, curve.q)]
    group = generator = None
    try:
        if not ctx or any(b is None for b in bns):
            return None
        p, a, b, gx, gy, q = bns
        group = lib.EC_GROUP_new_curve_GFp(p, a, b, ctx)
        if not group:
            return None
        generator = lib.EC_POINT_new(group)
        ok = (generator
              and lib.EC_POINT_set_affine_coordinates(group, generator, gx, gy, ctx) == 1
              and lib.EC_GROUP_set_generator(group, generator, q, lib.BN_value_one()) == 1)
        if not ok:
            lib.ERR_clear_error()
            lib.EC_GROUP_free(group)
            return None
        return group
    finally:
        if generator:
            lib.EC_POINT_free(generator)
        for bn in bns:
            if bn is not None:
                lib.BN_free(bn)
        if ctx:
            lib.BN_CTX_free(ctx)


def _group(lib: ctypes.CDLL, curve: Curve) -> int | None:
    group = _groups.get(curve.name)
    if group is not None or curve.name in _failed_curves:
        return group
    with _setup_lock:
        group = _groups.get(curve.name)
        if group is None and curve.name not in _failed_curves:
            group = _build_group(lib, curve)
            if group is None:
                _failed_curves.add(curve.name)
            else:
                _groups[curve.name] = group
    return group


def available() -> bool:
    """True when verification will use libcrypto (found, loaded, and not switched off)."""
    return _enabled and _load() is not None


def set_enabled(enabled: bool) -> None:
    """Turn the libcrypto path on or off for this process (tests, benchmarks; the environment sets the default)."""
    global _enabled
    _enabled = enabled


def call_count() -> int:
    """How many times libcrypto computed a combination in this process."""
    return _calls


def combination_matches(curve: Curve, public: tuple[int, int], z1: int, z2: int, r: int) -> bool | None:
    """Whether R = z1*G + z2*Q is a finite point with x(R) mod q == r; None when libcrypto cannot answer.

    z1, z2 must be in [0, q) and Q = public must be on the curve (checked by the caller; libcrypto checks Q too
    and a refusal there is the answer False).
    """
    global _calls
    if not _enabled:
        return None
    try:
        lib = _load()
        if lib is None:
            return None
        group = _group(lib, curve)
        if group is None:
            return None
        _calls += 1
        answer = _combine(lib, group, curve, public, z1, z2, r)
        if answer is None:
            lib.ERR_clear_error()  # leave this thread's OpenSSL error queue as we found it
        return answer
    except Exception:  # a binding surprise must become the Python fallback, never a crash
        return None


def _combine(lib: ctypes.CDLL, group: int, curve: Curve, public: tuple[int, int], z1: int, z2: int,
             r: int) -> bool | None:
    ctx = lib.BN_CTX_new()
    out_x = lib.BN_new()
    bns = [_bn(lib, v) for v in (public[0], public[1], z1, z2)]
    point = result = None
    try:
        if not ctx or not out_x or any(b is None for b in bns):
            return None
        qx, qy, n1, n2 = bns
        point = lib.EC_POINT_new(group)
        result = lib.EC_POINT_new(group)
        if not point or not result:
            return None
        if lib.EC_POINT_set_affine_coordinates(group, point, qx, qy, ctx) != 1:
            lib.ERR_clear_error()  # the refusal left an entry on this thread's error queue
            return False  # not on the curve: OpenSSL checks it as well
        if lib.EC_POINT_mul(group, result, n1, point, n2, ctx) != 1:
            return None
        if lib.EC_POINT_is_at_infinity(group, result) == 1:
            return False
        if lib.EC_POINT_get_affine_coordinates(group, result, out_x, None, ctx) != 1:
            return None
        raw = ctypes.create_string_buffer(32)
        if lib.BN_bn2binpad(out_x, raw, 32) != 32:
            return None
        return int.from_bytes(raw.raw, "big") % curve.q == r
    finally:
        for pt in (point, result):
            if pt:
                lib.EC_POINT_free(pt)
        for bn in (*bns, out_x):
            if bn:
                lib.BN_free(bn)
        if ctx:
            lib.BN_CTX_free(ctx)
