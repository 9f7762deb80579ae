"""`/backend/auth` of the portal server for O'zDSt logins: throughput, latency at a fixed rate, memory over many.

Run:  .venv/bin/python bench/bench_portal.py [--nodes 1] [--seconds 10] [--rate 300] [--rate-seconds 20]
                                            [--logins 100000] [--revocation ocsp|off]

What is measured is what a portal's backend waits for: its POST of the browser's PKCS#7 to /backend/auth, over
keep-alive HTTP, answered by real `eimzo-agent portal serve` processes (`--nodes N`: N processes sharing a private
Redis, the requests spread over them as nginx's upstream would). Each login is a fresh challenge from
/frontend/challenge (origin-bound, 120 s TTL) signed with an O'zDSt key of the dev O'zDSt CA; the challenges are
fetched and signed before each measured phase, so the client's own signing is not in the figures. Revocation:
`ocsp` (default) mints the key with the dev OCSP responder in its AIA and warms the server's OCSP cache with a few
logins first; `off` skips the check.

Phases: (1) closed loop — `--clients` concurrent backends post as fast as answers come, for `--seconds`: logins/s
and latency at saturation; (2) open loop at `--rate` logins/s for `--rate-seconds` (requests start on schedule
whether or not earlier ones are answered; latency counted from the scheduled start): p50/p99; (3) `--logins`
logins in batches of 5 000, the servers' RSS after each batch (0 skips this phase).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agent_harness import PASSWORD, mint
from portal_services import RedisServer, start_redis
from timing import isolate_home

from eimzo_agent.crypto.cms import create_pkcs7
from eimzo_agent.dev.ocsp import start_ocsp
from eimzo_agent.keys.pkcs12 import UnlockedKey, open_pfx

SITE = "portal.example.uz"
CLIENT_IP = "203.0.113.9"
HEADERS = {"Host": SITE, "X-Real-IP": CLIENT_IP, "X-Forwarded-Proto": "https"}
CONFIG = "[limits]\nrate_per_ip = 1000000.0\nrate_burst = 1000000\n"
BATCH = 5_000


@dataclass
class Node:
    process: subprocess.Popen[str]
    url: str

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_node(folder: Path, *args: str) -> Node:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "portal.toml").write_text(CONFIG)
    process = subprocess.Popen(
        [sys.executable, "-m", "eimzo_agent", "portal", "serve", "--port", "0", "--config", str(folder / "portal.toml"),
         *args], stdout=subprocess.PIPE, stderr=(folder / "portal.log").open("w"), text=True)
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if "listening on http://" not in line:
        process.kill()
        raise SystemExit(f"the portal server did not start: {(folder / 'portal.log').read_text()}")
    return Node(process, line.rsplit(" ", 1)[1].strip())


class Logins:
    """Fetch challenges (spread over the nodes) and sign them: ready-made /backend/auth bodies."""

    def __init__(self, session: aiohttp.ClientSession, nodes: list[Node], key: UnlockedKey) -> None:
        self.session = session
        self.nodes = nodes
        self.key = key
        self._count = itertools.count()

    async def prepare(self, count: int) -> list[tuple[str, bytes]]:
        queue = iter(range(count))
        bodies: list[tuple[str, bytes]] = []

        async def worker() -> None:
            for _ in queue:
                # Issued by one node, checked by the next (with one node: the same): round robin for both.
                index = next(self._count)
                issuer, checker = self.nodes[index % len(self.nodes)], self.nodes[(index + 1) % len(self.nodes)]
                async with self.session.get(f"{issuer.url}/frontend/challenge", headers=HEADERS) as reply:
                    challenge = (await reply.json())["challenge"]
                cms = create_pkcs7(challenge.encode(), self.key.signer, detached=False, signed_attributes="eimzo")
                bodies.append((checker.url, base64.b64encode(cms.cms_der)))

        await asyncio.gather(*(worker() for _ in range(4)))
        return bodies

    async def auth(self, url: str, body: bytes) -> int:
        async with self.session.post(f"{url}/backend/auth", data=body,
                                     headers={**HEADERS, "Content-Type": "application/octet-stream"}) as reply:
            if reply.status != 200:
                return -1000 - reply.status
            return int((await reply.json())["status"])


async def closed_loop(logins: Logins, bodies: list[tuple[str, bytes]], clients: int,
                      seconds: float | None) -> tuple[int, float, list[float], Counter[int]]:
    """`clients` backends posting back to back; stops at `seconds` or when the bodies run out."""
    pending = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter()
    deadline = start + seconds if seconds else float("inf")

    async def client() -> None:
        for url, body in pending:
            if time.perf_counter() >= deadline:
                return
            began = time.perf_counter()
            statuses[await logins.auth(url, body)] += 1
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies), time.perf_counter() - start, latencies, statuses


async def open_loop(logins: Logins, bodies: list[tuple[str, bytes]],
                    rate: float) -> tuple[float, list[float], Counter[int]]:
    """One request every 1/rate s on schedule; latency from the scheduled start (no coordinated omission)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter()

    async def one(index: int, url: str, body: bytes) -> None:
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        statuses[await logins.auth(url, body)] += 1
        latencies.append((time.perf_counter() - scheduled) * 1000)

    await asyncio.gather(*(one(i, url, body) for i, (url, body) in enumerate(bodies)))
    return time.perf_counter() - start, latencies, statuses


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def report_statuses(statuses: Counter[int]) -> str:
    bad = {status: n for status, n in statuses.items() if status != 1}
    return "all status 1" if not bad else f"NOT OK: {bad} (status: count; -10xx = HTTP status)"


