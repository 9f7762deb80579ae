"""Batch signing (batch.create_pkcs7): 100 one-kilobyte documents with an O'zDSt key, one confirmation.

Run:  .venv/bin/python bench/bench_batch.py [--runs 10] [--documents 100]

The agent runs as a subprocess and is called over a real WebSocket, as a portal calls it. The askpass program
confirms; it writes the moment it answers (wall clock, shared with this process) just before printing the password.
Measured per run: from that answer to the reply on the socket — opening the key file (PKCS#12 decryption), every
signature, encoding and sending the reply: what the person waits for after confirming (target ≤ 300 ms). Also
shown: the whole call (the agent decodes and fingerprints the documents before asking, and starts askpass).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agent_harness import PASSWORD, mint, start_agent
from timing import isolate_home, print_table

ASKPASS = """#!/bin/sh
d="$(dirname "$0")"
date +%s.%N > "$d/answered"
printf '%s\\n' "$(cat "$d/password")"
"""


def percentile90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--documents", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        pfx = mint(tmp / "ca", tmp / "flash" / "DSKEYS", "ozdst", "--cn", "BENCH OZDST", "--pinfl", "31234567890125")
        askpass = tmp / "askpass"
        askpass.mkdir()
        (askpass / "password").write_text(PASSWORD)
        (askpass / "askpass.sh").write_text(ASKPASS)
        (askpass / "askpass.sh").chmod(0o755)
        agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass",
                            str(askpass / "askpass.sh"), "--log-level", "WARNING")
        try:
            e = next(c for c in agent.call("list_all_certificates", plugin="pfx")["certificates"]
                     if c["name"] == pfx.stem)
            key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
            documents = json.dumps([{"name": f"faktura-{n:03d}.xml",
                                     "data_64": base64.b64encode(os.urandom(1024)).decode()}
                                    for n in range(args.documents)])
            after, whole = [], []
            for run in range(args.runs + 1):  # the first run warms up (imports, tables)
                start = time.time()
                reply = agent.call("create_pkcs7", documents, key_id, "no", plugin="batch")
                end = time.time()
                assert reply["success"] and reply["signed"] == args.documents, reply
                answered = float((askpass / "answered").read_text())
                if run:
                    after.append((end - answered) * 1000)
                    whole.append((end - start) * 1000)
        finally:
            agent.stop()
    rows = [
        ("after the confirmation, to the reply", statistics.median(after), percentile90(after)),
        ("whole call (incl. askpass start)", statistics.median(whole), percentile90(whole)),
    ]
    print_table(f"batch.create_pkcs7, {args.documents} × 1 KB, O'zDSt key, {args.runs} runs (ms)", rows, 1)
    print(f"best after the confirmation: {min(after):.1f} ms (target ≤ 300 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
