"""Speed of the O'zDSt primitives: the 1106 hash (C accelerator and pure Python) and 1092 sign/verify.

Run:  .venv/bin/python bench/bench_ozdst.py [--runs 200] [--mb 10]

Prints, from this one run:
  * gost94 throughput in MB/s: the C path on --mb MB, the pure-Python path on 256 KB, each beside librhash
    (Debian librhash0, C) on the same data; best of 5 passes,
  * sign_digest / verify_digest on curve CryptoPro-A: median and p90 ms over --runs calls,
    beside the `gostcrypto` package (pure Python, affine) for scale when it is installed.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import platform
import time
from collections.abc import Callable

from timing import measure

from eimzo_agent.crypto import gost94, ozdst
from eimzo_agent.crypto.gost94 import PurePythonGost94

RHASH_GOST94_CRYPTOPRO = 0x1000


def librhash() -> Callable[[bytes], bytes] | None:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("rhash") or "librhash.so.0")
    except OSError:
        return None
    lib.rhash_library_init()
    lib.rhash_msg.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]

    def digest(data: bytes) -> bytes:
        out = ctypes.create_string_buffer(64)
        lib.rhash_msg(RHASH_GOST94_CRYPTOPRO, data, len(data), out)
        return out.raw[:32]

    return digest


def throughput(fn: Callable[[bytes], bytes], data: bytes, passes: int = 5) -> float:
    """Best MB/s of a few passes (the least disturbed one)."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        fn(data)
        best = min(best, time.perf_counter() - start)
    return len(data) / best / 1e6


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_hash(mb: int) -> None:
    rhash = librhash()
    big = os.urandom(mb * 1024 * 1024)
    small = big[: 256 * 1024]
    rhash_note = "librhash not found (apt install librhash0)"
    print("O'zDSt 1106 hash (GOST R 34.11-94 CryptoPro)")
    if gost94.ACCELERATED:
        from eimzo_agent.crypto import _gost94

        line = f"  {f'C accelerator, {mb} MB':<28}{throughput(_gost94.digest, big):8.2f} MB/s"
        if rhash is not None:
            assert rhash(big) == _gost94.digest(big)
            rhash_note = f"librhash {throughput(rhash, big):.2f} MB/s"
        print(f"{line}   ({rhash_note})")
    else:
        print("  C accelerator: not built / disabled (EIMZO_AGENT_PURE_PYTHON)")
    line = f"  {'pure Python, 256 KB':<28}{throughput(lambda d: PurePythonGost94(d).digest(), small, 3):8.2f} MB/s"
    if rhash is not None:
        rhash_note = f"librhash {throughput(rhash, small):.2f} MB/s"
    print(f"{line}   ({rhash_note})")


def bench_signature(runs: int) -> None:
    curve = ozdst.CRYPTOPRO_A
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    digest = gost94.gost94_digest(b"benchmark document")
    signature = ozdst.sign_digest(curve, d, digest)
    print(f"O'zDSt 1092 (GOST R 34.10-2001) on {curve.name}, {runs} runs     median ms   p90 ms")
    for label, fn in (("sign_digest", lambda: ozdst.sign_digest(curve, d, digest)),
                      ("verify_digest", lambda: ozdst.verify_digest(curve, public, digest, signature))):
        median, p90 = measure(fn, runs)
        print(f"  {label:<52}{median:8.3f} {p90:8.3f}")
    try:
        import gostcrypto.gostsignature as gs
    except ImportError:
        return
    other = gs.new(gs.MODE_256, gs.CURVES_R_1323565_1_024_2019["id-tc26-gost-3410-2012-256-paramSetB"])
    key, rev = bytearray(d.to_bytes(32, "big")), bytearray(digest[::-1])
    pub = bytearray(public[0].to_bytes(32, "big") + public[1].to_bytes(32, "big"))
    r_s = bytearray(signature[32:] + signature[:32])
    few = max(10, runs // 10)
    for label, fn in ((f"gostcrypto sign (for scale, {few} runs)", lambda: other.sign(key, rev)),
                      (f"gostcrypto verify (for scale, {few} runs)", lambda: other.verify(pub, rev, r_s))):
        median, p90 = measure(fn, few)
        print(f"  {label:<52}{median:8.3f} {p90:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    bench_hash(args.mb)
    bench_signature(args.runs)


if __name__ == "__main__":
    main()
