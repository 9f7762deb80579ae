"""O'zDSt verification through OpenSSL's libcrypto (crypto/ozdst_libcrypto.py) against the pure-Python path.

Oracles: the pure-Python verifier and point arithmetic of `ozdst` (itself checked against a naive ladder in
test_ozdst.py), real E-IMZO signatures (KAT), and the independent `gostcrypto` package. `call_count()` shows
whether libcrypto did the work, so a test cannot pass by silently falling back to Python.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import gostcrypto.gostsignature as gostsignature
import pytest
from asn1crypto import x509

from eimzo_agent.crypto import ozdst, ozdst_libcrypto
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst import CRYPTOPRO_A, CRYPTOPRO_B, CRYPTOPRO_C, CURVES, Curve

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
CMS = KAT["cms_signature_kat"]
GOSTCRYPTO_NAMES = {  # CryptoPro A/B/C (RFC 4357) = tc26 256-bit paramSets B/C/D (RFC 7836)
    CRYPTOPRO_A.name: "id-tc26-gost-3410-2012-256-paramSetB",
    CRYPTOPRO_B.name: "id-tc26-gost-3410-2012-256-paramSetC",
    CRYPTOPRO_C.name: "id-tc26-gost-3410-2012-256-paramSetD",
}


@pytest.fixture(autouse=True)
def libcrypto_on() -> Iterator[None]:
    ozdst_libcrypto.set_enabled(True)
    yield
    ozdst_libcrypto.set_enabled(True)


def via_libcrypto(curve: Curve, public: tuple[int, int], digest: bytes, signature: bytes) -> bool:
    """verify_digest, asserting that libcrypto computed the answer."""
    before = ozdst_libcrypto.call_count()
    answer = ozdst.verify_digest(curve, public, digest, signature)
    assert ozdst_libcrypto.call_count() == before + 1
    return answer


def via_python(curve: Curve, public: tuple[int, int], digest: bytes, signature: bytes) -> bool:
    ozdst_libcrypto.set_enabled(False)
    try:
        before = ozdst_libcrypto.call_count()
        answer = ozdst.verify_digest(curve, public, digest, signature)
        assert ozdst_libcrypto.call_count() == before
        return answer
    finally:
        ozdst_libcrypto.set_enabled(True)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_libcrypto_is_found() -> None:
    # Debian/Ubuntu always have libcrypto.so.3 (the openssl package); without it the portal target is out of reach
    assert ozdst_libcrypto.available()


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_agrees_with_python_on_our_signatures(curve: Curve) -> None:
    for n in range(4):
        d = ozdst.generate_private_key(curve)
        public = ozdst.public_point(curve, d)
        digest = secrets.token_bytes(32)
        signature = ozdst.sign_digest(curve, d, digest)
        assert via_libcrypto(curve, public, digest, signature) is True
        assert via_python(curve, public, digest, signature) is True
        other = ozdst.public_point(curve, d % (curve.q - 1) + 1)
        for bad_sig, bad_digest, bad_public in (
            (flip(signature, n * 9), digest, public),  # s changed
            (flip(signature, 32 + n * 9), digest, public),  # r changed
            (signature, flip(digest, n * 7), public),
            (signature, digest, other),  # another key of the same curve
        ):
            assert via_libcrypto(curve, bad_public, bad_digest, bad_sig) is False
            assert via_python(curve, bad_public, bad_digest, bad_sig) is False


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_combination_is_the_python_point(curve: Curve) -> None:
    # z1*G + z2*Q for random scalars: libcrypto must land on the x coordinate the Python arithmetic computes
    q = curve.q
    public = ozdst.public_point(curve, secrets.randbelow(q - 1) + 1)
    for _ in range(5):
        z1, z2 = secrets.randbelow(q - 1) + 1, secrets.randbelow(q - 1) + 1
        point = ozdst._to_affine(ozdst._add(ozdst._mul_base(curve, z1), ozdst._mul_point(curve, public, z2),
                                            curve.p, curve.a), curve.p)
        assert point is not None
        r = point[0] % q
        assert ozdst_libcrypto.combination_matches(curve, public, z1, z2, r) is True
        assert ozdst_libcrypto.combination_matches(curve, public, z1, z2, (r + 1) % q) is False
        assert ozdst_libcrypto.combination_matches(curve, public, z2, z1, r) is False
    # z1*G + z2*G with z1 + z2 = q is the point at infinity: never a match
    g = (curve.gx, curve.gy)
    assert ozdst_libcrypto.combination_matches(curve, g, 5, q - 5, 0) is False


def test_eimzo_kats_verify_through_libcrypto() -> None:
    public = ozdst.decode_public_key(base64.b64decode(CMS["signer_spki_base64"])[-64:])
    digest = gost94_digest(bytes.fromhex(CMS["signed_attrs_der_hex"]))
    signature = bytes.fromhex(CMS["signature_hex"])
    assert via_libcrypto(CRYPTOPRO_A, public, digest, signature)
    assert not via_libcrypto(CRYPTOPRO_A, public, flip(digest, 3), signature)
    assert not via_libcrypto(CRYPTOPRO_A, public, digest[::-1], signature)  # the digest is read little-endian
    assert not via_libcrypto(CRYPTOPRO_A, public, digest, signature[32:] + signature[:32])  # s || r, not r || s

    cert = x509.Certificate.load(base64.b64decode(KAT["national_root_certificate"]["der_base64"]))
    tbs = cert["tbs_certificate"]
    root_public = ozdst.decode_public_key(tbs["subject_public_key_info"].dump()[-64:])
    root_signature = cert["signature_value"].native
    assert via_libcrypto(CRYPTOPRO_A, root_public, gost94_digest(tbs.dump()), root_signature)
    assert not via_libcrypto(CRYPTOPRO_A, root_public, gost94_digest(tbs.dump() + b"\x00"), root_signature)

    keys = KAT["eimzo_api_keys"]
    vendor = (int(keys["vendor_public_key"]["x"], 16), int(keys["vendor_public_key"]["y"], 16))
    api_signature = bytes.fromhex(keys["keys"]["localhost"])
    assert via_libcrypto(CRYPTOPRO_A, vendor, gost94_digest(gost94_digest(b"localhost")), api_signature)
    assert not via_libcrypto(CRYPTOPRO_A, vendor, gost94_digest(gost94_digest(b"127.0.0.1")), api_signature)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_gostcrypto_signatures_verify_through_libcrypto(curve: Curve) -> None:
    signer = gostsignature.new(gostsignature.MODE_256,
                               gostsignature.CURVES_R_1323565_1_024_2019[GOSTCRYPTO_NAMES[curve.name]])
    for message in (b"first", b"second"):
        d = ozdst.generate_private_key(curve)
        raw = signer.public_key_generate(bytearray(d.to_bytes(32, "big")))
        public = (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        digest = gost94_digest(message)
        r_s = bytes(signer.sign(bytearray(d.to_bytes(32, "big")), bytearray(digest[::-1])))
        assert via_libcrypto(curve, public, digest, r_s[32:] + r_s[:32])
        assert not via_libcrypto(curve, public, gost94_digest(message + b"."), r_s[32:] + r_s[:32])


def test_malformed_inputs_are_refused_before_libcrypto() -> None:
    curve = CRYPTOPRO_A
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    digest = gost94_digest(b"m")
    good = ozdst.sign_digest(curve, d, digest)
    s, r, q = good[:32], good[32:], curve.q

    def be(n: int) -> bytes:
        return n.to_bytes(32, "big")

    cases: list[tuple[Curve, object, object, object]] = [
        (curve, public, digest, s + be(0)), (curve, public, digest, be(0) + r),
        (curve, public, digest, s + be(q)), (curve, public, digest, be(q) + r),
        (curve, public, digest, be(2**256 - 1) + r),
        (curve, public, digest, good[:63]), (curve, public, digest, good + b"\x00"), (curve, public, digest, None),
        (curve, public, digest[:31], good), (curve, public, digest + b"\x00", good), (curve, public, None, good),
        (curve, (public[0], (public[1] + 1) % curve.p), digest, good),  # not on the curve
        (curve, (public[0] + curve.p, public[1]), digest, good),  # unreduced coordinate
        (curve, (0, 0), digest, good), (curve, (public[0],), digest, good), (curve, None, digest, good),
        (CRYPTOPRO_B, public, digest, good),  # a point of curve A offered as a key on curve B
    ]
    before = ozdst_libcrypto.call_count()
    for case_curve, case_public, case_digest, case_signature in cases:
        assert ozdst.verify_digest(case_curve, case_public, case_digest, case_signature) is False  # type: ignore[arg-type]
    assert ozdst_libcrypto.call_count() == before
    assert via_libcrypto(curve, public, digest, good)


def test_off_curve_point_given_straight_to_libcrypto_is_false() -> None:
    # the binding's own guard: OpenSSL refuses the point, the answer is False (and no exception, no crash)
    x, y = ozdst.public_point(CRYPTOPRO_C, 99)
    assert ozdst_libcrypto.combination_matches(CRYPTOPRO_C, (x, (y + 1) % CRYPTOPRO_C.p), 3, 4, 5) is False
    assert ozdst_libcrypto.combination_matches(CRYPTOPRO_C, (x, y), 3, 4, 5) is False


def test_fallback_switched_off_in_process_and_by_environment() -> None:
    curve = CRYPTOPRO_B
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    digest = gost94_digest(b"fallback")
    signature = ozdst.sign_digest(curve, d, digest)
    ozdst_libcrypto.set_enabled(False)
    assert not ozdst_libcrypto.available()
    assert ozdst_libcrypto.combination_matches(curve, public, 1, 2, 3) is None
    assert via_python(curve, public, digest, signature)
    assert not via_python(curve, public, flip(digest, 0), signature)
    ozdst_libcrypto.set_enabled(True)
    assert ozdst_libcrypto.available()

    script = (
        "import sys; from eimzo_agent.crypto import ozdst, ozdst_libcrypto as L\n"
        f"c = ozdst.{curve.name.replace('CryptoPro-', 'CRYPTOPRO_')}\n"
        f"ok = ozdst.verify_digest(c, ({public[0]}, {public[1]}), bytes.fromhex('{digest.hex()}'),"
        f" bytes.fromhex('{signature.hex()}'))\n"
        "print(L.available(), ok, L.call_count())\n"
    )
    env = {**os.environ, "EIMZO_AGENT_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "True", "0"]


def test_many_threads_at_once() -> None:
    cases = []
    for curve in CURVES:
        for _ in range(3):
            d = ozdst.generate_private_key(curve)
            public = ozdst.public_point(curve, d)
            digest = secrets.token_bytes(32)
            signature = ozdst.sign_digest(curve, d, digest)
            cases.append((curve, public, digest, signature, True))
            cases.append((curve, public, flip(digest, 1), signature, False))
    start = threading.Barrier(8)
    wrong: list[object] = []
    before = ozdst_libcrypto.call_count()

    def worker(seed: int) -> None:
        start.wait()
        for i in range(60):
            curve, public, digest, signature, expected = cases[(seed * 7 + i) % len(cases)]
            if ozdst.verify_digest(curve, public, digest, signature) is not expected:
                wrong.append((curve.name, expected))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert wrong == []
    assert ozdst_libcrypto.call_count() > before  # libcrypto did the work (the counter may miss racing updates)
