"""Which web domains may use the signing functions.

A domain is approved when it is the local machine, when the admin allowlist names it, or when a page presented
an API key that an `ApiKeyVerifier` accepted. Verifiers plug in here: the O'zDSt work adds the check of the
vendor's signed keys; without a verifier an API key approves nothing (we cannot tell a real key from a guess).
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


class ApiKeyVerifier(Protocol):
    def verify(self, domain: str, key: str) -> bool | None:
        """True: the key is valid for the domain; False: it is not; None: this verifier cannot judge."""


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
    def __init__(self, allowlist: Iterable[str] = (), verifiers: Sequence[ApiKeyVerifier] = ()) -> None:
        self.allowlist = tuple(p for p in (s.strip().lower() for s in allowlist) if p)
        self.verifiers = list(verifiers)
        self._approved: set[str] = set()
        self._lock = threading.Lock()

    def is_allowed(self, domain: str) -> bool:
        domain = domain.lower()
        if domain in LOCAL_DOMAINS or any(_matches(domain, p) for p in self.allowlist):
            return True
        with self._lock:
            return domain in self._approved

    def install_keys(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Remember domains whose keys verify; return the domains whose keys were found invalid."""
        invalid = []
        for domain, key in pairs:
            verdict = self._verify(domain, key)
            if verdict is True:
                with self._lock:
                    self._approved.add(domain)
            elif verdict is False:
                invalid.append(domain)
        return invalid

    def approved_domains(self) -> list[str]:
        with self._lock:
            return sorted(self._approved)

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
