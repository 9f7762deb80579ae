"""The agent's startup objects are left out of later garbage collections (server/gc_pause.py).

What matters is not timed here (bench/bench_gc_pause.py times it): that the running agent does freeze them, that
garbage alive at that moment is collected rather than frozen for ever, and that what is made later is still
collected. The freezing is process-wide, so it runs in a fresh interpreter, not in the test process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from agent_harness import start_agent

FREEZE = textwrap.dedent("""
    import gc, json, weakref
    import eimzo_agent.agent, eimzo_agent.server.listener  # the modules the agent is made of
    from eimzo_agent.server.gc_pause import freeze_startup_objects

    class Node:
        pass

    def garbage_cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    gc.disable()  # no collection of its own between here and the call
    before = len(gc.get_objects())
    old_garbage = garbage_cycle()
    frozen = freeze_startup_objects()
    left = len(gc.get_objects())
    new_garbage = garbage_cycle()
    gc.collect()
    print(json.dumps({"before": before, "frozen": frozen, "left": left,
                      "old_garbage_kept": old_garbage() is not None,
                      "new_garbage_kept": new_garbage() is not None}))
""")


def test_startup_objects_are_frozen_and_garbage_is_not() -> None:
    done = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["frozen"] > 10_000 and result["frozen"] >= 0.9 * result["before"]  # the modules' objects
    assert result["left"] < 100  # a full collection now walks next to nothing
    assert result["old_garbage_kept"] is False  # collected before the freeze, not kept for the agent's life
    assert result["new_garbage_kept"] is False  # what is made later is collected as before


def test_the_running_agent_freezes_its_startup_objects(tmp_path: Path) -> None:
    agent = start_agent(tmp_path / "agent", "--log-level", "DEBUG")
    try:
        pattern = re.compile(r"garbage collection: the (\d+) objects made while starting are left out")
        deadline = time.monotonic() + 10
        while not (found := pattern.search(agent.log())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert found, agent.log()[-2000:]
        assert int(found.group(1)) > 10_000
        assert agent.call("version")["success"] is True  # and it still answers
    finally:
        agent.stop()
