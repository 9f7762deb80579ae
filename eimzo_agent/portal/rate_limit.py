"""Per-client-IP token buckets for /frontend/*: a page asks for a challenge once per login, a flood from one IP is
answered 429 long before it fills the challenge store. Memory stays bounded: idle buckets are dropped."""

from __future__ import annotations

import time
from collections import OrderedDict

#: Buckets kept at most; the least recently used go first (a full bucket forgets nothing worth keeping).
MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip -> (tokens, last refill)

    def allow(self, ip: str, now: float | None = None) -> bool:
        """Take one token from `ip`'s bucket; False when it is empty."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(ip, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[ip] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return allowed
