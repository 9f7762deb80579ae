"""Asking the person whether an unknown site may use their signing keys.

A site with neither a verified API key nor an admin allowlist entry is not refused outright: the person is asked
— "<site> asks to use your signing keys" — and may allow it once (until the agent restarts), always (remembered
in the user's data folder, revocable from the tray or with `eimzo-agent sites revoke`), or deny it (remembered in
the user's data folder too, so a refused site cannot pester the person; listed by `eimzo-agent sites` and the
tray, undone with `eimzo-agent sites forget` or the tray, and journaled). Answers are bound to the site's scheme
and host: allowing https://example.uz says nothing about http://example.uz.

Only an explicit "deny" is remembered as a denial: a question closed, cancelled or left to time out refuses that
one request and the site may ask again later (the prompt queue's cool-down stops a site that keeps asking).

An opaque origin ("null": a file:// page or a sandboxed iframe of *any* site) cannot be named, so nothing about it
is remembered: each of its connections is asked about again, with a warning, and "always" is never offered.

An admin can switch the question off (`[sites] ask_unknown_sites = false`); unknown sites then get -1022 straight
away, as with E-IMZO. The admin's word also wins over what the person answered earlier: sites once allowed
"always" stay in the file (they come back if the admin switches the question on again) but are not used while the
policy says so; the admin's own `allowed_domains` and verified API keys are judged by the domain gate, not here.

A machine where nobody can be asked (no screen, no askpass program) refuses unknown sites at once too, but says
why: the page's reason names the missing dialog, so the person or their IT can fix it instead of guessing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from eimzo_agent.policy.asking import ask_person
from eimzo_agent.policy.domains import revocation_targets, stored_sites
from eimzo_agent.policy.journal import Journal, JournalEntry, now_utc
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import PromptRequest

if TYPE_CHECKING:
    from eimzo_agent.caller import Caller
    from eimzo_agent.protocol.calls import CallContext
    from eimzo_agent.ui.prompter import Prompter

log = logging.getLogger(__name__)

CONSENT_FILE = "consented-sites.json"
#: Sites the person answered "deny": a file of its own, so `eimzo-agent sites` lists and forgets them.
DENIED_FILE = "denied-sites.json"
ANSWERS = {"always": "always", "once": "once", "deny": "deny", "never": "deny", "no": "deny"}
#: Opaque connections allowed "this time" that are remembered at most (each entry is one live connection).
MAX_OPAQUE_GRANTS = 256


class SiteStore(Protocol):
    def load(self) -> Iterable[str]: ...

    def save(self, sites: Iterable[str]) -> None: ...

    def changed(self) -> Iterable[str] | None: ...


class SiteConsent:
    def __init__(self, store: SiteStore | None, prompter: Prompter | None, *, ask: bool = True,
                 can_ask: bool = True, denied: SiteStore | None = None, journal: Journal | None = None) -> None:
        """`ask`: the admin lets the person decide about unknown sites (False: no question, and the person's
        earlier answers are not used); `can_ask`: someone can be asked on this machine (a screen or askpass)."""
        self.store = store
        self.denied_store = denied
        self.journal = journal
        self.prompter = prompter
        self.person_decides = ask
        self.can_ask = can_ask and prompter is not None
        self.ask_enabled = ask and self.can_ask
        self._always: set[str] = set(stored_sites(store.load())) if store is not None else set()
        self._once: set[str] = set()
        self._denied: set[str] = set(stored_sites(denied.load())) if denied is not None else set()
        #: Opaque callers allowed "this time": by connection, since "null" names no site.
        self._opaque_grants: dict[int, None] = {}
        self._questions: dict[str, _SharedQuestion] = {}
        self._lock = threading.Lock()

    def allowed(self, caller: Caller) -> bool:
        """Without asking: did the person already allow this site (and does the admin let that answer count)?"""
        site = caller.site
        if site is None or not self.person_decides:
            return False
        self._reload_if_changed()
        with self._lock:
            return site in self._always or site in self._once

    def sites(self) -> list[str]:
        """The sites the person's answers allow now (none while the admin's policy overrides them)."""
        if not self.person_decides:
            return []
        self._reload_if_changed()
        with self._lock:
            return sorted(self._always | self._once)

    def denied(self) -> list[str]:
        """Sites the person refused (until the refusal is forgotten)."""
        self._reload_if_changed()
        with self._lock:
            return sorted(self._denied)

    def forget_denial(self, site: str) -> bool:
        """Undo a "deny" for `site` ("https://host"; a bare host both schemes): the site may ask again."""
        self._reload_if_changed()
        targets = revocation_targets(site)
        with self._lock:
            known = [t for t in targets if t in self._denied]
            self._denied.difference_update(known)
            snapshot = sorted(self._denied)
        if known and self.denied_store is not None:
            self.denied_store.save(snapshot)
        for target in known:
            self._journal(target, "denial_forgotten")
        return bool(known)

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
                raise self._refusal(caller)
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
                raise self._refusal(context.caller)
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

    def _refusal(self, caller: Caller) -> EimzoError:
        """Why an unknown site is refused without a question: the admin's policy (E-IMZO's own -1022 text), or a
        machine where nobody can be asked (the reason names the missing dialog)."""
        if not self.person_decides:
            if caller.opaque:
                return EimzoError(Status.DOMAIN_NOT_ALLOWED, "opaque_refused")
            return EimzoError(Status.DOMAIN_NOT_ALLOWED, "domain_not_allowed", domain=caller.domain)
        return EimzoError(Status.DOMAIN_NOT_ALLOWED, "consent_cannot_ask", site=caller.label)

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
                denied = sorted(self._denied)
            else:
                return  # closed, cancelled or timed out: not an answer, nothing to remember
        if answer == "deny":
            log.info("the person refused a site the use of signing keys")
            if self.denied_store is not None:
                self.denied_store.save(denied)
            self._journal(site, "denied")
            return
        if self.store is not None:
            self.store.save(snapshot)

    def _journal(self, site: str, result: str) -> None:
        """The person's refusals (and their undoing) go into the signing journal beside the signatures."""
        if self.journal is not None:
            self.journal.append(JournalEntry(time=now_utc(), site=site, operation="consent", certificate_serial="",
                                             owner="", content_sha256="", result=result))

    def _reload_if_changed(self) -> None:
        """`eimzo-agent sites revoke|forget` edit the files while the agent runs: pick the change up."""
        fresh = self.store.changed() if self.store is not None else None
        if fresh is not None:
            with self._lock:
                self._always = stored_sites(fresh)
        fresh = self.denied_store.changed() if self.denied_store is not None else None
        if fresh is not None:  # `eimzo-agent sites forget`
            with self._lock:
                self._denied = stored_sites(fresh)


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
