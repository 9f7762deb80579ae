"""Asking the person whether an unknown site may use their signing keys.

A domain with neither a verified API key nor an admin allowlist entry is not refused outright: the person is
asked once — "<site> asks to use your signing keys" — and may allow it once (until the agent restarts), always
(remembered in the user's data folder, revocable from the tray or with `eimzo-agent sites revoke`), or deny it
(remembered until the agent restarts, so a refused site cannot pester the person). An admin can switch the
question off (`[sites] ask_unknown_sites = false`); unknown sites then get -1022 straight away, as with E-IMZO.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from eimzo_agent.policy.approved_store import ApprovedDomainStore

if TYPE_CHECKING:
    from eimzo_agent.protocol.dispatcher import CallContext
    from eimzo_agent.ui.prompter import Prompter

log = logging.getLogger(__name__)

CONSENT_FILE = "consented-sites.json"
ANSWERS = {"always": "always", "once": "once", "deny": "deny", "never": "deny", "no": "deny"}


class SiteConsent:
    def __init__(self, store: ApprovedDomainStore | None, prompter: Prompter | None, *, ask: bool = True) -> None:
        self.store = store
        self.prompter = prompter
        self.ask_enabled = ask and prompter is not None
        self._always: set[str] = set(store.load()) if store is not None else set()
        self._once: set[str] = set()
        self._denied: set[str] = set()
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self._lock = threading.Lock()

    def allowed(self, domain: str) -> bool:
        """Without asking: did the person already allow this domain?"""
        self._reload_if_changed()
        with self._lock:
            return domain in self._always or domain in self._once

    def sites(self) -> list[str]:
        self._reload_if_changed()
        with self._lock:
            return sorted(self._always | self._once)

    def revoke(self, domain: str) -> bool:
        with self._lock:
            known = domain in self._always or domain in self._once
            self._always.discard(domain)
            self._once.discard(domain)
            snapshot = sorted(self._always)
        if known and self.store is not None:
            self.store.save(snapshot)
        return known

    async def request(self, context: CallContext, language: str) -> bool:
        """Ask (once per domain at a time) whether the page's domain may use the keys."""
        domain = context.domain
        if domain is None:
            return False
        if self.allowed(domain):
            return True
        with self._lock:
            if domain in self._denied or not self.ask_enabled:
                return False
            pending = self._pending.get(domain)
        if pending is not None:  # several requests of one page wait for the same single question
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[domain] = future
        try:
            answer = await self._ask(context, language)
            granted = self._record(domain, answer)
            future.set_result(granted)
            return granted
        except BaseException:
            future.set_result(False)
            raise
        finally:
            self._pending.pop(domain, None)

    async def _ask(self, context: CallContext, language: str) -> str | None:
        from eimzo_agent.ui.prompter import PromptRequest

        assert self.prompter is not None
        reply = await self.prompter.ask(
            PromptRequest(kind="consent", site=context.origin or "", key_label="", operation="consent",
                          language=language)  # type: ignore[arg-type]
        )
        return ANSWERS.get((reply or "").strip().lower())

    def _record(self, domain: str, answer: str | None) -> bool:
        with self._lock:
            if answer == "always":
                self._always.add(domain)
                snapshot = sorted(self._always)
            elif answer == "once":
                self._once.add(domain)
                return True
            else:
                self._denied.add(domain)
                log.info("the person refused %s the use of signing keys", domain)
                return False
        if self.store is not None:
            self.store.save(snapshot)
        return True

    def _reload_if_changed(self) -> None:
        """`eimzo-agent sites revoke` edits the file while the agent runs: pick the change up."""
        fresh = self.store.changed() if self.store is not None else None
        if fresh is not None:
            with self._lock:
                self._always = set(fresh)
