"""Pending key pairs: keys `pkcs10.generate_keypair` made, held in memory until a certificate arrives or time runs out.

A key pair is bound to the origin that asked for it (another origin's `kpId` reads as "not found", like keyIds)
and lives `ttl_seconds` after it was made — 1 hour by default: long enough for a person to finish a registration
form and a CA to answer (E-IMZO's portals do it within one visit), short enough that an abandoned private key does
not linger. Keys never touch the disk here: they are written only as an encrypted .pfx by the enrollment plugin.

"Wiped" means what Python allows: the entry and every reference to the key object are dropped, so the memory is
freed. Python cannot overwrite it: an O'zDSt scalar is an immutable int (copies may exist in freed memory until
reused), and `cryptography` keys live in OpenSSL, which clears them when the object is freed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto.new_keys import PrivateKey

DEFAULT_TTL_SECONDS = 3600
#: A page generating keys in a loop must not grow memory without bound; its oldest pairs go first.
MAX_PAIRS_PER_ORIGIN = 16


@dataclass
class KeyPair:
    kp_id: str
    origin: str
    alg_name: str
    private_key: PrivateKey = field(repr=False)
    created: float = 0.0


class KeyPairs:
    """kpId -> key pair, per origin, expiring; thread-safe (plugins call it from worker threads too)."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._pairs: OrderedDict[str, KeyPair] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, private_key: PrivateKey, alg_name: str, origin: str) -> str:
        """Keep `private_key` for `origin`; returns its kpId (32 lower-case hex, like keyIds)."""
        with self._lock:
            self._expire()
            kp_id = secrets.token_hex(16)
            self._pairs[kp_id] = KeyPair(kp_id, origin, alg_name, private_key, self.clock())
            same_origin = [k for k, v in self._pairs.items() if v.origin == origin]
            for old in same_origin[:-MAX_PAIRS_PER_ORIGIN]:
                del self._pairs[old]
            return kp_id

    def get(self, kp_id: str, origin: str | None) -> KeyPair | None:
        """The pair if it exists, has not expired and belongs to `origin`; else None (the caller can't tell why)."""
        with self._lock:
            self._expire()
            pair = self._pairs.get(kp_id)
            if pair is None or origin is None or pair.origin != origin:
                return None
            return pair

    def remove(self, kp_id: str, origin: str | None) -> bool:
        """Forget the pair (after its key was written to a file, or when the page gives up)."""
        with self._lock:
            pair = self._pairs.get(kp_id)
            if pair is None or origin is None or pair.origin != origin:
                return False
            del self._pairs[kp_id]
            return True

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._pairs)

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl
        for kp_id in [k for k, v in self._pairs.items() if v.created < deadline]:
            del self._pairs[kp_id]
