"""Taking in a large request frame: websockets' parser against server/large_frame.py, side by side in one run.

Run:  .venv/bin/python bench/bench_frame_intake.py [--megabytes 13] [--runs 9]

A 10 MB document is a 13 MB text frame. Both ways are fed the same masked frame in the agent's read size (256 KiB)
with the agent's malloc setting (server/memory.py: large blocks come from and go back to the system, as in the
agent), and timed per chunk: the work while the frame arrives, the work after its last byte (what the call waits
for), and the longest single step (one C call holding the GIL: what another page's call may wait behind).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from eimzo_agent.server import memory
from eimzo_agent.server.large_frame import HEADER_SIZE, LargeFrame
from eimzo_agent.server.listener import READ_CHUNK

HANDSHAKE = (b"GET /service/cryptapi HTTP/1.1\r\nHost: 127.0.0.1:64646\r\nUpgrade: websocket\r\nConnection: Upgrade"
             b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def websockets_intake(chunks: list[bytes]) -> list[float]:
    protocol = ServerProtocol(max_size=None, extensions=None)
    protocol.receive_data(HANDSHAKE)
    (request,) = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    steps = []
    frames = []
    for chunk in chunks:
        start = time.perf_counter()
        protocol.receive_data(chunk)
        frames += protocol.events_received()
        steps.append(time.perf_counter() - start)
    assert len(frames) == 1
    return steps


def large_frame_intake(chunks: list[bytes]) -> list[float]:
    steps = []
    frame: LargeFrame | None = None
    for chunk in chunks:
        start = time.perf_counter()
        if frame is None:
            frame = LargeFrame.start(chunk, 1 << 30)
            assert frame is not None
            frame.feed(memoryview(chunk)[HEADER_SIZE:])
        else:
            frame.feed(chunk)
        steps.append(time.perf_counter() - start)
    assert frame is not None and frame.complete
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=13)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print("glibc mmap threshold fixed as in the agent:", memory.return_large_blocks_to_the_system())
    payload = os.urandom(int(args.megabytes * 1024 * 1024))
    wire = Frame(Opcode.TEXT, payload).serialize(mask=True, extensions=[])
    chunks = [wire[i:i + READ_CHUNK] for i in range(0, len(wire), READ_CHUNK)]
    results: dict[str, list[list[float]]] = {"websockets' parser": [], "server/large_frame.py": []}
    for _ in range(args.runs):  # alternated, so that both see the same machine
        results["websockets' parser"].append(websockets_intake(chunks))
        results["server/large_frame.py"].append(large_frame_intake(chunks))
    print(f"a {len(wire) / 1e6:.1f} MB frame in {len(chunks)} reads of {READ_CHUNK // 1024} KiB; medians of "
          f"{args.runs} runs, ms")
    print(f"{'':24} {'while arriving':>15} {'after last byte':>16} {'longest step':>13}")
    for name, runs in results.items():
        arriving = statistics.median(sum(steps[:-1]) for steps in runs) * 1000
        last = statistics.median(steps[-1] for steps in runs) * 1000
        longest = statistics.median(max(steps) for steps in runs) * 1000
        print(f"{name:24} {arriving:15.1f} {last:16.1f} {longest:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
