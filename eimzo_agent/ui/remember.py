"""Passwords the person chose to have remembered for one site and one key ("Remember for this site").

Memory only, never on disk and never in the log. Each entry is scoped to (site, key): another site, or another
key on the same site, is asked again. Entries expire after at most 6 hours (E-IMZO's own maximum), are wiped
when they expire and can be forgotten at once from the tray. The secret is kept in a bytearray that is
overwritten with zeros when the entry goes — best effort: Python may have made copies of the str it came from.

Beside the password an entry may hold the decrypted key itself (`keep_unlocked`), so a portal that signs a
hundred documents in a row (E-IMZO's way: create_pkcs7 in a loop) does not re-read and re-decrypt the key file
each time. It lives exactly as long as the password may be used without asking — never without the person's
"remember" — and is dropped with it, and also on the page's `unload_key` (`drop_unlocked`). "Wiped" for a key
object means every reference the agent holds is dropped; its numbers are Python integers and OpenSSL objects,
which the memory allocator (and, for OpenSSL keys, OpenSSL's own free) reclaim, not overwrite on our request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: The choices the dialog offers, in seconds: 15 minutes, 1 hour, 6 hours (E-IMZO's maximum).
REMEMBER_CHOICES: tuple[int, ...] = (15 * 60, 3600, 6 * 3600)
MAX_REMEMBER_SECONDS = max(REMEMBER_CHOICES)


def remember_choices(max_seconds: float) -> tuple[int, ...]:
    """The durations to offer under the admin's cap (`[passwords] remember_max_minutes`): the usual ones that fit,
    and the cap itself when it falls between them, so a 30-minute cap offers 15 and 30 minutes. Empty: none."""
    cap = int(min(max_seconds, MAX_REMEMBER_SECONDS))
    if cap <= 0:
        return ()
    fitting = tuple(seconds for seconds in REMEMBER_CHOICES if seconds <= cap)
    return fitting if cap in fitting else (*fitting, cap)

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    secret: bytearray
    expires: float
    timer: threading.Timer | None
    #: The decrypted key (keys.pkcs12.UnlockedKey) and what identified the file it came from (its stat).
    unlocked: object | None = None
    fingerprint: bytes = b""

    def wipe(self) -> None:
        self.unlocked = None
        if self.timer is not None:
            self.timer.cancel()
        for i in range(len(self.secret)):
            self.secret[i] = 0
        del self.secret[:]


class PasswordMemory:
    """Thread-safe: the asyncio loop stores and reads, the tray thread forgets, timers expire entries."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, timers: bool = True) -> None:
        self._clock = clock
        self._timers = timers
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        #: Called (without arguments, from any thread) after the set of entries changed: the tray re-reads it.
        self.on_change: Callable[[], None] | None = None

    def __repr__(self) -> str:  # never the secrets, even in a debugger or a crash dump of locals
        return f"<PasswordMemory {len(self)} entries>"

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._entries)

    def remember(self, site: str, key: str, password: str, seconds: float) -> None:
        seconds = min(float(seconds), MAX_REMEMBER_SECONDS)
        if seconds <= 0 or not site:
            return
        timer = None
        if self._timers:
            # A timer per entry wipes the secret on time even when nobody asks for it again.
            timer = threading.Timer(seconds, self._expire_now)
            timer.daemon = True
        entry = _Entry(bytearray(password.encode("utf-8")), self._clock() + seconds, timer)
        with self._lock:
            old = self._entries.pop((site, key), None)
            if old is not None:
                old.wipe()
            self._entries[(site, key)] = entry
        if timer is not None:
            timer.start()
        self._changed()

    def recall(self, site: str, key: str) -> str | None:
        """The remembered password for exactly this site and key, if it has not expired."""
        with self._lock:
            self._expire()
            entry = self._entries.get((site, key))
            return entry.secret.decode("utf-8") if entry is not None else None

    def keep_unlocked(self, site: str, key: str, fingerprint: bytes, unlocked: object) -> None:
        """Keep the opened key with the remembered password of (site, key); nothing when none is remembered."""
        with self._lock:
            self._expire()
            entry = self._entries.get((site, key))
            if entry is not None:
                entry.unlocked, entry.fingerprint = unlocked, fingerprint

    def recall_unlocked(self, site: str, key: str, fingerprint: bytes) -> tuple[object, str] | None:
        """The kept key and its password, if the entry is alive and the file is still the same (`fingerprint` as
        given when it was kept: a file changed behind our back, e.g. a new password set elsewhere, is opened
        afresh)."""
        with self._lock:
            self._expire()
            entry = self._entries.get((site, key))
            if entry is None or entry.unlocked is None or entry.fingerprint != fingerprint:
                return None
            return entry.unlocked, entry.secret.decode("utf-8")

    def drop_unlocked(self, site: str, key: str) -> bool:
        """Let go of the kept key of (site, key) (the page unloaded it); the password stays remembered."""
        with self._lock:
            entry = self._entries.get((site, key))
            if entry is None or entry.unlocked is None:
                return False
            entry.unlocked = None
            return True

    def holds_unlocked(self) -> int:
        """How many decrypted keys are kept now (tests and the tray's count)."""
        with self._lock:
            self._expire()
            return sum(1 for entry in self._entries.values() if entry.unlocked is not None)

    def forget(self, site: str, key: str) -> None:
        with self._lock:
            entry = self._entries.pop((site, key), None)
            if entry is not None:
                entry.wipe()
        if entry is not None:
            self._changed()

    def forget_key(self, key: str) -> None:
        """Every site's entry for `key` (its password was just changed)."""
        self._forget_where(lambda k: k[1] == key)

    def forget_all(self) -> int:
        """Wipe everything (tray: "forget remembered passwords"); returns how many entries there were."""
        return self._forget_where(lambda _k: True)

    def sites(self) -> list[str]:
        with self._lock:
            self._expire()
            return sorted({site for site, _ in self._entries})

    def _forget_where(self, match: Callable[[tuple[str, str]], bool]) -> int:
        with self._lock:
            gone = [k for k in self._entries if match(k)]
            for k in gone:
                self._entries.pop(k).wipe()
        if gone:
            self._changed()
        return len(gone)

    def _expire_now(self) -> None:
        with self._lock:
            count = self._expire(slack=0.5)  # a timer may wake a hair before the monotonic deadline
        if count:
            self._changed()

    def _expire(self, slack: float = 0.0) -> int:
        """Drop expired entries; the caller holds the lock."""
        now = self._clock() + slack
        gone = [k for k, e in self._entries.items() if e.expires <= now]
        for k in gone:
            self._entries.pop(k).wipe()
        return len(gone)

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            try:
                callback()
            except Exception:  # a tray refresh failure must not break signing
                log.exception("password memory change callback failed")
