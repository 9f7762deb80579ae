"""O'zDSt 1092:2009 signatures = GOST R 34.10-2001 math on the CryptoPro curves A/B/C (RFC 4357 parameters).

Byte conventions are E-IMZO's (checked on real E-IMZO signatures): the digest (O'zDSt 1106 / gost94
output) is read little-endian, a signature is s || r (32 bytes each, big-endian) and a public key inside the
SPKI is x || y, each little-endian. The OZMST (2024) family uses the same curves; mapping its OIDs to these
objects is done elsewhere.

Pure-Python integers. Speed: Jacobian coordinates; G multiples come from a signed-window table computed once per
curve on first use (sign = ~54 point additions, no doublings); a variable point (verify) uses width-5 wNAF. The
additions of a signature's k*G run in C when the optional extension `_ozdst_ec` was built, or its core ships as a
library (Windows: ozdst_ec.dll, `ozdst_ec_clib`) (≈ 0.25 ms less per signature, most of a remembered key's signing
time); this code is the fallback.
Verification hands z1*G + z2*Q to OpenSSL's libcrypto when it is there (`ozdst_libcrypto`, ≈ 4x faster; its
inputs are public) after the checks below; this code is the fallback (EIMZO_AGENT_PURE_PYTHON=1 forces it).

Side channels: CPython big-int arithmetic is not constant time and secrets cannot be wiped, so we only make the
leak harder to use: every scalar multiplication by a secret is randomised by *scalar blinding* (k + m*q and
d + m*q with a fresh random 64-bit m; same point, different bit pattern each time), and d enters the signature
equation blinded the same way. k comes from `secrets`.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from types import ModuleType

from . import ozdst_ec_clib, ozdst_libcrypto


def _accelerator() -> ModuleType | ozdst_ec_clib.CLibrary | None:
    """The C fixed-base additions: the extension, else the same core as a library beside this module (the Windows
    installer's ozdst_ec.dll), else None: the Python additions below (also with EIMZO_AGENT_PURE_PYTHON=1, as for
    the hash)."""
    if os.environ.get("EIMZO_AGENT_PURE_PYTHON", "").strip() not in ("", "0"):
        return None
    try:
        from . import _ozdst_ec
    except ImportError:  # no compiler at install time, or a Windows build
        return ozdst_ec_clib.load()
    return _ozdst_ec


_ec = _accelerator()

__all__ = [
    "CRYPTOPRO_A",
    "CRYPTOPRO_B",
    "CRYPTOPRO_C",
    "CURVES",
    "Curve",
    "curve_of_point",
    "decode_public_key",
    "encode_public_key",
    "generate_private_key",
    "public_point",
    "sign_digest",
    "verify_digest",
]


@dataclass(frozen=True)
class Curve:
    """Short Weierstrass curve y^2 = x^3 + a*x + b over GF(p) with a base point G of prime order q."""

    name: str
    p: int
    a: int
    b: int
    q: int
    gx: int
    gy: int

    def contains(self, x: int, y: int) -> bool:
        """True for an affine point of this curve with reduced coordinates (the point at infinity has none)."""
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + self.a * x + self.b)) % p == 0


# RFC 4357 §11.4 id-GostR3410-2001-CryptoPro-{A,B,C}-ParamSet (= tc26 256-bit paramSetB/C/D in RFC 7836 terms).
CRYPTOPRO_A = Curve(
    name="CryptoPro-A",
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97,
    a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94,
    b=0xA6,
    q=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893,
    gx=0x1,
    gy=0x8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14,
)
CRYPTOPRO_B = Curve(
    name="CryptoPro-B",
    p=0x8000000000000000000000000000000000000000000000000000000000000C99,
    a=0x8000000000000000000000000000000000000000000000000000000000000C96,
    b=0x3E1AF419A269A5F866A7D3C25C3DF80AE979259373FF2B182F49D4CE7E1BBC8B,
    q=0x800000000000000000000000000000015F700CFFF1A624E5E497161BCC8A198F,
    gx=0x1,
    gy=0x3FA8124359F96680B83D1C3EB2C070E5C545C9858D03ECFB744BF8D717717EFC,
)
CRYPTOPRO_C = Curve(
    name="CryptoPro-C",
    p=0x9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D759B,
    a=0x9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D7598,
    b=0x805A,
    q=0x9B9F605F5A858107AB1EC85E6B41C8AA582CA3511EDDFB74F02F3A6598980BB9,
    gx=0x0,
    gy=0x41ECE55743711A8C3CBF3783CD08C0EE4D4DC440D4641A8F366E550DFDB3BB67,
)
CURVES: tuple[Curve, ...] = (CRYPTOPRO_A, CRYPTOPRO_B, CRYPTOPRO_C)

# Jacobian point (X, Y, Z) = affine (X/Z^2, Y/Z^3); Z == 0 is the point at infinity.
_Jacobian = tuple[int, int, int]
_Affine = tuple[int, int]
_INFINITY: _Jacobian = (1, 1, 0)

_BLIND_BITS = 64  # size of the random multiple of q added to secret scalars
_FIXED_WINDOW = 6  # signed digits in (-32, 32]: 32 table points per window, the rows ozdst_ec_core.c reads
_WNAF_WIDTH = 5  # odd multiples 1P..15P for a variable point


# --- point arithmetic -------------------------------------------------------------------------------------------

def _double(pt: _Jacobian, p: int, a: int) -> _Jacobian:
    """2P in Jacobian coordinates; the a = -3 shortcut applies to all three CryptoPro curves."""
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    zz = z * z % p
    # M = 3X^2 + aZ^4; with a = -3 it factors as 3(X - Z^2)(X + Z^2), one multiplication less
    m = 3 * (x - zz) * (x + zz) % p if a == p - 3 else (3 * x * x + a * zz * zz) % p
    yy = y * y % p
    s = 4 * x * yy % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    return x3, y3, 2 * y * z % p


def _add_affine(pt: _Jacobian, x2: int, y2: int, p: int, a: int) -> _Jacobian:
    """P + Q with Q affine (mixed addition, the cheapest form); handles P = Q, P = -Q and P = infinity."""
    x1, y1, z1 = pt
    if z1 == 0:
        return x2, y2, 1
    zz = z1 * z1 % p
    h = (x2 * zz - x1) % p
    r = (y2 * zz * z1 - y1) % p
    if h == 0:
        return _double((x2, y2, 1), p, a) if r == 0 else _INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return x3, y3, z1 * h % p


def _add(p1: _Jacobian, p2: _Jacobian, p: int, a: int) -> _Jacobian:
    """P + Q, both Jacobian (used once per verification to combine the two partial products)."""
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    s1 = y1 * z2 * z2z2 % p
    h = (x2 * z1z1 - u1) % p
    r = (y2 * z1 * z1z1 - s1) % p
    if h == 0:
        return _double(p1, p, a) if r == 0 else _INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    return x3, y3, z1 * z2 * h % p


def _to_affine(pt: _Jacobian, p: int) -> _Affine | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, p)
    zi2 = zi * zi % p
    return x * zi2 % p, y * zi2 * zi % p


def _batch_to_affine(points: list[_Jacobian], p: int) -> list[_Affine]:
    """Many Jacobian points to affine with one inversion (Montgomery's trick); none may be infinity."""
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % p)
    inv = pow(prefix[-1], -1, p)
    out: list[_Affine] = [(0, 0)] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zi = inv * prefix[i] % p  # 1/z_i
        inv = inv * z % p
        zi2 = zi * zi % p
        out[i] = (x * zi2 % p, y * zi2 * zi % p)
    return out


