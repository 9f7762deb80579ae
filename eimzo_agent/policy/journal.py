"""The signing journal: one JSON line per signing attempt, so a person can see what was signed, when and for whom.

It also holds the person's refusals of sites (operation "consent", result "denied", and "denial_forgotten" when
undone), so a site that stopped working can be traced to a "deny" pressed by mistake.

Append-only. Each entry is written with one write(2) before the reply goes out, so it survives the agent being
killed right after a signature; a background thread then fsyncs the file (one fsync per burst of entries), so it
also survives a power loss moments later. The fsync is not on the signing path: on a disk it costs milliseconds,
which a portal signing hundreds of documents in a row, and every other page waiting on the event loop, would pay
per signature. It records the site, the operation, the certificate (serial and owner) and the SHA-256 of what was
signed — never a password, a PIN or a key byte, and never the document itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"


@dataclass(frozen=True)
class JournalEntry:
    time: str  # ISO 8601, UTC
    site: str  # the page's Origin
    operation: str  # the E-IMZO function, e.g. "pkcs7.create_pkcs7"
    certificate_serial: str  # lower-case hex, "" when unknown
    owner: str  # certificate CN (or the alias when the key file could not be opened)
    content_sha256: str  # hex SHA-256 of the signed content, "" when nothing was signed
    #: "signed", "cancelled", "wrong_password" (the tries ran out), "failed:<status>", "refused:login_origin" (a
    #: login challenge for another site, policy/login_origin.py); consent: "denied", "denial_forgotten"
    result: str
    #: Wrong passwords typed in this attempt (also when it then succeeded): password guessing shows up here.
    failed_attempts: int = 0


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        #: Entries written, and how many of them the background thread has fsynced (guarded by `_synced`).
        self._written = 0
        self._durable = 0
        self._synced = threading.Condition()
        self._syncer: threading.Thread | None = None

    def append(self, entry: JournalEntry) -> None:
        """Write one entry; a journal that cannot be written is logged, never fatal to signing."""
        # vars(), not asdict(): the fields are plain str and int, and asdict's deep copy costs more than the write.
        line = json.dumps(vars(entry), ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            try:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                except FileNotFoundError:  # the first entry (or the folder was removed): make the folder once
                    self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode("utf-8"))
                finally:
                    os.close(fd)
            except OSError as exc:
                log.error("cannot write the signing journal %s: %s", self.path, exc.strerror or exc)
                return
        with self._synced:
            self._written += 1
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync_forever, name="journal-fsync", daemon=True)
                self._syncer.start()
            self._synced.notify_all()

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every entry written so far is on disk (tests, and the agent's orderly exit)."""
        with self._synced:
            target = self._written
            return self._synced.wait_for(lambda: self._durable >= target, timeout)

    def _sync_forever(self) -> None:
        while True:
            with self._synced:
                self._synced.wait_for(lambda: self._durable < self._written)
                target = self._written  # one fsync covers every entry written until now
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                log.error("cannot sync the signing journal %s: %s", self.path, exc.strerror or exc)
            with self._synced:
                self._durable = max(self._durable, target)
                self._synced.notify_all()

    def entries(self, since: dt.datetime | None = None) -> Iterator[JournalEntry]:
        """Entries in order; a damaged line (e.g. a torn write after power loss) is skipped."""
        try:
            handle = self.path.open(encoding="utf-8")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    entry = JournalEntry(**json.loads(line))
                    moment = dt.datetime.fromisoformat(entry.time)
                except (ValueError, TypeError):
                    continue
                if since is None or moment >= since:
                    yield entry


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
