"""Which sites may use the signing functions without asking the person.

A caller is allowed when it is the local machine, when the admin allowlist names its host, or when one of its
pages presented an E-IMZO API key for its own host that an `ApiKeyVerifier` accepted. Verifiers plug in here
(`policy/apikeys.py` checks the vendor's signed keys offline); without a verifier an API key approves nothing.

API-key approvals are remembered across restarts by an `ApprovedStore` (`policy/approved_store.py`), as E-IMZO
does (portals do not always send their key again), and they are bound to the scheme and host of the page that
presented the key: an approval won over https never covers the same host over http. An opaque origin ("null",
any sandboxed frame) is never approved by a key: the vendor publishes a key for "null", so a key proves nothing
about such a page (see docs/security.md).
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from eimzo_agent.caller import LOCAL_HOSTS, Caller

log = logging.getLogger(__name__)

#: Keys checked per apikey call; portals send a handful. Each check costs milliseconds of EC arithmetic, and any
#: page may call apikey, so a frame stuffed with thousands of pairs must not keep the agent busy: the rest count
#: as invalid.
MAX_KEYS_PER_CALL = 64


class ApiKeyVerifier(Protocol):
    def verify(self, domain: str, key: str) -> bool | None:
        """True: the key is valid for the domain; False: it is not; None: this verifier cannot judge."""


class ApprovedStore(Protocol):
    def load(self) -> Iterable[str]:
        """Sites approved in earlier runs (never raises: a damaged store reads as empty)."""

    def save(self, sites: Iterable[str]) -> None:
        """Remember exactly `sites` (never raises: failures are logged)."""

    def changed(self) -> Iterable[str] | None:
        """The sites, when someone else rewrote the store since we last read or wrote it; else None."""


def parse_key_pairs(arguments: Sequence[str]) -> list[tuple[str, str]] | None:
    """E-IMZO's flat [domain, key, domain, key, …] list; None when it is empty or odd."""
    if not arguments or len(arguments) % 2:
        return None
    pairs = []
    for i in range(0, len(arguments), 2):
        domain, key = arguments[i].strip().lower(), arguments[i + 1].strip()
        if not domain:
            return None
        pairs.append((domain, key))
    return pairs


def _matches(domain: str, pattern: str) -> bool:
    pattern = pattern.strip().lower()
    if pattern.startswith("*."):
        # "*.example.uz" covers every sub-domain but not example.uz itself (write both to allow both).
        return domain.endswith(pattern[1:]) and fnmatch.fnmatchcase(domain, pattern)
    return domain == pattern


class DomainGate:
    def __init__(
        self,
        allowlist: Iterable[str] = (),
        verifiers: Sequence[ApiKeyVerifier] = (),
        store: ApprovedStore | None = None,
    ) -> None:
        self.allowlist = tuple(p for p in (s.strip().lower() for s in allowlist) if p)
        self.verifiers = list(verifiers)
        self.store = store
        self._approved: set[str] = stored_sites(store.load()) if store is not None else set()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    def is_allowed(self, caller: Caller) -> bool:
        """Local pages, the admin's allowlist (by host, any scheme) and API-key approvals (by scheme and host)."""
        if caller.opaque or caller.host is None:
            return False
        if caller.host in LOCAL_HOSTS or self.on_allowlist(caller.host):
            return True
        self._reload_if_changed()
        with self._lock:
            return caller.site in self._approved

    def on_allowlist(self, host: str) -> bool:
        return any(_matches(host, p) for p in self.allowlist)

    def _reload_if_changed(self) -> None:
        """`eimzo-agent sites revoke` edits the store while the agent runs: pick the change up."""
        fresh = self.store.changed() if self.store is not None else None
        if fresh is not None:
            with self._lock:
                self._approved = stored_sites(fresh)

    def install_keys(self, pairs: Sequence[tuple[str, str]], caller: Caller) -> list[str]:
        """Check every key; approve the caller's own site when a key for its host verifies.

        Returns the domains whose keys were found invalid (E-IMZO answers -1020 for the first). Keys for other
        hosts are checked but approve nothing: a key is public and only says which host it was issued for, so it
        may only open the door for a page of that host.
        """
        invalid = []
        approve = False
        for number, (domain, key) in enumerate(pairs):
            verdict = self._verify(domain, key) if number < MAX_KEYS_PER_CALL else False
            if verdict is True:
                approve |= domain == caller.host and not caller.opaque
            elif verdict is False:
                invalid.append(domain)
        site = caller.site
        if approve and site is not None and caller.host not in LOCAL_HOSTS:
            with self._lock:
                added = site not in self._approved
                self._approved.add(site)
            if added:
                self._save()
        return invalid

    def approved_sites(self) -> list[str]:
        with self._lock:
            return sorted(self._approved)

    def revoke(self, site: str) -> bool:
        """Forget an API-key approval ("https://host"; a bare host forgets both schemes); the admin allowlist is
        not touched."""
        targets = revocation_targets(site)
        with self._lock:
            known = any(t in self._approved for t in targets)
            self._approved.difference_update(targets)
        if known:
            self._save()
        return known

    def _save(self) -> None:
        if self.store is None:
            return
        # The snapshot is taken under the save lock, so a slower writer can never put back an older list.
        with self._save_lock:
            with self._lock:
                snapshot = sorted(self._approved)
            self.store.save(snapshot)

    def _verify(self, domain: str, key: str) -> bool | None:
        for verifier in self.verifiers:
            try:
                verdict = verifier.verify(domain, key)
            except Exception:
                log.exception("API key verifier %r failed", verifier)
                continue
            if verdict is not None:
                return verdict
        return None


def stored_sites(entries: Iterable[str]) -> set[str]:
    """Stored approvals are "scheme://host". Earlier versions stored bare hosts, approved over any scheme; they are
    read as https (what portals are served over); "null" is dropped: an opaque origin is never remembered."""
    sites = set()
    for entry in entries:
        entry = entry.strip().lower()
        if not entry or entry == "null":
            continue
        sites.add(entry if "://" in entry else f"https://{entry}")
    return sites


def revocation_targets(site: str) -> list[str]:
    """What `revoke(site)` removes: the site itself, or both schemes when only a host is given."""
    site = site.strip().lower().rstrip("/")
    if "://" in site:
        return [site]
    return [f"https://{site}", f"http://{site}"]