# --- fixed base G: signed-window table --------------------------------------------------------------------------

_tables: dict[str, list[list[_Affine]]] = {}
_tables_lock = threading.Lock()


def _fixed_base_table(curve: Curve) -> list[list[_Affine]]:
    """Row i holds j * 2^(w*i) * G for j = 1..2^(w-1), affine; enough rows for blinded scalars.

    Built lazily once per curve (~30 ms) under a lock so concurrent first signatures do not build it twice.
    """
    table = _tables.get(curve.name)
    if table is not None:
        return table
    with _tables_lock:
        table = _tables.get(curve.name)
        if table is None:
            table = _build_fixed_base_table(curve)
            _tables[curve.name] = table
    return table


def _build_fixed_base_table(curve: Curve) -> list[list[_Affine]]:
    p, a, w = curve.p, curve.a, _FIXED_WINDOW
    half = 1 << (w - 1)
    rows_needed = (curve.q.bit_length() + _BLIND_BITS + 1) // w + 2
    rows: list[list[_Affine]] = []
    bx, by = curve.gx, curve.gy  # 2^(w*i) * G
    for _ in range(rows_needed):
        multiples: list[_Jacobian] = [(bx, by, 1)]
        for _ in range(half - 1):
            multiples.append(_add_affine(multiples[-1], bx, by, p, a))
        row = _batch_to_affine(multiples, p)
        rows.append(row)
        hx, hy = row[-1]  # 2^(w-1) * base; one doubling gives the next row's base
        nxt = _to_affine(_double((hx, hy, 1), p, a), p)
        assert nxt is not None  # q is a large prime, so no small multiple of G is infinity
        bx, by = nxt
    return rows


