"""O'zDSt 1092 / GOST R 34.10-2001 on CryptoPro A/B/C: real E-IMZO signatures, round trips, hostile inputs.

Independent checks: real signatures made by E-IMZO (CMS KAT, national root certificate, vendor API key), the
`gostcrypto` package (MIT, its own EC code) in both directions, and a deliberately naive affine
double-and-add in this file for the scalar multiplications.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import gostcrypto.gostsignature as gostsignature
import pytest
from asn1crypto import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent.crypto import ozdst
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst import CRYPTOPRO_A, CRYPTOPRO_B, CRYPTOPRO_C, CURVES, Curve

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
CMS = KAT["cms_signature_kat"]

# gostcrypto names CryptoPro A/B/C (RFC 4357) by their RFC 7836 aliases, tc26 256-bit paramSets B/C/D.
GOSTCRYPTO_NAMES = {
    CRYPTOPRO_A.name: "id-tc26-gost-3410-2012-256-paramSetB",
    CRYPTOPRO_B.name: "id-tc26-gost-3410-2012-256-paramSetC",
    CRYPTOPRO_C.name: "id-tc26-gost-3410-2012-256-paramSetD",
}


def gostcrypto_for(curve: Curve):
    return gostsignature.new(gostsignature.MODE_256, gostsignature.CURVES_R_1323565_1_024_2019[
        GOSTCRYPTO_NAMES[curve.name]])


def naive_mul(curve: Curve, k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    """Affine double-and-add straight from the group law; None is the point at infinity."""
    p = curve.p

    def add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % p == 0:
            return None
        if a == b:
            slope = (3 * a[0] * a[0] + curve.a) * pow(2 * a[1], -1, p) % p
        else:
            slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
        x = (slope * slope - a[0] - b[0]) % p
        return x, (slope * (a[0] - x) - a[1]) % p

    acc = None
    for bit in bin(k)[2:]:
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, point)
    return acc


def cms_public_key() -> tuple[int, int]:
    return ozdst.decode_public_key(base64.b64decode(CMS["signer_spki_base64"])[-64:])


def cms_digest() -> bytes:
    return gost94_digest(bytes.fromhex(CMS["signed_attrs_der_hex"]))


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# --- curve parameters -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_curve_parameters(curve: Curve) -> None:
    assert curve.a == curve.p - 3
    assert curve.contains(curve.gx, curve.gy)
    assert naive_mul(curve, curve.q, (curve.gx, curve.gy)) is None  # G has order q
    params = gostsignature.CURVES_R_1323565_1_024_2019[GOSTCRYPTO_NAMES[curve.name]]
    assert (params["p"], params["a"], params["b"], params["q"], params["x"], params["y"]) == (
        curve.p, curve.a, curve.b, curve.q, curve.gx, curve.gy)


def test_curve_a_matches_kat() -> None:
    kat = KAT["curve_cryptopro_a"]
    assert tuple(int(kat[k], 16) for k in ("p", "a", "b", "q", "gx", "gy")) == (
        CRYPTOPRO_A.p, CRYPTOPRO_A.a, CRYPTOPRO_A.b, CRYPTOPRO_A.q, CRYPTOPRO_A.gx, CRYPTOPRO_A.gy)


# --- real E-IMZO signatures -------------------------------------------------------------------------------------

def test_cms_kat_verifies() -> None:
    public = cms_public_key()
    assert ozdst.curve_of_point(*public) is CRYPTOPRO_A
    assert cms_digest().hex() == CMS["signed_attrs_hash_hex"]
    assert ozdst.verify_digest(CRYPTOPRO_A, public, cms_digest(), bytes.fromhex(CMS["signature_hex"]))


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_cms_kat_tampered_signature_fails(index: int) -> None:
    signature = flip(bytes.fromhex(CMS["signature_hex"]), index)
    assert not ozdst.verify_digest(CRYPTOPRO_A, cms_public_key(), cms_digest(), signature)


def test_cms_kat_tampered_message_fails() -> None:
    signature = bytes.fromhex(CMS["signature_hex"])
    attrs = bytearray.fromhex(CMS["signed_attrs_der_hex"])
    attrs[-1] ^= 0x01  # last byte of the messageDigest
    assert not ozdst.verify_digest(CRYPTOPRO_A, cms_public_key(), gost94_digest(bytes(attrs)), signature)
    assert not ozdst.verify_digest(CRYPTOPRO_A, cms_public_key(), flip(cms_digest(), 5), signature)
    # byte order matters: the big-endian reading of the digest must not verify
    assert not ozdst.verify_digest(CRYPTOPRO_A, cms_public_key(), cms_digest()[::-1], signature)
    # swapped halves (r || s) must not verify either
    assert not ozdst.verify_digest(CRYPTOPRO_A, cms_public_key(), cms_digest(), signature[32:] + signature[:32])


def test_cms_kat_wrong_key_fails() -> None:
    x, y = ozdst.public_point(CRYPTOPRO_A, 12345)
    assert not ozdst.verify_digest(CRYPTOPRO_A, (x, y), cms_digest(), bytes.fromhex(CMS["signature_hex"]))


def test_national_root_self_signature() -> None:
    cert = x509.Certificate.load(base64.b64decode(KAT["national_root_certificate"]["der_base64"]))
    tbs = cert["tbs_certificate"]
    assert cert["signature_algorithm"]["algorithm"].dotted == "1.2.860.3.15.1.1.2.2.2.2"
    public = ozdst.decode_public_key(tbs["subject_public_key_info"].dump()[-64:])
    assert ozdst.curve_of_point(*public) is CRYPTOPRO_A
    signature = cert["signature_value"].native  # BIT STRING content: s || r
    digest = gost94_digest(tbs.dump())
    assert ozdst.verify_digest(CRYPTOPRO_A, public, digest, signature)
    assert not ozdst.verify_digest(CRYPTOPRO_A, public, gost94_digest(tbs.dump() + b"\x00"), signature)


def test_vendor_api_key_verifies() -> None:
    keys = KAT["eimzo_api_keys"]
    public = (int(keys["vendor_public_key"]["x"], 16), int(keys["vendor_public_key"]["y"], 16))
    signature = bytes.fromhex(keys["keys"]["localhost"])
    assert ozdst.verify_digest(CRYPTOPRO_A, public, gost94_digest(gost94_digest(b"localhost")), signature)
    assert not ozdst.verify_digest(CRYPTOPRO_A, public, gost94_digest(gost94_digest(b"127.0.0.1")), signature)


# --- our own signatures -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_round_trip(curve: Curve) -> None:
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    assert ozdst.curve_of_point(*public) is curve
    digest = gost94_digest(b"document")
    signature = ozdst.sign_digest(curve, d, digest)
    assert len(signature) == 64
    assert ozdst.verify_digest(curve, public, digest, signature)
    assert not ozdst.verify_digest(curve, public, gost94_digest(b"documenT"), signature)
    assert signature != ozdst.sign_digest(curve, d, digest)  # fresh k each time


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_zero_digest_uses_e_equal_one(curve: Curve) -> None:
    # e = 0 mod q is replaced by 1, so the all-zero digest and the digest of q (LE) sign like the digest of 1
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    signature = ozdst.sign_digest(curve, d, bytes(32))
    assert ozdst.verify_digest(curve, public, (1).to_bytes(32, "little"), signature)
    assert ozdst.verify_digest(curve, public, curve.q.to_bytes(32, "little"), signature)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_gostcrypto_verifies_ours(curve: Curve) -> None:
    d = ozdst.generate_private_key(curve)
    x, y = ozdst.public_point(curve, d)
    digest = gost94_digest(b"cross-check")
    s_r = ozdst.sign_digest(curve, d, digest)
    public = bytearray(x.to_bytes(32, "big") + y.to_bytes(32, "big"))
    verifier = gostcrypto_for(curve)
    assert verifier.verify(public, bytearray(digest[::-1]), bytearray(s_r[32:] + s_r[:32]))
    assert not verifier.verify(public, bytearray(digest), bytearray(s_r[32:] + s_r[:32]))


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_ours_verifies_gostcrypto(curve: Curve) -> None:
    d = ozdst.generate_private_key(curve)
    signer = gostcrypto_for(curve)
    raw = signer.public_key_generate(bytearray(d.to_bytes(32, "big")))
    public = (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert public == ozdst.public_point(curve, d)  # independent scalar multiplication agrees
    digest = gost94_digest(b"from gostcrypto")
    r_s = bytes(signer.sign(bytearray(d.to_bytes(32, "big")), bytearray(digest[::-1])))
    assert ozdst.verify_digest(curve, public, digest, r_s[32:] + r_s[:32])


# --- scalar multiplication against the naive reference ------------------------------------------------------------

@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_public_point_edge_scalars(curve: Curve) -> None:
    g = (curve.gx, curve.gy)
    for d in (1, 2, 3, 31, 32, 33, 63, 64, 65, 2**255, curve.q - 2, curve.q - 1):
        assert ozdst.public_point(curve, d) == naive_mul(curve, d, g)
    assert ozdst.public_point(curve, curve.q - 1) == (curve.gx, curve.p - curve.gy)  # -G


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_public_point_rejects_out_of_range(curve: Curve) -> None:
    for d in (0, -1, curve.q, curve.q + 1):
        with pytest.raises(ValueError):
            ozdst.public_point(curve, d)


@settings(max_examples=15, deadline=None)
@given(curve=st.sampled_from(CURVES), k=st.integers(min_value=0, max_value=2**330), seed=st.integers(1, 2**64))
def test_internal_multiplications_agree(curve: Curve, k: int, seed: int) -> None:
    # fixed-base (signed windows, blinded-size scalars) and wNAF (variable point) against the naive ladder
    point = naive_mul(curve, seed, (curve.gx, curve.gy))
    assert point is not None
    expected_base = naive_mul(curve, k, (curve.gx, curve.gy))
    assert ozdst._to_affine(ozdst._mul_base(curve, k), curve.p) == expected_base
    assert ozdst._to_affine(ozdst._mul_point(curve, point, k), curve.p) == naive_mul(curve, k, point)


# --- curve detection and key encoding ---------------------------------------------------------------------------

def test_curve_of_point() -> None:
    for curve in CURVES:
        assert ozdst.curve_of_point(curve.gx, curve.gy) is curve
        x, y = ozdst.public_point(curve, 7)
        assert ozdst.curve_of_point(x, y) is curve
        assert ozdst.curve_of_point(x, (y + 1) % curve.p) is None
        assert ozdst.curve_of_point(x + curve.p, y) is None  # unreduced coordinate
    assert ozdst.curve_of_point(0, 0) is None


def test_public_key_encoding() -> None:
    x, y = cms_public_key()
    raw = base64.b64decode(CMS["signer_spki_base64"])[-64:]
    assert ozdst.encode_public_key(x, y) == raw
    assert raw[:32] == x.to_bytes(32, "little")
    assert ozdst.decode_public_key(ozdst.encode_public_key(1, 2)) == (1, 2)
    for bad in (b"", raw[:63], raw + b"\x00"):
        with pytest.raises(ValueError):
            ozdst.decode_public_key(bad)
    for x_bad, y_bad in ((-1, 0), (0, 2**256)):
        with pytest.raises(ValueError):
            ozdst.encode_public_key(x_bad, y_bad)


def test_generate_private_key_range() -> None:
    for curve in CURVES:
        keys = {ozdst.generate_private_key(curve) for _ in range(50)}
        assert len(keys) == 50
        assert all(0 < d < curve.q for d in keys)


# --- hostile inputs: False, never an exception --------------------------------------------------------------------

def test_verify_bad_inputs_return_false() -> None:
    public = cms_public_key()
    digest = cms_digest()
    good = bytes.fromhex(CMS["signature_hex"])
    q = CRYPTOPRO_A.q
    s, r = good[:32], good[32:]
    be = lambda n: n.to_bytes(32, "big")  # noqa: E731
    bad_signatures = [
        s + be(0), be(0) + r,  # r = 0, s = 0
        s + be(q), be(q) + r,  # r = q, s = q
        be(q + 1) + r, be(2**256 - 1) + r, s + be(2**256 - 1),  # s, r > q
        good[:63], good + b"\x00", b"", None, "text", 12,
    ]
    for signature in bad_signatures:
        assert ozdst.verify_digest(CRYPTOPRO_A, public, digest, signature) is False  # type: ignore[arg-type]
    off_curve = (public[0], (public[1] + 1) % CRYPTOPRO_A.p)
    for bad_public in (off_curve, (0, 0), (public[0] + CRYPTOPRO_A.p, public[1]), (public[0],), None, ("1", "2"),
                       (float(public[0]), public[1])):
        assert ozdst.verify_digest(CRYPTOPRO_A, bad_public, digest, good) is False  # type: ignore[arg-type]
    for bad_digest in (digest[:31], digest + b"\x00", b"", None):
        assert ozdst.verify_digest(CRYPTOPRO_A, public, bad_digest, good) is False  # type: ignore[arg-type]
    # right key, wrong curve: the point is not on CryptoPro-B
    assert ozdst.verify_digest(CRYPTOPRO_B, public, digest, good) is False
    # the valid signature still verifies as bytearray / memoryview
    assert ozdst.verify_digest(CRYPTOPRO_A, public, bytearray(digest), memoryview(good))


def test_sign_rejects_bad_inputs() -> None:
    digest = cms_digest()
    for d in (0, CRYPTOPRO_C.q, -5):
        with pytest.raises(ValueError):
            ozdst.sign_digest(CRYPTOPRO_C, d, digest)
    for bad in (digest[:31], digest + b"\x00"):
        with pytest.raises(ValueError):
            ozdst.sign_digest(CRYPTOPRO_C, 5, bad)
