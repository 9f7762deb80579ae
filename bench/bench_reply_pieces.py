"""The reply of a large attached signature: one Base64 string against Base64 pieces, side by side in one run.

Run:  .venv/bin/python bench/bench_reply_pieces.py [--megabytes 10] [--runs 9]

Both start from the same pieces of a CMS (crypto/cms.py gives an attached one as what comes before the document,
the document itself, and what follows it) with the agent's malloc setting (server/memory.py). "One string" is
what the agent did before: the CMS joined (the document copied), its Base64 as one string, copied once more into
the `Base64Text` marker class. "Pieces" is what it does now: `base64data.encode_pieces` over the CMS's pieces,
1 MiB of text each (timed step by step here; the result is checked to be the same value). Timed: the whole step,
and its longest single call (a C call holding the GIL: what another page's call may wait behind).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from eimzo_agent.protocol import base64data
from eimzo_agent.server import memory


def timed(steps: list[Callable[[], object]]) -> tuple[float, float]:
    """(total, longest step) in ms; each step's result is kept until the end, as the reply keeps its pieces."""
    kept = []
    durations = []
    for step in steps:
        start = time.perf_counter()
        kept.append(step())
        durations.append(time.perf_counter() - start)
    return sum(durations) * 1000, max(durations) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print("glibc mmap threshold fixed as in the agent:", memory.return_large_blocks_to_the_system())
    document = os.urandom(int(args.megabytes * 1024 * 1024))
    head, tail = b"\x30\x80" * 40, b"\x31\x82" * 900  # stand-ins of the CMS's DER around the content
    parts = (head, document, tail)

    def one_string() -> list[Callable[[], object]]:
        joined: list[bytes] = []
        text: list[str] = []
        return [lambda: joined.append(b"".join(parts)),
                lambda: text.append(base64data._encode_text(joined[0])),
                lambda: base64data.Base64Text(text[0])]

    def pieces() -> list[Callable[[], object]]:
        steps: list[Callable[[], object]] = [lambda: base64data._encode_text(head)]
        view = memoryview(document)
        size = base64data.PIECE_BYTES
        steps += [lambda s=s: base64data._encode_text(view[s:s + size]) for s in range(0, len(document), size)]
        return steps

    results: dict[str, list[tuple[float, float]]] = {"one string (before)": [], "pieces (now)": []}
    for _ in range(args.runs):  # alternated, so that both see the same machine
        results["one string (before)"].append(timed(one_string()))
        results["pieces (now)"].append(timed(pieces()))
    assert base64data.encode_pieces(list(parts)).text() == base64data.encode(b"".join(parts))  # same value
    print(f"the reply's Base64 of a {args.megabytes:g} MB attached signature; medians of {args.runs} runs, ms")
    print(f"{'':24} {'whole step':>11} {'longest step':>13}")
    for name, runs in results.items():
        print(f"{name:24} {statistics.median(r[0] for r in runs):11.1f} {statistics.median(r[1] for r in runs):13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