_R_BITS = 256  # Montgomery radix 2^256 of the C accelerator's field elements
_packed: dict[str, tuple[bytes, bytes]] = {}


def _packed_table(curve: Curve) -> tuple[bytes, bytes]:
    """The curve and its fixed-base table in the C accelerator's layout (see ozdst_ec_core.c): built once per curve."""
    packed = _packed.get(curve.name)
    if packed is not None:
        return packed
    table = _fixed_base_table(curve)
    with _tables_lock:
        packed = _packed.get(curve.name)
        if packed is None:
            p = curve.p

            def mont(value: int) -> bytes:
                return ((value << _R_BITS) % p).to_bytes(32, "little")

            header = p.to_bytes(32, "little") + mont(curve.a) + mont(1)
            body = b"".join(mont(x) + mont(y) for row in table for x, y in row)
            packed = _packed[curve.name] = (header, body)
    return packed


def _signed_window_digits(k: int, w: int) -> list[int]:
    """k = sum d_i * 2^(w*i) with d_i in (-2^(w-1), 2^(w-1)], least significant first."""
    full, half, mask = 1 << w, 1 << (w - 1), (1 << w) - 1
    digits = []
    while k:
        d = k & mask
        if d > half:
            d -= full
        digits.append(d)
        k = (k - d) >> w
    return digits


def _mul_base(curve: Curve, k: int) -> _Jacobian:
    """k * G, k >= 0 (may exceed q: blinded scalars); one mixed addition per non-zero digit, no doublings."""
    table = _fixed_base_table(curve)
    digits = _signed_window_digits(k, _FIXED_WINDOW)
    if len(digits) > len(table):  # larger than any blinded scalar we make: take the generic (slower) path
        return _mul_point(curve, (curve.gx, curve.gy), k)
    if _ec is not None:
        header, body = _packed_table(curve)
        out = _ec.fixed_base_sum(header, body, bytes(d & 0xFF for d in digits))
        return (int.from_bytes(out[:32], "little"), int.from_bytes(out[32:64], "little"),
                int.from_bytes(out[64:], "little"))
    p, a = curve.p, curve.a
    acc = _INFINITY
    for row, d in zip(table, digits, strict=False):
        if d > 0:
            x, y = row[d - 1]
            acc = _add_affine(acc, x, y, p, a)
        elif d < 0:
            x, y = row[-d - 1]
            acc = _add_affine(acc, x, p - y, p, a)
    return acc


# --- variable point: wNAF ---------------------------------------------------------------------------------------

def _wnaf(k: int, w: int) -> list[int]:
    """Width-w NAF of k >= 0, least significant first: non-zero digits are odd, |d| < 2^(w-1), and apart by >= w."""
    full, half, mask = 1 << w, 1 << (w - 1), (1 << w) - 1
    digits = []
    while k:
        if k & 1:
            d = k & mask
            if d >= half:
                d -= full
            k -= d
        else:
            d = 0
        digits.append(d)
        k >>= 1
    return digits


def _mul_point(curve: Curve, point: _Affine, k: int) -> _Jacobian:
    """k * P for an affine point P of the curve, k >= 0.

    The curves have cofactor 1, so an on-curve P has prime order q: 2P and the odd multiples below are never
    infinity, and the mixed additions stay in their generic case.
    """
    p, a = curve.p, curve.a
    x, y = point
    twice = _to_affine(_double((x, y, 1), p, a), p)
    assert twice is not None
    odd: list[_Jacobian] = [(x, y, 1)]  # P, 3P, 5P, ...
    for _ in range((1 << (_WNAF_WIDTH - 2)) - 1):
        odd.append(_add_affine(odd[-1], twice[0], twice[1], p, a))
    table = _batch_to_affine(odd, p)
    acc = _INFINITY
    for d in reversed(_wnaf(k, _WNAF_WIDTH)):
        acc = _double(acc, p, a)
        if d > 0:
            tx, ty = table[d >> 1]
            acc = _add_affine(acc, tx, ty, p, a)
        elif d < 0:
            tx, ty = table[(-d) >> 1]
            acc = _add_affine(acc, tx, p - ty, p, a)
    return acc