async def run(args: argparse.Namespace, nodes: list[Node], key: UnlockedKey) -> None:
    connector = aiohttp.TCPConnector(limit=max(args.clients, 64))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        logins = Logins(session, nodes, key)
        await closed_loop(logins, await logins.prepare(50), 4, None)  # warm-up: imports, OCSP cache, connections

        bodies = await logins.prepare(int(args.seconds * 700))
        server_cpu, own_cpu = sum(node.cpu_seconds() for node in nodes), time.process_time()
        done, elapsed, latencies, statuses = await closed_loop(logins, bodies, args.clients, args.seconds)
        server_cpu = sum(node.cpu_seconds() for node in nodes) - server_cpu
        print(f"closed loop, {args.clients} clients, {elapsed:.1f} s: {done / elapsed:.0f} logins/s, "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms; "
              f"{report_statuses(statuses)}; CPU per login: server {server_cpu / done * 1000:.2f} ms, "
              f"this client {(time.process_time() - own_cpu) / done * 1000:.2f} ms")

        bodies = await logins.prepare(int(args.rate * args.rate_seconds))
        elapsed, latencies, statuses = await open_loop(logins, bodies, args.rate)
        print(f"open loop at {args.rate:g}/s offered, {len(bodies)} logins: achieved {len(bodies) / elapsed:.0f}/s, "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
              f"max {max(latencies):.1f} ms; {report_statuses(statuses)}")

        if args.logins:
            before = sum(node.rss_mib() for node in nodes)
            print(f"RSS of the server process(es) before: {before:.1f} MiB")
            total, spent, statuses = 0, 0.0, Counter[int]()
            while total < args.logins:
                bodies = await logins.prepare(min(BATCH, args.logins - total))
                done, elapsed, _, batch_statuses = await closed_loop(logins, bodies, args.clients, None)
                total, spent = total + done, spent + elapsed
                statuses.update(batch_statuses)
                print(f"  after {total:>7} logins: RSS {sum(node.rss_mib() for node in nodes):.1f} MiB", flush=True)
            print(f"{total} logins at {total / spent:.0f}/s: RSS {before:.1f} -> "
                  f"{sum(node.rss_mib() for node in nodes):.1f} MiB; {report_statuses(statuses)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1, help="server processes (more than one share a Redis)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent backends in the closed loop")
    parser.add_argument("--seconds", type=float, default=10, help="length of the closed-loop phase")
    parser.add_argument("--rate", type=float, default=300, help="offered logins/s of the open-loop phase")
    parser.add_argument("--rate-seconds", type=float, default=20, help="length of the open-loop phase")
    parser.add_argument("--logins", type=int, default=100_000, help="logins of the memory phase (0: skip it)")
    parser.add_argument("--revocation", choices=["ocsp", "off"], default="ocsp")
    parser.add_argument("--redis", action="store_true", help="use a Redis also with one node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        stop_ocsp = None
        extra = ["--revocation", "off"]
        mint_args = ["--cn", "BENCH OZDST", "--pinfl", "31234567890125"]
        if args.revocation == "ocsp":
            ocsp_url, stop_ocsp = start_ocsp(tmp / "ca")
            base = ocsp_url.rstrip("/")
            mint_args += ["--ocsp-url", f"{base}/ocsp", "--crl-url", f"{base}/crl/ozdst.crl"]
            extra = ["--revocation", "require"]
        key = open_pfx(mint(tmp / "ca", tmp / "keys", "ozdst", *mint_args).read_bytes(), PASSWORD)
        redis: RedisServer | None = start_redis(tmp / "redis") if args.nodes > 1 or args.redis else None
        if redis is not None:
            extra += ["--redis", redis.url]
        nodes: list[Node] = []
        try:
            for index in range(args.nodes):
                nodes.append(start_node(tmp / f"node{index}", "--trust-anchor",
                                        str(tmp / "ca" / "ozdst" / "ca.crt.pem"), *extra))
            print(f"{args.nodes} node(s), revocation {args.revocation}, challenges in "
                  f"{'Redis' if redis else 'memory'}, {os.cpu_count()} CPUs")
            asyncio.run(run(args, nodes, key))
        finally:
            for node in nodes:
                node.stop()
            if redis is not None:
                redis.stop()
            if stop_ocsp is not None:
                stop_ocsp()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
