"""Large documents (issue 14): end-to-end O'zDSt signing against the hash alone, other pages' latency meanwhile,
and the agent's memory.

Run:  .venv/bin/python bench/bench_large.py [--megabytes 10] [--calls 20] [--rss-calls 200]

All through the real agent over real WebSockets (a new socket per call, as e-imzo.js does), with the key
remembered for the site (the askpass program answers `remember=…` once), so what is measured is the document's
way through the agent, not the password question:
  * create_pkcs7 of an N MB document with an O'zDSt key, median over --calls, beside the C O'zDSt 1106 hash of the
    same bytes in-process (best of 5); target: end to end ≤ 1.5 × the hash; and the agent's own page faults and
    CPU per call meanwhile; then the same with bench/lean_client.py up to the whole reply (no thread of its own,
    as a browser's C++ code: the Python client's own copies of 2 × 13.6 MB are not the agent's);
  * a second client's `version` round trips (new socket each) while the first signs N MB documents in a loop:
    p50/p99, with websockets' sync client and with bench/lean_client.py taking turns; target p99 ≤ 10 ms;
  * the agent's RSS (VmRSS) idle after start, and after --rss-calls signatures of N MB; targets: idle ≤ 45 MB,
    after ≤ idle + 60 MB. Also: a few seconds later (once the documents stop, the agent gives back the heap it keeps
    for the next document, server/memory.py) and the highest RSS over the run (VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_harness import AgentProcess
from lean_client import call_timed
from remembered_key import start_remembering_agent
from timing import isolate_home
from websockets.sync.client import connect

from eimzo_agent.crypto import gost94
from eimzo_agent.server import memory


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The agent's resident memory now (VmRSS) or at its highest so far (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def idle_rss(agent: AgentProcess) -> float:
    """The agent's RSS once it has started and answered 20 `version` calls, before any key is opened (issue 14's
    "idle RSS"), MB."""
    for _ in range(20):
        agent.call("version")
    return rss_mb(agent.process.pid)


def rss_settled(pid: int) -> tuple[float, float, float]:
    """The agent's RSS right after a run of large documents, again once its idle trim has given the heap's free
    pages back (server/memory.py), and the highest of the whole run (VmHWM), MB."""
    after = rss_mb(pid)
    time.sleep(memory.IDLE_SECONDS + 1)
    return after, rss_mb(pid), rss_mb(pid, "VmHWM")


def agent_cpu(pid: int) -> tuple[float, float, float]:
    """The agent's minor page faults and user and kernel CPU time (ms) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return float(fields[7]), int(fields[11]) * tick_ms, int(fields[12]) * tick_ms


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def best_of(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rss-calls", type=int, default=200)
    args = parser.parse_args()
    document = os.urandom(int(args.megabytes * 1024 * 1024))
    document_64 = base64.b64encode(document).decode()
    hash_ms = best_of(lambda: gost94.gost94_digest(document))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        agent, pfx = start_remembering_agent(tmp)
        try:
            idle = idle_rss(agent)
            key_id = agent.load_key(pfx)

            request = _request(document_64, key_id)

            def sign() -> None:
                reply = agent.call("", raw=request, timeout=600)
                assert reply["success"], reply

            sign()  # the one password question; the key is kept from here on
            # The hash alone is timed between the calls, not once before them: this VM's speed drifts by a fifth
            # over a minute, and the target is a ratio of the two.
            samples, hash_samples = [], []
            cpu_before = agent_cpu(agent.process.pid)
            for _ in range(args.calls):
                hash_samples.append(best_of(lambda: gost94.gost94_digest(document), runs=1))
                start = time.perf_counter()
                sign()
                samples.append((time.perf_counter() - start) * 1000)
            faults, user_ms, system_ms = (
                (b - a) / args.calls for a, b in zip(cpu_before, agent_cpu(agent.process.pid), strict=True))
            lean_samples = []
            for _ in range(args.calls):
                hash_samples.append(best_of(lambda: gost94.gost94_digest(document), runs=1))
                reply, took = call_timed(agent.port, agent.origin, request, timeout=600)
                assert reply.startswith('{"success":true'), reply[:200]
                lean_samples.append(took * 1000)
            end_to_end = statistics.median(samples)
            lean_end_to_end = statistics.median(lean_samples)
            hash_between = statistics.median(hash_samples)
            latencies, lean = version_while_signing(agent, document_64, key_id,
                                                    seconds=max(10.0, end_to_end * 24 / 1000))
            for _ in range(args.rss_calls):
                sign()
            after, after_idle, peak = rss_settled(agent.process.pid)
        finally:
            agent.stop()
    mb = f"{args.megabytes:g} MB"
    print(f"O'zDSt 1106 hash alone, C, {mb}, best of 5            {hash_ms:8.1f} ms")
    print(f"the same hash, median of {2 * args.calls} timed between the calls below  {hash_between:8.1f} ms")
    print(f"create_pkcs7 end to end, O'zDSt, {mb}, median of {args.calls:<4}  {end_to_end:8.1f} ms"
          f"   = {end_to_end / hash_between:.2f} x the hash (target <= 1.5)")
    print(f"  the same, lean client, up to the reply, median of {args.calls:<4}  {lean_end_to_end:8.1f} ms"
          f"   = {lean_end_to_end / hash_between:.2f} x the hash")
    print(f"  the agent's own work per call: {faults:.0f} page faults (fresh pages), {user_ms:.1f} ms user CPU, "
          f"{system_ms:.1f} ms kernel CPU (/proc/PID/stat)")
    print(f"version round trip while signing {mb} in a loop        p50 {percentile(latencies, 0.5):6.2f} ms   "
          f"p99 {percentile(latencies, 0.99):6.2f} ms   ({len(latencies)} calls; target p99 <= 10)")
    print(f"  the same, lean client, to the reply                   p50 {percentile(lean, 0.5):6.2f} ms   "
          f"p99 {percentile(lean, 0.99):6.2f} ms   ({len(lean)} calls)")
    print(f"agent RSS idle {idle:.1f} MB (target <= 45); after {args.rss_calls} signatures of {mb}: {after:.1f} MB "
          f"(+{after - idle:.1f}, target <= +60)")
    print(f"  {memory.IDLE_SECONDS + 1:g} s later {after_idle:.1f} MB (+{after_idle - idle:.1f}); "
          f"highest over the whole run (VmHWM) {peak:.1f} MB (+{peak - idle:.1f})")
    return 0


def version_while_signing(agent: AgentProcess, document_64: str, key_id: str,
                          seconds: float) -> tuple[list[float], list[float]]:
    """`version` round trips from a second client for `seconds` while the first signs in a loop: (websockets' sync
    client, up to its close; bench/lean_client.py, up to the reply), the two taking turns.

    The signing client runs in another process: in this one its JSON and WebSocket work would hold the GIL and
    delay the measuring thread, which is the client's problem, not the agent's. Two measuring clients because the
    sync client's own thread per connection waits for the CPU too on 2 cores; the lean one is closer to a
    browser (no thread of its own; the time to the reply is what e-imzo.js waits for)."""
    stop = multiprocessing.Event()
    signer = multiprocessing.Process(target=_sign_forever, args=(agent.port, agent.origin, document_64, key_id, stop))
    signer.start()
    latencies: list[float] = []
    lean: list[float] = []
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            assert agent.call("version")["success"]
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(0.005)
            reply, took = call_timed(agent.port, agent.origin, '{"name":"version"}')
            assert json.loads(reply)["success"]
            lean.append(took * 1000)
            time.sleep(0.005)
    finally:
        stop.set()
        signer.join()
    return latencies, lean


def _sign_forever(port: int, origin: str, document_64: str, key_id: str, stop: Any) -> None:
    frame = _request(document_64, key_id)
    while not stop.is_set():
        with connect(f"ws://127.0.0.1:{port}/service/cryptapi", origin=origin, compression=None, max_size=None) as ws:
            ws.send(frame)
            assert json.loads(ws.recv(600))["success"]


def _request(document_64: str, key_id: str) -> str:
    """The create_pkcs7 request as a page sends it. Put together by concatenation: json.dumps would scan the 13 MB of
    Base64 character by character (≈ 40 ms here, a cost of this Python client, not of the agent), and Base64 needs
    no escaping."""
    head = '{"plugin":"pkcs7","name":"create_pkcs7","arguments":["'
    return head + document_64 + '",' + json.dumps(key_id) + ',"no"]}'


if __name__ == "__main__":
    raise SystemExit(main())
