"""Per-site request limits: one site must not be able to hog the agent or drown out the others.

A token bucket per site bounds the request rate (with a burst for pages that make a few calls at load), and a
counter bounds how many of a site's requests are in progress at once (each may hold a password question).
Sites are keyed by their Origin's domain, so opening more sockets does not buy more requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Buckets of sites not seen for this long are forgotten, so memory stays bounded.
FORGET_AFTER_SECONDS = 600.0


@dataclass
class _Site:
    tokens: float
    updated: float
    running: int = 0


@dataclass
class SiteLimiter:
    rate: float  # requests per second, sustained
    burst: int  # requests allowed at once after a quiet spell
    max_running: int  # requests of one site in progress at the same time
    clock: Callable[[], float] = time.monotonic
    _sites: dict[str, _Site] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def try_start(self, site: str) -> bool:
        """Take one request slot for `site`; False when it is over its rate or has too many in progress."""
        now = self.clock()
        with self._lock:
            self._forget_idle(now)
            state = self._sites.get(site)
            if state is None:
                state = self._sites[site] = _Site(tokens=float(self.burst), updated=now)
            state.tokens = min(float(self.burst), state.tokens + (now - state.updated) * self.rate)
            state.updated = now
            if state.tokens < 1.0 or state.running >= self.max_running:
                return False
            state.tokens -= 1.0
            state.running += 1
            return True

    def finish(self, site: str) -> None:
        with self._lock:
            state = self._sites.get(site)
            if state is not None and state.running > 0:
                state.running -= 1

    def _forget_idle(self, now: float) -> None:
        if len(self._sites) < 1024:
            return
        for site in [s for s, v in self._sites.items() if not v.running and now - v.updated > FORGET_AFTER_SECONDS]:
            del self._sites[site]