# --- public API -------------------------------------------------------------------------------------------------

def curve_of_point(x: int, y: int) -> Curve | None:
    """The CryptoPro curve the affine point lies on, None if none (a random point fits a wrong one with p ~2^-256).

    The paramset OIDs in Uzbek certificates are not a reliable guide to the curve (see the reference), so the
    point decides.
    """
    for curve in CURVES:
        if curve.contains(x, y):
            return curve
    return None


def _random_blind() -> int:
    return secrets.randbits(_BLIND_BITS)


def public_point(curve: Curve, d: int) -> tuple[int, int]:
    """d * G as an affine point; ValueError unless 1 <= d < q. The multiplication runs on d + m*q (blinded)."""
    if not 0 < d < curve.q:
        raise ValueError("private scalar out of range")
    point = _to_affine(_mul_base(curve, d + _random_blind() * curve.q), curve.p)
    assert point is not None  # 0 < d < q and q prime
    return point


def _digest_scalar(curve: Curve, digest: bytes) -> int:
    """e = digest read little-endian mod q, 0 replaced by 1 (GOST R 34.10-2001 §6.1 step 2)."""
    return int.from_bytes(digest, "little") % curve.q or 1


def sign_digest(curve: Curve, d: int, digest: bytes) -> bytes:
    """GOST R 34.10-2001 signature of a 32-byte gost94 digest: s || r, 32 bytes each, big-endian.

    Blinding: R = (k + m1*q)*G instead of k*G, and s = r*(d + m2*q) + k*e mod q, fresh m1, m2 each time; both
    leave the result unchanged and vary the operands an observer could time.
    """
    if not 0 < d < curve.q:
        raise ValueError("private scalar out of range")
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    q = curve.q
    e = _digest_scalar(curve, digest)
    while True:
        k = secrets.randbelow(q - 1) + 1
        point = _to_affine(_mul_base(curve, k + _random_blind() * q), curve.p)
        assert point is not None  # 0 < k < q
        r = point[0] % q
        if r == 0:
            continue
        s = (r * (d + _random_blind() * q) + k * e) % q
        if s == 0:
            continue
        return s.to_bytes(32, "big") + r.to_bytes(32, "big")


def verify_digest(curve: Curve, public: tuple[int, int], digest: bytes, signature: bytes) -> bool:
    """Check an s || r signature over a 32-byte digest; any malformed input gives False, never an exception."""
    try:
        x, y = public
        sig = bytes(signature)
        dig = bytes(digest)
    except (TypeError, ValueError):
        return False
    if not (isinstance(x, int) and isinstance(y, int)) or len(sig) != 64 or len(dig) != 32:
        return False
    if not curve.contains(x, y):  # also rules out points of a twist/other curve (invalid-curve attacks)
        return False
    q = curve.q
    s = int.from_bytes(sig[:32], "big")
    r = int.from_bytes(sig[32:], "big")
    if not (0 < r < q and 0 < s < q):
        return False
    v = pow(_digest_scalar(curve, dig), -1, q)
    z1 = s * v % q
    z2 = (q - r) * v % q
    fast = ozdst_libcrypto.combination_matches(curve, (x, y), z1, z2, r)  # None: no libcrypto, compute here
    if fast is not None:
        return fast
    c = _to_affine(_add(_mul_base(curve, z1), _mul_point(curve, (x, y), z2), curve.p, curve.a), curve.p)
    return c is not None and c[0] % q == r


def encode_public_key(x: int, y: int) -> bytes:
    """64 bytes x LE || y LE: the OCTET STRING inside an O'zDSt SubjectPublicKeyInfo."""
    if not (0 <= x < 1 << 256 and 0 <= y < 1 << 256):
        raise ValueError("coordinate does not fit in 32 bytes")
    return x.to_bytes(32, "little") + y.to_bytes(32, "little")


def decode_public_key(data: bytes) -> tuple[int, int]:
    """Inverse of encode_public_key; ValueError unless exactly 64 bytes. Does not check the curve."""
    if len(data) != 64:
        raise ValueError(f"O'zDSt public key must be 64 bytes, got {len(data)}")
    return int.from_bytes(data[:32], "little"), int.from_bytes(data[32:], "little")


def generate_private_key(curve: Curve) -> int:
    """A uniformly random scalar 1 <= d < q from the OS CSPRNG."""
    return secrets.randbelow(curve.q - 1) + 1
