"""End-to-end `create_pkcs7` of a large document through the running agent: O'zDSt beside P-256.

Run:  .venv/bin/python bench/bench_ozdst_cms.py [--calls 20] [--megabytes 10]

Each call is what a portal pays: new socket, Base64 document in, askpass, PKCS#12 MAC + key decryption, the
content hash (GOST R 34.11-94 in pure Python for O'zDSt, SHA-256 in OpenSSL for P-256), the signature, the CMS,
Base64 out. Prints the median and p90 over N calls, plus the raw hash time of the same document, which is where
an O'zDSt signature of a big document spends its time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agent_harness import make_askpass, mint, start_agent
from timing import isolate_home, measure, print_table

from eimzo_agent.crypto.gost94 import gost94_digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--megabytes", type=float, default=10)
    args = parser.parse_args()
    document = os.urandom(int(args.megabytes * 1024 * 1024))
    document_64 = base64.b64encode(document).decode()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        keys = {
            "O'zDSt": mint(tmp / "ca", tmp / "flash", "ozdst", "--cn", "BENCH OZDST", "--pinfl", "31234567890125"),
            "P-256": mint(tmp / "ca", tmp / "flash", "p256", "--cn", "BENCH EC", "--pinfl", "31234567890124"),
        }
        askpass = make_askpass(tmp)
        agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program),
                            "--log-level", "WARNING")
        try:
            entries = agent.call("list_all_certificates", plugin="pfx")["certificates"]
            for label, pfx in keys.items():
                e = next(c for c in entries if c["name"] == pfx.stem)
                key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]

                def sign(key_id: str = key_id) -> None:
                    reply = agent.call("create_pkcs7", document_64, key_id, "no", plugin="pkcs7", timeout=600)
                    assert reply["success"], reply

                rows.append((f"create_pkcs7 via agent, {label}", *measure(sign, args.calls)))
        finally:
            agent.stop()
    rows.append(("raw hash in-process, GOST R 34.11-94", *measure(lambda: gost94_digest(document), 3)))
    rows.append(("raw hash in-process, SHA-256", *measure(lambda: hashlib.sha256(document).digest(), 3)))
    print_table(f"create_pkcs7 of a {args.megabytes:g} MB document, {args.calls} calls each (ms)", rows, decimals=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
