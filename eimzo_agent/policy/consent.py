"""Asking the person whether an unknown site may use their signing keys.

A site with neither a verified API key nor an admin allowlist entry is not refused outright: the person is asked
— "<site> asks to use your signing keys" — and may allow it once (until the agent restarts), always (remembered
in the user's data folder, revocable from the tray or with `eimzo-agent sites revoke`), or deny it (remembered
until the agent restarts, so a refused site cannot pester the person). Answers are bound to the site's scheme and
host: allowing https://example.uz says nothing about http://example.uz.

Only an explicit "deny" is remembered as a denial: a question closed, cancelled or left to time out refuses that
one request and the site may ask again later (the prompt queue's cool-down stops a site that keeps asking).

An opaque origin ("null": a file:// page or a sandboxed iframe of *any* site) cannot be named, so nothing about it
is remembered: each of its connections is asked about again, with a warning, and "always" is never offered.

An admin can switch the question off (`[sites] ask_unknown_sites = false`); unknown sites then get -1022 straight
away, as with E-IMZO.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from eimzo_agent.policy.asking import ask_person
from eimzo_agent.policy.domains import revocation_targets, stored_sites
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import PromptRequest

if TYPE_CHECKING:
    from eimzo_agent.caller import Caller
    from eimzo_agent.protocol.calls import CallContext
    from eimzo_agent.ui.prompter import Prompter

log = logging.getLogger(__name__)

CONSENT_FILE = "consented-sites.json"
ANSWERS = {"always": "always", "once": "once", "deny": "deny", "never": "deny", "no": "deny"}
#: Opaque connections allowed "this time" that are remembered at most (each entry is one live connection).
MAX_OPAQUE_GRANTS = 256


class SiteStore(Protocol):
    def load(self) -> Iterable[str]: ...

    def save(self, sites: Iterable[str]) -> None: ...

    def changed(self) -> Iterable[str] | None: ...


class SiteConsent:
    def __init__(self, store: SiteStore | None, prompter: Prompter | None, *, ask: bool = True) -> None:
        self.store = store
        self.prompter = prompter
        self.ask_enabled = ask and prompter is not None
        self._always: set[str] = set(stored_sites(store.load())) if store is not None else set()
        self._once: set[str] = set()
        self._denied: set[str] = set()
        #: Opaque callers allowed "this time": by connection, since "null" names no site.
        self._opaque_grants: dict[int, None] = {}
        self._questions: dict[str, _SharedQuestion] = {}
        self._lock = threading.Lock()

    def allowed(self, caller: Caller) -> bool:
        """Without asking: did the person already allow this site?"""
        site = caller.site
        if site is None:
            return False
        self._reload_if_changed()
        with self._lock:
            return site in self._always or site in self._once

    def sites(self) -> list[str]:
        self._reload_if_changed()
        with self._lock:
            return sorted(self._always | self._once)

    def revoke(self, site: str) -> bool:
        """Forget an "always" or "once" answer for `site` ("https://host"; a bare host revokes both schemes)."""
        targets = revocation_targets(site)
        with self._lock:
            known = any(t in self._always or t in self._once for t in targets)
            for target in targets:
                self._always.discard(target)
                self._once.discard(target)
            snapshot = sorted(self._always)
        if known and self.store is not None:
            self.store.save(snapshot)
        return known

    async def request(self, context: CallContext, language: str) -> None:
        """Return when the person allows the caller (asking once per site at a time); raise `EimzoError` else."""
        caller = context.caller
        if caller.opaque:
            await self._request_opaque(context, language)
            return
        site = caller.site
        if site is None:
            raise EimzoError(Status.DOMAIN_UNKNOWN, "domain_unknown")
        if self.allowed(caller):
            return
        with self._lock:
            if site in self._denied:
                raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_denied", site=site)
            if not self.ask_enabled:
                raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "domain_not_allowed", domain=caller.domain)
            question = self._questions.get(site)
            if question is None or question.withdrawn:
                question = self._questions[site] = _SharedQuestion(self._ask(caller, language))
        try:
            answer = await question.wait()
        finally:
            with self._lock:
                if self._questions.get(site) is question and question.finished:
                    del self._questions[site]
        self._record(site, answer)
        if answer in ("always", "once"):
            return
        if answer == "deny":
            raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_denied", site=site)
        raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_unanswered", site=site)

    async def _request_opaque(self, context: CallContext, language: str) -> None:
        with self._lock:
            if context.connection_id in self._opaque_grants:
                return
            if not self.ask_enabled:
                raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "opaque_refused")
        answer = await self._ask(context.caller, language)
        if answer == "once":
            with self._lock:
                self._opaque_grants[context.connection_id] = None
                while len(self._opaque_grants) > MAX_OPAQUE_GRANTS:
                    del self._opaque_grants[next(iter(self._opaque_grants))]
            return
        if answer == "deny":
            raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_denied", site=context.caller.label)
        raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_unanswered", site=context.caller.label)

    def connection_closed(self, connection_id: int) -> None:
        """An opaque page's "allow this time" ends with its connection."""
        with self._lock:
            self._opaque_grants.pop(connection_id, None)

    async def _ask(self, caller: Caller, language: str) -> str | None:
        assert self.prompter is not None
        reply = await ask_person(self.prompter, PromptRequest(
            kind="consent", site=caller.label, key_label="", operation="consent", language=language, caller=caller))
        answer = ANSWERS.get((reply or "").strip().lower())
        if caller.opaque and answer == "always":
            answer = "once"  # never remembered: "null" is every sandboxed page on the Internet
        return answer

    def _record(self, site: str, answer: str | None) -> None:
        with self._lock:
            if answer == "always":
                self._always.add(site)
                snapshot = sorted(self._always)
            elif answer == "once":
                self._once.add(site)
                return
            elif answer == "deny":
                self._denied.add(site)
                log.info("the person refused a site the use of signing keys")
                return
            else:
                return  # closed, cancelled or timed out: not an answer, nothing to remember
        if self.store is not None:
            self.store.save(snapshot)

    def _reload_if_changed(self) -> None:
        """`eimzo-agent sites revoke` edits the file while the agent runs: pick the change up."""
        fresh = self.store.changed() if self.store is not None else None
        if fresh is not None:
            with self._lock:
                self._always = stored_sites(fresh)


class _SharedQuestion:
    """One question on screen for every request of a site that waits for it.

    The question runs as its own task, so a page that goes away (its request cancelled) does not take the
    question away from the site's other waiting requests; only when no request waits any more is it withdrawn.
    """

    def __init__(self, ask: Coroutine[Any, Any, str | None]) -> None:
        self._task: asyncio.Task[str | None] = asyncio.ensure_future(ask)
        self._waiting = 0

    @property
    def finished(self) -> bool:
        return self._task.done()

    @property
    def withdrawn(self) -> bool:
        """Taken off the screen because every page that waited went away: a new request must ask anew."""
        return self._task.cancelled()

    async def wait(self) -> str | None:
        self._waiting += 1
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._waiting == 1 and not self._task.done():
                self._task.cancel()  # the last page waiting went away: take the question off the screen
            raise
        finally:
            self._waiting -= 1
