"""Large documents' buffers: reused while documents keep coming, given back to the system when they stop (glibc).

A signed 10 MB document passes through several buffers of 10-14 MB (the frame, the decoded document, the CMS, its
Base64, the reply). Left to itself glibc either gives each such block back on free (then the next document's
buffers are fresh pages again: ≈ 13 000 page faults, ≈ 45 ms of kernel time per 10 MB signature, on the same
cores as the hash) or, once it has raised its "own mapping" threshold, keeps them in one heap per thread, where an
agent that signed a few large documents kept ~100 MB. So the agent takes both decisions itself:

* while large documents come, their buffers come from one heap (one arena for all threads, blocks up to 32 MiB,
  up to 64 MiB free at its top kept), so the next document reuses the pages of the last: `keep_large_blocks_warm`;
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
#: Blocks up to this size come from the heap (glibc's largest allowed threshold on 64-bit systems); larger ones
#: get a mapping of their own, returned on free as before.
HEAP_BLOCK_LIMIT = 32 * 1024 * 1024
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
