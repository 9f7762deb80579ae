"""Large documents' buffers go back to the system (server/memory.py), so an agent that signed big files stays small.

glibc raises its "own mapping" threshold to the largest block freed, after which 10-26 MB buffers made in worker
threads stay in the process. The agent fixes the threshold at start; here the same work as a large signature
(Base64 both ways of a 10 MB document in a thread pool, small objects in between) runs in a fresh interpreter with
and without that setting.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

WORK = textwrap.dedent("""
    import base64, os, sys
    from concurrent.futures import ThreadPoolExecutor
    from eimzo_agent.server.memory import return_large_blocks_to_the_system
    def rss():
        for line in open(f"/proc/{os.getpid()}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    if sys.argv[1] == "set":
        assert return_large_blocks_to_the_system()
    document = os.urandom(10 * 1024 * 1024)
    base = rss()
    def sign_like(n):
        return len(base64.b64decode(base64.b64encode(document + bytes([n]))))
    kept = []
    with ThreadPoolExecutor(4) as pool:
        for n in range(60):
            kept.append([bytes(100) for _ in range(500)])
            pool.submit(sign_like, n).result()
    print(rss() - base)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc; other systems need no setting")
def test_large_buffers_are_returned_after_use() -> None:
    growth = int(subprocess.run([sys.executable, "-c", WORK, "set"], capture_output=True, text=True, check=True,
                                timeout=120).stdout)
    # 60 rounds of 10-13 MB buffers: what stays is the small objects kept on purpose (~3 MB), not the buffers.
    assert growth <= 8, f"the process kept {growth} MB after the large buffers were freed"
