"""Giving the memory of large documents back to the system (glibc).

A signed 10 MB document passes through several buffers of 10-26 MB (the frame, its text, the decoded document, the
CMS, its Base64, the reply). glibc serves allocations above a threshold from their own mappings and returns them to
the system on free — but it raises that threshold to the size of the largest block freed (up to 32 MB), after which
such buffers come from the heap and stay in the process: an agent that signed a few large documents kept ~100 MB.
Fixing the threshold keeps every large buffer a mapping of its own, returned as soon as it is freed. Nothing to do
on other C libraries (musl, Windows, macOS return large blocks by themselves).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

#: mallopt(3) parameter number of M_MMAP_THRESHOLD in glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get their own mapping (glibc's initial default is 128 KiB; 1 MiB keeps ordinary
#: requests in the heap).
LARGE_BLOCK = 1024 * 1024


def return_large_blocks_to_the_system() -> bool:
    """True when glibc took the setting (Linux with glibc); False elsewhere or when it is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK) == 1
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused: large buffers may stay in the heap")
    return done
