"""Large documents' buffers (server/memory.py): reused while documents keep coming, given back when they stop.

The allocator settings are process-wide, so each case runs the same work as a large signature (Base64 both ways of a
10 MB document in a thread pool, small objects kept in between) in a fresh interpreter, and counts what the process
really did: minor page faults (fresh pages) from getrusage, memory from /proc/self/status. Then a real agent signs
10 MB documents and is looked at the same way from outside (/proc/PID/stat, VmRSS).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from agent_harness import PASSWORD, make_askpass, mint, start_agent

from eimzo_agent.server.memory import IdleTrim

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="glibc's malloc; other systems need no setting")

WORK = textwrap.dedent("""
    import base64, json, os, resource, sys
    from concurrent.futures import ThreadPoolExecutor
    from eimzo_agent.server import memory
    def rss():
        for line in open(f"/proc/{os.getpid()}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    mode, pieces = sys.argv[1], int(sys.argv[2])
    took = memory.keep_large_blocks_warm() if mode == "warm" else memory.return_large_blocks_to_the_system()
    # A 10 MB document, whole (pieces=1: blocks of 10-13 MB) or as the reply's Base64 pieces are (8 pieces: 1.3-1.7 MB).
    document = [os.urandom(10 * 1024 * 1024 // pieces) for _ in range(pieces)]
    base = rss()
    def sign_like(n):
        return sum(len(base64.b64decode(base64.b64encode(piece + bytes([n])))) for piece in document)
    kept = []
    with ThreadPoolExecutor(4) as pool:
        for n in range(60):
            if n == 10:
                start = faults()
            kept.append([bytes(100) for _ in range(500)])
            pool.submit(sign_like, n).result()
        per_round = (faults() - start) / 50
        after = rss() - base
        trimmed = memory.give_back_free_memory()
        print(json.dumps({"took": took, "per_round": per_round, "after": after, "trimmed": trimmed,
                          "after_trim": rss() - base}))
""")


def run_work(mode: str, pieces: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WORK, mode, str(pieces)], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


@linux_only
@pytest.mark.parametrize("pieces", [1, 8])
def test_large_buffers_are_returned_after_use(pieces: int) -> None:
    returned = run_work("return", pieces)
    assert returned["took"] is True
    # 60 rounds of 1-13 MB buffers: what stays is the small objects kept on purpose (~3 MB), not the buffers.
    assert returned["after"] <= 8, f"the process kept {returned['after']} MB after the large buffers were freed"
    # Each round's ≈ 33 MB of buffers are fresh pages (4 KiB each), every time.
    assert returned["per_round"] > 5000, returned


@linux_only
def test_the_warm_heap_reuses_medium_buffers_returns_large_ones_and_gives_back_when_trimmed() -> None:
    medium = run_work("warm", 8)
    assert medium["took"] is True
    # The same rounds of 1.3-1.7 MB buffers reuse the pages of the last one: next to no fresh pages (returned on free
    # they take > 5000 a round, above).
    assert medium["per_round"] < 500, medium
    assert medium["trimmed"] is True and medium["after_trim"] <= 8, medium  # what was kept goes with the trim
    # Blocks over HEAP_BLOCK_LIMIT (a 10 MB document's frame and bytes) are still mappings returned on free.
    large = run_work("warm", 1)
    assert large["per_round"] > 5000 and large["after"] <= 8, large


def test_the_idle_trim_waits_until_large_documents_stop() -> None:
    trims: list[float] = []

    async def scenario() -> IdleTrim:
        idle = IdleTrim(delay=0.2, trim=lambda: trims.append(time.monotonic()))
        start = time.monotonic()
        for _ in range(4):  # a document every 0.1 s: each one postpones the trim
            idle.large_work_done()
            await asyncio.sleep(0.1)
        assert not trims
        await asyncio.sleep(0.3)
        assert len(trims) == 1 and trims[0] - start >= 0.5  # 0.2 s after the last document
        idle.large_work_done()
        idle.close()  # the agent stops: nothing runs after
        await asyncio.sleep(0.3)
        return idle

    idle = asyncio.run(scenario())
    assert len(trims) == 1 and idle.trims == 1


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@linux_only
def test_an_agent_signing_large_documents_reuses_its_buffers_then_shrinks(tmp_path: Path) -> None:
    pfx = mint(tmp_path / "ca", tmp_path / "flash" / "DSKEYS", "ozdst", "--cn", "MEMORY TEST", "--pinfl",
               "31234567890125")
    askpass = make_askpass(tmp_path)
    askpass.answer(f"{PASSWORD}\nremember=600")
    agent = start_agent(tmp_path / "agent", "--key-root", str(tmp_path / "flash"), "--askpass",
                        str(askpass.program), "--log-level", "WARNING")
    try:
        pid = agent.process.pid
        key_id = agent.load_key(pfx)
        idle = _rss_mb(pid)
        document_64 = base64.b64encode(os.urandom(10 * 1024 * 1024)).decode()
        request = ('{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + document_64 + '",'
                   + json.dumps(key_id) + ',"no"]}')

        def sign() -> None:
            reply = agent.call("", raw=request, timeout=120)
            assert reply["success"] is True and len(reply["pkcs7_64"]) > len(document_64)

        for _ in range(2):
            sign()  # the password question, the first document's buffers
        before = _minor_faults(pid)
        for _ in range(3):
            sign()
        per_call = (_minor_faults(pid) - before) / 3
        # A 10 MB signature's buffers all returned on free cost ≈ 13 400 fresh pages a call; with all but the frame
        # and the decoded document reused, 3 400-6 200 on the CI machine kind (those two are mappings of their own:
        # 13.6 + 10 MB, up to ≈ 5 900 fresh pages; 6 000 was the bound until it failed on 271e09c as well, 2026-12-03).
        assert per_call < 9000, f"{per_call:.0f} page faults per 10 MB signature"
        deadline = time.monotonic() + 15
        while _rss_mb(pid) > idle + 20 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert _rss_mb(pid) <= idle + 20, (idle, _rss_mb(pid))  # given back once the documents stopped
        assert agent.call("version")["success"] is True
        assert "Traceback" not in agent.log()
    finally:
        agent.stop()
