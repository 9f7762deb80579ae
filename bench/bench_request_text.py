"""A large request's document: decoded from a 13 MB `str` against decoded straight from the frame, side by side.

Run:  .venv/bin/python bench/bench_request_text.py [--megabytes 10] [--runs 9]

The same create_pkcs7 frame (a 10 MB document is 13.6 MB of Base64) is parsed by protocol/large_request.py, with the
agent's malloc setting (server/memory.py). "Via a str" is what the agent did before: the Base64 made a `str` (one
copy of 13.6 MB, one C call holding the GIL), then decoded. "From the frame" is what it does now for
`create_pkcs7`'s document (`Call.long_arg`): decoded from the frame's bytes, no string made. Each step is timed
apart; the longest is what another page's call may wait behind.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time

from eimzo_agent.protocol import base64data
from eimzo_agent.protocol.large_request import LongText, load_request
from eimzo_agent.server import memory


def steps_via_str(frame: bytearray) -> list[float]:
    times = []
    start = time.perf_counter()
    request = load_request(frame)
    times.append(time.perf_counter() - start)
    start = time.perf_counter()
    text = request["arguments"][0].text()
    times.append(time.perf_counter() - start)
    start = time.perf_counter()
    base64data.decode(text)
    times.append(time.perf_counter() - start)
    return times


def steps_from_frame(frame: bytearray) -> list[float]:
    times = []
    start = time.perf_counter()
    request = load_request(frame)
    times.append(time.perf_counter() - start)
    document = request["arguments"][0]
    assert isinstance(document, LongText)
    start = time.perf_counter()
    base64data.decode(document.view())
    times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print("glibc mmap threshold fixed as in the agent:", memory.return_large_blocks_to_the_system())
    document = os.urandom(int(args.megabytes * 1024 * 1024))
    frame = bytearray(b'{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + base64.b64encode(document)
                      + b'","key-id","no"]}')
    assert base64data.decode(load_request(frame)["arguments"][0].view()) == document
    results: dict[str, list[list[float]]] = {"via a str (before)": [], "from the frame (now)": []}
    for _ in range(args.runs):  # alternated, so that both see the same machine
        results["via a str (before)"].append(steps_via_str(frame))
        results["from the frame (now)"].append(steps_from_frame(frame))
    print(f"parsing and decoding a {len(frame) / 1e6:.1f} MB frame's document; medians of {args.runs} runs, ms")
    print(f"{'':24} {'whole step':>11} {'longest step':>13}")
    for name, runs in results.items():
        whole = statistics.median(sum(steps) for steps in runs) * 1000
        longest = statistics.median(max(steps) for steps in runs) * 1000
        print(f"{name:24} {whole:11.1f} {longest:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
