"""Latency of the agent as portals see it, beside the raw cost of the cryptography underneath.

Run:  .venv/bin/python bench/bench_agent.py [--calls 200]

Prints medians (and p90) over N calls made in this one run:
  * round trip of one `version` call on a new socket (what every e-imzo.js call pays),
  * create_pkcs7 through the agent for RSA-2048 and P-256 keys (askpass, PKCS#12 decryption, CMS, signature),
  * the raw `cryptography` signature of the same keys (what the agent adds on top is the difference).
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agent_harness import PASSWORD, make_askpass, mint, start_agent
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from timing import isolate_home, measure, print_table


def raw_sign(pfx: Path) -> Callable[[], object]:
    key, _, _ = pkcs12.load_key_and_certificates(pfx.read_bytes(), PASSWORD.encode())
    message = b"x" * 200  # about the size of CMS signed attributes
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return lambda: key.sign(message, ec.ECDSA(hashes.SHA256()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        keys = {
            "RSA-2048": mint(tmp / "ca", tmp / "flash" / "DSKEYS", "rsa2048", "--cn", "BENCH RSA", "--pinfl",
                             "31234567890123"),
            "P-256": mint(tmp / "ca", tmp / "flash" / "DSKEYS", "p256", "--cn", "BENCH EC", "--pinfl",
                          "31234567890124"),
        }
        askpass = make_askpass(tmp)
        agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program),
                            "--log-level", "WARNING")
        try:
            rows = [("round trip: new socket + version", *measure(lambda: agent.call("version"), args.calls))]
            entries = agent.call("list_all_certificates", plugin="pfx")["certificates"]
            document = base64.b64encode(b"Shartnoma " * 100).decode()
            for label, pfx in keys.items():
                e = next(c for c in entries if c["name"] == pfx.stem)
                key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]

                def sign(key_id: str = key_id) -> None:
                    reply = agent.call("create_pkcs7", document, key_id, "no", plugin="pkcs7")
                    assert reply["success"], reply

                rows.append((f"create_pkcs7 via agent, {label}", *measure(sign, args.calls)))
                rows.append((f"raw cryptography sign, {label}", *measure(raw_sign(pfx), args.calls)))
        finally:
            agent.stop()
    print_table(f"eimzo-agent latency, {args.calls} calls each (ms)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
