"""The O'zDSt 1106 hash as each of our packages compiles it, beside librhash, in one run.

Run:  .venv/bin/python bench/bench_gost94_builds.py [--rounds 5] [--mb 10] [--against REV]

Why: the C core's speed depends on the compiler's flags more than on the machine. A wheel built by a Python whose
CFLAGS say -O2 (Debian's and Ubuntu's python3, so our .deb), and the Windows DLL (mingw-w64), do not get the -O3
of the Python the other benches run on. This compiles bench/gost94_speed.c with eimzo_agent/crypto/gost94_core.c
at -O2 and -O3 with gcc, and with mingw-w64 run under Wine when both are installed; `--against REV` adds the core
of another commit (e.g. the one before a change) built the same ways. The builds run in turn, `--rounds` times,
each taking the best of 5 passes over the same `--mb` MB; librhash (Debian librhash0) is timed in this process in
the same rounds. Prints the median and best MB/s of each, and checks that all builds give the same digest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_ozdst import librhash, throughput

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "bench" / "gost94_speed.c"
CRYPTO = ROOT / "eimzo_agent" / "crypto"
WINE = shutil.which("wine64") or next((str(p) for p in (Path("/usr/lib/wine/wine64"),) if p.exists()), None)


def harness_input(data_bytes: int) -> bytes:
    """The bytes the C harness hashes, for librhash to hash the same."""
    return bytes((i * 131 + 7) & 0xFF for i in range(256)) * (data_bytes // 256) + bytes(
        (i * 131 + 7) & 0xFF for i in range(data_bytes % 256))


def build(work: Path, label: str, core_dir: Path, compiler: str, flags: str) -> list[str] | None:
    """Compile the harness with the core in `core_dir`; the command that runs it, or None without the compiler."""
    if shutil.which(compiler) is None:
        return None
    windows = "mingw" in compiler
    out = work / (label.replace(" ", "_").replace("/", "_") + (".exe" if windows else ""))
    extra = ["-static-libgcc"] if windows else []
    subprocess.run([compiler, *flags.split(), "-I", str(core_dir), "-o", str(out), str(HARNESS),
                    str(core_dir / "gost94_core.c"), *extra], check=True)
    if not windows:
        return [str(out)]
    return [WINE, str(out)] if WINE else None


def core_of(rev: str, work: Path) -> Path:
    folder = work / f"core-{rev}"
    folder.mkdir()
    for name in ("gost94_core.c", "gost94_core.h"):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:eimzo_agent/crypto/{name}"], check=True,
                              capture_output=True).stdout
        (folder / name).write_bytes(text)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--against", metavar="REV", help="also build gost94_core.c of this commit")
    args = parser.parse_args()
    data_bytes = args.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "WINEDEBUG": "-all", "WINEPREFIX": str(work / "wine")}
        cores = [("now", CRYPTO)] + ([(args.against, core_of(args.against, work))] if args.against else [])
        builds: dict[str, list[str]] = {}
        for name, folder in cores:
            for compiler, flags, what in (("gcc", "-O2", "gcc -O2"), ("gcc", "-O3", "gcc -O3"),
                                          ("x86_64-w64-mingw32-gcc", "-O2", "mingw -O2, Wine"),
                                          ("x86_64-w64-mingw32-gcc", "-O3", "mingw -O3, Wine")):
                command = build(work, f"{name} {what}", folder, compiler, flags)
                if command is not None:
                    builds[f"{name}: {what}"] = command
                else:
                    print(f"skipped {name}: {what} ({compiler} or Wine missing)")
        rhash = librhash()
        data = harness_input(data_bytes) if rhash else b""
        speeds: dict[str, list[float]] = {label: [] for label in builds}
        digests: dict[str, set[str]] = {label: set() for label in builds}
        rhash_speeds: list[float] = []
        for _ in range(args.rounds):
            for label, command in builds.items():
                line = subprocess.run([*command, str(data_bytes), "5"], check=True, capture_output=True, text=True,
                                      env=env).stdout.split()
                speeds[label].append(float(line[0]))
                digests[label].add(line[1])
            if rhash:
                rhash_speeds.append(throughput(rhash, data))
        if rhash:
            expected = rhash(data)[:8].hex()
            wrong = [label for label, seen in digests.items() if seen != {expected}]
            if wrong:
                print("DIGEST MISMATCH against librhash:", ", ".join(wrong))
                return 1
        elif len({d for seen in digests.values() for d in seen}) > 1:
            print("DIGEST MISMATCH between builds")
            return 1
        print(f"O'zDSt 1106 hash of {args.mb} MB, MB/s over {args.rounds} rounds (each the best of 5 passes)")
        print(f"{'':34} {'median':>8} {'best':>8}")
        for label, values in speeds.items():
            print(f"{label:34} {statistics.median(values):8.1f} {max(values):8.1f}")
        if rhash_speeds:
            print(f"{'librhash (in this process)':34} {statistics.median(rhash_speeds):8.1f} {max(rhash_speeds):8.1f}")
        else:
            print("librhash not found: install librhash0 to compare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
