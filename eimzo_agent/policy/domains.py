"""Which web domains may use the signing functions.

A domain is approved when it is the local machine, when the admin allowlist names it, or when a page presented
an API key that an `ApiKeyVerifier` accepted. Verifiers plug in here (`policy/apikeys.py` checks the vendor's
signed keys offline); without a verifier an API key approves nothing (we cannot tell a real key from a guess).
Approved domains can be remembered across restarts by an `ApprovedStore` (`policy/approved_store.py`), as E-IMZO
does: portals do not always send their key again.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

#: Pages served from the machine itself are the user's own business (developers, the demo portal).
LOCAL_DOMAINS = frozenset({"localhost", "127.0.0.1"})
#: Keys checked per apikey call; portals send a handful. Each check costs milliseconds of EC arithmetic, and any
#: page may call apikey, so a frame stuffed with thousands of pairs must not keep the agent busy: the rest count
#: as invalid.
MAX_KEYS_PER_CALL = 64


class ApiKeyVerifier(Protocol):
    def verify(self, domain: str, key: str) -> bool | None:
        """True: the key is valid for the domain; False: it is not; None: this verifier cannot judge."""


class ApprovedStore(Protocol):
    def load(self) -> Iterable[str]:
        """Domains approved in earlier runs (never raises: a damaged store reads as empty)."""

    def save(self, domains: Sequence[str]) -> None:
        """Remember exactly `domains` (never raises: failures are logged)."""


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
        self._approved: set[str] = {d.lower() for d in store.load()} if store is not None else set()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    def is_allowed(self, domain: str) -> bool:
        domain = domain.lower()
        if domain in LOCAL_DOMAINS or any(_matches(domain, p) for p in self.allowlist):
            return True
        self._reload_if_changed()
        with self._lock:
            return domain in self._approved

    def _reload_if_changed(self) -> None:
        """`eimzo-agent sites revoke` edits the store while the agent runs: pick the change up."""
        changed = getattr(self.store, "changed", None)  # stores without a file never change behind our back
        fresh = changed() if changed is not None else None
        if fresh is not None:
            with self._lock:
                self._approved = {d.lower() for d in fresh}

    def install_keys(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Remember domains whose keys verify; return the domains whose keys were found invalid."""
        invalid = []
        added = False
        for number, (domain, key) in enumerate(pairs):
            verdict = self._verify(domain, key) if number < MAX_KEYS_PER_CALL else False
            if verdict is True:
                with self._lock:
                    # Local domains pass anyway: remembering them would only clutter the store.
                    added |= domain not in self._approved and domain not in LOCAL_DOMAINS
                    self._approved.add(domain)
            elif verdict is False:
                invalid.append(domain)
        if added:
            self._save()
        return invalid

    def approved_domains(self) -> list[str]:
        with self._lock:
            return sorted(self._approved)

    def revoke(self, domain: str) -> bool:
        """Forget an API-key approval (tray: "allowed sites"); the admin allowlist is not touched."""
        with self._lock:
            known = domain.lower() in self._approved
            self._approved.discard(domain.lower())
        if known:
            self._save()
        return known

    def _save(self) -> None:
        if self.store is None:
            return
        # The snapshot is taken under the save lock, so a slower writer can never put back an older list.
        with self._save_lock:
            with self._lock:
                snapshot = sorted(self._approved - LOCAL_DOMAINS)
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
