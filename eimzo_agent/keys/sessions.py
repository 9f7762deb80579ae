"""Loaded keys: the `keyId`s that `load_key` hands out.

A session remembers *which* key a page chose and *which origin* chose it — never a password or a decrypted
private key: those exist only during one signing operation. E-IMZO portals cache a keyId for 6 hours
(cookie), so ids live 24 hours after their last use.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TTL_SECONDS = 24 * 3600
#: One origin loading keys in a loop must not grow memory without bound; the oldest ids go first.
MAX_SESSIONS_PER_ORIGIN = 256


@dataclass
class LoadedKey:
    key_id: str
    origin: str
    store_type: str  # E-IMZO's type name, e.g. "PFX_KEY_STORE"
    disk: str
    path: str
    name: str
    alias: str
    file: Path
    last_used: float = field(default=0.0)
    #: Whether it is an O'zDSt/OZMST key (its signatures use the O'zDSt hash), as far as known before its password
    #: is given: None when that is not known (the file's certificate is encrypted, a token's key).
    ozdst: bool | None = None


class KeySessions:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._keys: OrderedDict[str, LoadedKey] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: LoadedKey) -> str:
        with self._lock:
            self._expire()
            key.key_id = secrets.token_hex(16)
            key.last_used = self.clock()
            self._keys[key.key_id] = key
            same_origin = [k for k, v in self._keys.items() if v.origin == key.origin]
            for old in same_origin[:-MAX_SESSIONS_PER_ORIGIN]:
                del self._keys[old]
            return key.key_id

    def get(self, key_id: str, origin: str | None) -> LoadedKey | None:
        """The key if it exists, has not expired and belongs to `origin`; else None (the caller can't tell why)."""
        with self._lock:
            self._expire()
            key = self._keys.get(key_id)
            if key is None or origin is None or key.origin != origin:
                return None
            key.last_used = self.clock()
            self._keys.move_to_end(key_id)
            return key

    def remove(self, key_id: str, origin: str | None) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or origin is None or key.origin != origin:
                return False
            del self._keys[key_id]
            return True

    def has_keys(self, origin: str | None, *, ozdst: bool = False) -> bool:
        """Whether `origin` has a loaded key (without touching any key's last use); with `ozdst`, one that is or may
        be an O'zDSt key (its kind not known to be another)."""
        with self._lock:
            self._expire()
            return origin is not None and any(key.origin == origin and not (ozdst and key.ozdst is False)
                                              for key in self._keys.values())

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._keys)

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl
        for key_id in [k for k, v in self._keys.items() if v.last_used < deadline]:
            del self._keys[key_id]
