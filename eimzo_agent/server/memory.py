"""Large documents' buffers: mostly reused while documents keep coming, given back when they stop (glibc).

A signed 10 MB document passes through buffers of every size: the frame (13.6 MB) and the decoded document (10 MB),
the reply's Base64 in pieces of ~1.4 MB, the frame's chunks and the reply's fragments (256 KB) and many more.
Giving every block of 1 MiB or more back on free (the old setting) made each signature's buffers fresh pages again:
≈ 13 400 page faults, ≈ 50 ms of kernel time per 10 MB signature, on the same two cores as the hash. Keeping all
of them in the heap (blocks up to 32 MiB) removed the faults but kept the whole peak, fragmented: +56-60 MB after
200 signatures of 10 MB, at the edge of what the agent may hold (issue 14: idle + 60 MB). So:

* blocks under 8 MiB come from one heap (one arena for all threads, up to 64 MiB free at its top kept), so the
  next document reuses the pages of the last: `keep_large_blocks_warm`; the two largest buffers (frame and
  document) are mappings of their own, returned on free. Per 10 MB signature ≈ 3 400 faults and ≈ 17 ms of kernel
  time; +44.5 MB after 200 of them (docs/performance.md);
* once no large document has been handled for `IdleTrim.delay` seconds, the heap's free pages go back to the
  system (`malloc_trim`): an agent that signed a batch of large files shrinks to about its idle size again.

Nothing to do on other C libraries (musl, Windows, macOS): there these functions return False.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: mallopt(3) parameter numbers in glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks under this size come from the heap and are reused; larger ones (a large document's frame and its decoded
#: bytes) get a mapping of their own, returned on free. 32 MiB (glibc's largest) kept the whole peak.
HEAP_BLOCK_LIMIT = 8 * 1024 * 1024
#: Free memory at the heap's top beyond this is given back at once, whatever the idle trim does.
TRIM_THRESHOLD = 64 * 1024 * 1024
#: The fallback when the above is refused: every block from 1 MiB up is a mapping of its own.
LARGE_BLOCK = 1024 * 1024
#: Seconds without large documents after which the heap's free pages go back to the system.
IDLE_SECONDS = 2.0

_libc: Any = None


def _glibc() -> Any:
    """glibc as a ctypes library, or None (not Linux, or a C library without mallopt/malloc_trim)."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.mallopt.restype = ctypes.c_int
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.malloc_trim.restype = ctypes.c_int
                _libc = libc
            except (OSError, AttributeError):  # not glibc (musl has no mallopt)
                pass
    return _libc or None


def keep_large_blocks_warm() -> bool:
    """Large blocks from one heap whose free pages stay for the next document (see the module's docstring); call
    before any thread starts. True when glibc took it; otherwise every large block is returned on free
    (`return_large_blocks_to_the_system`) and False is returned."""
    libc = _glibc()
    if libc is None:
        return False
    if (libc.mallopt(_M_ARENA_MAX, 1) == 1 and libc.mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1):
        return True
    log.debug("mallopt refused the warm heap: large buffers are returned on free")
    return_large_blocks_to_the_system()
    return False


def return_large_blocks_to_the_system() -> bool:
    """Every block from 1 MiB up a mapping of its own, returned on free. True when glibc took the setting."""
    libc = _glibc()
    if libc is None:
        return False
    done = libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK) == 1
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused: large buffers may stay in the heap")
    return done


def give_back_free_memory() -> bool:
    """The heap's free pages back to the system now (malloc_trim). True when glibc gave some back."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1


class IdleTrim:
    """Calls `trim` (in a worker thread) once `delay` seconds have passed since the last `large_work_done`.

    Event-loop only. A document arriving meanwhile only postpones it: trimming never frees memory in use, it just
    makes the next document's buffers fresh pages again, so it waits until the large documents stop."""

    def __init__(self, delay: float = IDLE_SECONDS, trim: Callable[[], object] = give_back_free_memory) -> None:
        self.delay = delay
        self._trim = trim
        self._timer: asyncio.TimerHandle | None = None
        self.trims = 0  # how many times it ran (tests, logs)

    def large_work_done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.delay, self._fire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self.trims += 1
        asyncio.get_running_loop().run_in_executor(None, self._run_trim)

    def _run_trim(self) -> None:
        try:
            self._trim()
        except Exception:  # the memory simply stays; nothing else depends on it
            log.exception("giving free memory back failed")
