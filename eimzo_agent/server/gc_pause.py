"""The garbage collector's pauses: the objects the agent made while starting are left out of later collections.

Why: CPython's full collection walks every object it tracks, holding the GIL — the event loop and every worker
thread stand still meanwhile. In the running agent (≈ 37 000 such objects: modules, classes, the plugins' tables)
one took 23-50 ms on the 2-core CI machine kind, and while documents were being signed one came every 10-20 s:
each time every page's call in flight waited that long. Those objects live as long as the agent, so walking them
finds nothing; once frozen (`gc.freeze`), a full collection walks only what was made since (under a millisecond
in the same run, bench/bench_gc_pause.py). Everything made later is collected exactly as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Leave every object alive now out of all later collections (call once the agent is up); returns how many
    objects were frozen. Garbage is collected first, so none of it is kept for ever."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
