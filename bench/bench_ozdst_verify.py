"""O'zDSt signature checks: OpenSSL's libcrypto path beside the pure-Python path, in one run.

Run:  .venv/bin/python bench/bench_ozdst_verify.py [--runs 500] [--seconds 3] [--logins 200]

Prints, per CryptoPro curve, verify_digest's median and p90 ms with libcrypto and with pure Python (the two
alternate in blocks of 50 calls, so both see the same machine load); verifications per second with 1 and 2
threads on the libcrypto path (ctypes drops the GIL during the C call, so a second thread should add throughput);
and one portal login's check — `pkcs7_info` of an O'zDSt-signed challenge minted by the dev CA (two signature
checks: the signer's and the CA's) — both ways, alternating the same way (`--logins 0` skips it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from timing import isolate_home

from eimzo_agent.crypto import ozdst, ozdst_libcrypto
from eimzo_agent.crypto.cms import create_pkcs7
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.pkcs7_info import pkcs7_info

BLOCK = 50


def side_by_side(check: Callable[[], bool], runs: int) -> dict[str, list[float]]:
    """ms per call of `check` with libcrypto and with pure Python, alternating blocks; every call must succeed."""
    samples: dict[str, list[float]] = {"libcrypto": [], "pure Python": []}
    for enabled in (True, False):  # warm-up: library, tables
        ozdst_libcrypto.set_enabled(enabled)
        assert check()
    while len(samples["pure Python"]) < runs:
        for name, enabled in (("libcrypto", True), ("pure Python", False)):
            ozdst_libcrypto.set_enabled(enabled)
            for _ in range(min(BLOCK, runs)):
                start = time.perf_counter()
                ok = check()
                samples[name].append((time.perf_counter() - start) * 1000)
                assert ok
    ozdst_libcrypto.set_enabled(True)
    return samples


def verify_check(curve: ozdst.Curve) -> Callable[[], bool]:
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    digest = gost94_digest(b"benchmark login challenge")
    signature = ozdst.sign_digest(curve, d, digest)
    return lambda: ozdst.verify_digest(curve, public, digest, signature)


def login_check(tmp: Path) -> Callable[[], bool]:
    """pkcs7_info of a login as the portal checks it: attached CMS over a challenge line, the dev CA as anchor."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from agent_harness import PASSWORD, mint

    from eimzo_agent.keys.pkcs12 import open_pfx

    isolate_home(tmp)
    key = open_pfx(mint(tmp / "ca", tmp / "keys", "ozdst", "--cn", "BENCH OZDST").read_bytes(), PASSWORD)
    anchor = (tmp / "ca" / "ozdst" / "ca.crt.pem").read_bytes()
    anchors = [x509.load_pem_x509_certificate(anchor).public_bytes(serialization.Encoding.DER)]
    challenge = b"eimzo-login v1 origin=https://portal.example.uz issued=20261202T120000Z nonce=" + b"A" * 43
    cms = create_pkcs7(challenge, key.signer, detached=False, signed_attributes="eimzo").cms_der

    def check() -> bool:
        signer = pkcs7_info(cms, anchors=anchors)["signers"][0]
        return bool(signer["verified"] and signer["certificateVerified"])

    return check


def throughput(threads: int, seconds: float) -> float:
    curve = ozdst.CRYPTOPRO_A
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    digest = gost94_digest(b"throughput")
    signature = ozdst.sign_digest(curve, d, digest)
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < stop:
            assert ozdst.verify_digest(curve, public, digest, signature)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--logins", type=int, default=200)
    args = parser.parse_args()
    if not ozdst_libcrypto.available():
        raise SystemExit("libcrypto not found or switched off (EIMZO_AGENT_PURE_PYTHON): nothing to compare")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    print(f"verify_digest, {args.runs} calls each        median ms   p90 ms")
    for curve in ozdst.CURVES:
        for name, values in side_by_side(verify_check(curve), args.runs).items():
            print(f"  {curve.name + ', ' + name:<36}{statistics.median(values):9.3f} {p90(values):8.3f}")
    for threads in (1, 2):
        print(f"libcrypto, CryptoPro-A, {threads} thread(s): {throughput(threads, args.seconds):8.0f} verifications/s")
    if args.logins:
        print(f"one login's pkcs7_info (2 O'zDSt checks), {args.logins} calls each")
        with tempfile.TemporaryDirectory(prefix="bench-ozdst-verify-") as tmp:
            for name, values in side_by_side(login_check(Path(tmp)), args.logins).items():
                print(f"  {name:<36}{statistics.median(values):9.3f} {p90(values):8.3f}")


if __name__ == "__main__":
    main()
