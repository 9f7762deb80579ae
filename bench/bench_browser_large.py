"""A large document's O'zDSt signature as a portal's page sees it: Chromium's own WebSocket, against the C hash alone.

Run:  .venv/bin/python bench/bench_browser_large.py [--megabytes 10] [--calls 20] [--rss-calls 0]

bench/bench_large.py measures the end-to-end target (issue 14: a 10 MB create_pkcs7 ≤ 1.5× the C O'zDSt hash of the
same bytes) with Python clients, whose own work on the 13.6 MB each way (masking, assembling the reply's fragments,
json.loads) runs on the same two cores as the agent. Here the client is what portals really use: a page in Debian's
Chromium (bench/browser_large.mjs, driven by playwright-core) opens a new WebSocket, sends the request e-imzo.js
would send and JSON.parse's the reply in onmessage; the time is the page's own (performance.now). The key is
remembered for the page's origin (the askpass answers once), so what is measured is the document's way through the
agent. The hash alone is timed in this process between the calls (this VM's speed drifts), median of the calls.
Also the agent's memory as bench_large.py reports it (issue 14: ≤ idle + 60 MB after 200 signatures of 10 MB), here
for a browser's requests, which come as fragments: idle (after start and 20 `version` calls), after the timed calls
and `--rss-calls` more, after the idle trim, and the highest (VmHWM).

Needs node, /usr/bin/chromium and playwright-core (scripts/bootstrap.sh --test installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_large import idle_rss, rss_settled
from remembered_key import start_remembering_agent
from timing import isolate_home

from eimzo_agent.crypto import gost94
from eimzo_agent.server import memory

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rss-calls", type=int, default=0, help="signatures after the timed ones, before the RSS")
    args = parser.parse_args()
    document = os.urandom(int(args.megabytes * 1024 * 1024))  # for the hash alone (the page makes its own)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        os.environ["TMPDIR"] = str(tmp)  # Chromium's profile folder too
        agent, pfx = start_remembering_agent(tmp)
        try:
            idle = idle_rss(agent)
            key_id = agent.load_key(pfx)
            config = tmp / "config.json"
            config.write_text(json.dumps({"port": agent.port, "origin": agent.origin, "keyId": key_id,
                                          "megabytes": args.megabytes}))
            node = subprocess.Popen(["node", str(REPO / "bench" / "browser_large.mjs"), str(config)], cwd=REPO,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert node.stdin is not None and node.stdout is not None

            phases: list[dict[str, float]] = []

            def sign() -> float:
                node.stdin.write("sign\n")  # type: ignore[union-attr]
                node.stdin.flush()  # type: ignore[union-attr]
                line = node.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError(f"the browser part stopped; the agent's log:\n{agent.log()[-3000:]}")
                result = json.loads(line)
                phases.append(result)
                return float(result["ms"])

            try:
                sign()
                sign()  # the password question, then one warm call
                samples, hash_samples = [], []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    gost94.gost94_digest(document)
                    hash_samples.append((time.perf_counter() - start) * 1000)
                    samples.append(sign())
                for _ in range(args.rss_calls):
                    sign()
                after, after_idle, peak = rss_settled(agent.process.pid)
            finally:
                if node.poll() is None:
                    node.stdin.write("quit\n")
                    node.stdin.close()
                node.wait(60)
        finally:
            agent.stop()
    mb = f"{args.megabytes:g} MB"
    end_to_end, hash_ms = statistics.median(samples), statistics.median(hash_samples)
    print(f"O'zDSt 1106 hash alone, C, {mb}, median of {args.calls} between the calls   {hash_ms:8.1f} ms")
    print(f"create_pkcs7 from a Chromium page, new WebSocket to JSON.parse'd reply, {mb}, median of {args.calls}  "
          f"{end_to_end:8.1f} ms   = {end_to_end / hash_ms:.2f} x the hash (target <= 1.5)")
    ratios = sorted(s / h for s, h in zip(samples, hash_samples, strict=True))
    print(f"  per call, against the hash timed just before it: best {ratios[0]:.2f} x, median "
          f"{statistics.median(ratios):.2f} x, worst {ratios[-1]:.2f} x")
    measured = phases[-args.calls:]

    def phase(name: str) -> float:
        return statistics.median(p[name] for p in measured)

    print(f"  where the page's time goes (medians, ms since the call began): socket open {phase('opened'):.0f}, "
          f"send() returned {phase('sent'):.0f}, bufferedAmount back to 0 {phase('uploaded'):.0f}, "
          f"message {phase('message'):.0f}, parsed {phase('ms'):.0f}")
    signed = 2 + args.calls + args.rss_calls
    print(f"agent RSS idle {idle:.1f} MB; after {signed} signatures of {mb} from the page: {after:.1f} MB "
          f"(+{after - idle:.1f}, target <= +60); {memory.IDLE_SECONDS + 1:g} s later {after_idle:.1f} MB "
          f"(+{after_idle - idle:.1f}); highest (VmHWM) {peak:.1f} MB (+{peak - idle:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
