"""Origin-bound login challenges: a page may only have the person sign a login meant for its own origin.

Our portal server's challenge names the site it was issued for (eimzo_agent/login_challenge.py). A phishing page
can fetch a real portal's challenge and ask the agent to sign it; the browser still reports the phishing page's
own Origin in the WebSocket handshake, so the agent can tell. Before anything is asked or signed, every signing
path (pkcs7.create_pkcs7, pkcs7.append_pkcs7_attached, batch.create_pkcs7) passes its content through
`LoginOriginGuard.check`: content that does not start with the challenge prefix is left alone (E-IMZO's UUID
challenges, every document); content that does must parse and name exactly the calling page's origin, else the
call is refused with -1022 naming both origins, the person is warned in the agent's dialog, and the signing
journal records the attempt (result "refused:login_origin"), so a phishing attempt can be traced afterwards.

Warnings must not become a way to flood the screen: a connection gets at most one, a second relay of a site
while its warning is still on screen is refused without another, and the prompt queue's per-site limits and
cool-down apply (closing a warning counts as a cancel there).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict

from eimzo_agent import login_challenge
from eimzo_agent.policy.asking import can_ask
from eimzo_agent.policy.journal import Journal, JournalEntry, now_utc
from eimzo_agent.protocol.calls import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused
from eimzo_agent.ui.prompter import Prompter, PromptRequest

log = logging.getLogger(__name__)

#: The signing journal's result for a refused challenge.
REFUSED = "refused:login_origin"
#: Connections whose warning was shown, remembered at most (oldest forgotten first): bounded memory.
MAX_WARNED_CONNECTIONS = 4096


class LoginOriginGuard:
    """Refuses, and warns about, login challenges relayed from a page of another origin."""

    def __init__(self, prompter: Prompter, journal: Journal | None = None) -> None:
        self.prompter = prompter
        self.journal = journal
        self._warned: OrderedDict[int, None] = OrderedDict()
        self._showing: set[str] = set()
        #: Warnings still on screen after their page went away (kept referenced until closed).
        self._background: set[asyncio.Task[None]] = set()

    async def check(self, call: Call, content: bytes) -> None:
        """Return when `content` may be signed for this call's page; raise the refusal (after the warning) when
        it is a login challenge for another origin, or claims to be one and is malformed."""
        if not login_challenge.looks_like_challenge(content):
            return
        caller = call.caller
        challenge = login_challenge.parse_challenge(content)
        page = _page_origin(caller.origin) if not caller.opaque else None
        if challenge is not None and page is not None and challenge.origin == page:
            return
        if challenge is None:
            error = EimzoError(Status.DOMAIN_NOT_ALLOWED, "login_challenge_malformed")
        elif page is None:
            error = EimzoError(Status.DOMAIN_NOT_ALLOWED, "login_origin_unknown", login_site=challenge.origin)
        else:
            error = EimzoError(Status.DOMAIN_NOT_ALLOWED, "login_origin_mismatch", login_site=challenge.origin,
                               site=page)
        log.warning("refused to sign a login challenge for %s requested by %s: %s",
                    challenge.origin if challenge else "(malformed challenge)", caller.label or "(no origin)",
                    "malformed" if challenge is None else "another origin")
        if self.journal is not None:
            # No key was touched: no certificate; the content's hash ties the entry to the portal's challenge.
            self.journal.append(JournalEntry(time=now_utc(), site=caller.label, operation=call.function.full_name,
                                             certificate_serial="", owner="",
                                             content_sha256=hashlib.sha256(content).hexdigest(),
                                             result=REFUSED))
        await self._warn(call, challenge.origin if challenge else "")
        raise error

    async def _warn(self, call: Call, login_site: str) -> None:
        caller = call.caller
        connection, page = call.context.connection_id, caller.label
        if connection in self._warned or page in self._showing:
            return  # this connection was warned already, or the same page's warning is on screen now
        self._warned[connection] = None
        while len(self._warned) > MAX_WARNED_CONNECTIONS:
            self._warned.popitem(last=False)
        if not can_ask(self.prompter):
            return  # nobody to show it to: the log line above and the page's reply are all there is
        request = PromptRequest(kind="origin_warning", site=page, key_label="", operation="login",
                                language=call.language, caller=caller, login_origin=login_site)
        self._showing.add(page)
        task = asyncio.create_task(self._show(request))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        # The page going away must not take the warning off the screen (it stays until the person closes it):
        # shielded, so cancelling this call leaves the task running.
        await asyncio.shield(task)

    async def _show(self, request: PromptRequest) -> None:
        try:
            await self.prompter.ask(request)  # the answer means nothing: closing the warning is all it asks
        except PromptRefused as exc:
            log.info("login-origin warning not shown (%s): the site's questions are limited", exc.why)
        except Exception:
            log.exception("login-origin warning could not be shown")
        finally:
            self._showing.discard(request.site)


def _page_origin(origin: str | None) -> str | None:
    """The calling page's origin in the challenge's canonical form; None when the page has none."""
    if not origin:
        return None
    try:
        return login_challenge.normalise_origin(origin)
    except ValueError:
        return None
