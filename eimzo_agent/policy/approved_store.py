"""Domains whose API key was verified, remembered across restarts (E-IMZO's "Список добавленных API-Key").

Portals call `apikey` once and then expect the agent to remember them: some (e.g. clients since E-IMZO 6.0.6)
call `list_all_certificates` straight away on later visits without sending their key again. So every domain a
verifier approved is written to a small JSON file in the user's data folder and loaded at start-up.

The file holds only domain names (the keys themselves are public and can be re-sent). It is private to the
user (folder 0700, a new file 0600) and replaced atomically, so a crash mid-write leaves the old list or the new
one.
A damaged or unreadable file is logged and treated as empty: losing the list only means portals must send their
key once more, whereas refusing to start would lock the person out of signing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from eimzo_agent.fsutil import write_atomically
from eimzo_agent.keys.errors import KeyStoreError

log = logging.getLogger(__name__)

APPROVED_FILE = "approved-domains.json"
_FORMAT_VERSION = 1

#: What a stored site can look like: "http(s)://host" (host names, IP addresses), or a bare host as earlier versions
#: wrote; anything else in the file is a sign of tampering or damage and is skipped rather than trusted.
_DOMAIN = re.compile(r"(https?://)?[a-z0-9:\[]([a-z0-9_.:\[\]-]{0,251}[a-z0-9:\]])?")
#: A file larger than this is not ours: do not read megabytes into memory at start-up.
_MAX_FILE_BYTES = 1024 * 1024


class ApprovedDomainStore:
    """The JSON file `{"version": 1, "domains": [...]}` at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None  # the file as we last read or wrote it

    def changed(self) -> set[str] | None:
        """The domains, when someone else rewrote the file since we last read or wrote it (e.g. `eimzo-agent sites
        revoke` while the agent runs); None when it is as we left it."""
        return None if self.stamp() == self._stamp else self.load()

    def load(self) -> set[str]:
        """The remembered domains; empty (with a logged warning) when the file is missing, damaged or unreadable."""
        self._stamp = self.stamp()
        try:
            if self.path.stat().st_size > _MAX_FILE_BYTES:
                log.warning("%s is larger than %d bytes; ignoring it", self.path, _MAX_FILE_BYTES)
                return set()
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            log.warning("cannot read the approved-domain list %s (%s); starting with an empty list", self.path, exc)
            return set()
        return self._domains_of(data)

    def stamp(self) -> tuple[int, int] | None:
        """(mtime, size) of the file, None when absent."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def save(self, domains: Iterable[str]) -> None:
        """Replace the file with `domains`; failures are logged, never raised (the approval still holds in memory)."""
        text = json.dumps({"version": _FORMAT_VERSION, "domains": sorted(set(domains))}, indent=1) + "\n"
        with self._lock:
            try:
                self._make_private_directory()
                # A new file is created 0600; temp file + rename, so a crash never leaves half a list.
                write_atomically(self.path, text.encode("utf-8"))
                self._stamp = self.stamp()
            except (OSError, KeyStoreError) as exc:
                log.warning("cannot save the approved-domain list %s: %s", self.path, exc)

    def _domains_of(self, data: object) -> set[str]:
        if not isinstance(data, dict) or not isinstance(data.get("domains"), list):
            log.warning("%s is not an approved-domain list; starting with an empty list", self.path)
            return set()
        domains = set()
        for entry in data["domains"]:
            if isinstance(entry, str) and _DOMAIN.fullmatch(entry):
                domains.add(entry)
            else:
                log.warning("skipping a malformed entry in %s: %r", self.path, entry)
        return domains

    def _make_private_directory(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return  # an existing folder may be shared with other files of ours: leave its mode alone
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered through the umask
