"""The garbage collector's full-collection pause in the agent, before and after its startup objects are frozen.

Run:  .venv/bin/python bench/bench_gc_pause.py [--runs 15]

An agent is built and started in this process as `eimzo-agent serve` does (its modules, plugins, listener), in a
temporary HOME, and answers --calls `version` calls through real sockets. Then a full collection (`gc.collect()`,
what CPython runs every so often while objects pile up, holding the GIL) is timed, median and worst of --runs. Then
the objects alive are frozen as the agent does once it is up (server/gc_pause.py), the agent answers --calls more
calls, and the same is timed again. While a full collection runs, every page's call in flight waits
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lean_client import call
from timing import isolate_home


def collections(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def answer_calls(port: int, calls: int) -> None:
    for _ in range(calls):
        reply = await asyncio.to_thread(call, port, "http://localhost:1", '{"name":"version"}')
        assert '"success":true' in reply, reply


async def measure(runs: int, calls: int) -> tuple[int, list[float], int, int, list[float]]:
    from eimzo_agent.agent import build_agent
    from eimzo_agent.config import AgentConfig
    from eimzo_agent.server.gc_pause import freeze_startup_objects
    from eimzo_agent.server.listener import AgentServer

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        # No rate limit: the calls come as fast as one client can make them.
        agent = build_agent(AgentConfig(scan_system_locations=False, key_roots=[tmp / "keys"], tray=False,
                                        requests_per_second=1e6, request_burst=1_000_000),
                            verifiers=[])
        server = AgentServer(agent)
        await server.start(0)
        try:
            await answer_calls(server.ports["ws"], calls)
            tracked = len(gc.get_objects())
            before = collections(runs)
            frozen = freeze_startup_objects()
            await answer_calls(server.ports["ws"], calls)
            after_tracked = len(gc.get_objects())
            after = collections(runs)
        finally:
            await server.close()
    return tracked, before, frozen, after_tracked, after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the agent's "no askpass program" warning: nothing is signed here
    tracked, before, frozen, after_tracked, after = asyncio.run(measure(args.runs, args.calls))
    print(f"full collection, the agent's objects as started ({tracked} tracked)   "
          f"median {statistics.median(before):7.3f} ms   worst {max(before):7.3f} ms")
    print(f"the same once the startup objects are frozen ({frozen} frozen) and {args.calls} more calls answered "
          f"({after_tracked} tracked)\n{'':70}"
          f"median {statistics.median(after):7.3f} ms   worst {max(after):7.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
