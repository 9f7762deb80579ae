"""One password question on screen at a time, and no site can bury the person in questions.

Requests wait in a queue in front of the one dialog. A site (the handshake's Origin) may have at most
`max_pending_per_site` questions waiting or showing; more are refused at once with E-IMZO's -5001 "Операция
отменена". A site whose questions the person cancelled `cancels_for_cooldown` times within `cancel_window`
seconds is refused for `cooldown` seconds: cancelling is how people say "stop asking". When the dialog closes,
the next question comes preferably from another site, so one busy site never starves the others.

A request whose page went away is cancelled by the server; if it was still waiting it just leaves the queue, and
if its dialog was showing the inner prompter closes it (see `TkPrompter`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import PasswordChange, Prompter, PromptRequest

log = logging.getLogger(__name__)

T = TypeVar("T")


class PromptRefused(EimzoError):
    """A question refused without asking (flooding or cool-down): the page gets -5001 like a cancelled operation.

    An `EimzoError`, so every caller of a prompter (key files, tokens) answers the page correctly without
    knowing about the queue.
    """

    def __init__(self, why: str) -> None:
        super().__init__(Status.OPERATION_CANCELLED, "operation_cancelled")
        self.why = why


@dataclass(frozen=True)
class QueueLimits:
    max_pending_per_site: int = 3
    cancels_for_cooldown: int = 3
    cancel_window: float = 60.0
    cooldown: float = 60.0


class SerialPrompter:
    """Wraps a prompter: queues its questions, limits each site, and forwards to it one question at a time."""

    def __init__(self, inner: Prompter, limits: QueueLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.limits = limits or QueueLimits()
        self._clock = clock
        self._pending: dict[str, int] = {}
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []
        self._busy = False
        self._last_site: str | None = None
        self._cancels: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    @property
    def supports_change(self) -> bool:
        """True when the inner prompter asks current, new and repeated password in one dialog."""
        return callable(getattr(self.inner, "ask_change", None))

    def pending(self, site: str) -> int:
        return self._pending.get(site, 0)

    async def ask(self, request: PromptRequest) -> str | None:
        return await self._run(request, lambda: self.inner.ask(request))

    async def ask_change(self, request: PromptRequest) -> PasswordChange | None:
        ask_change = getattr(self.inner, "ask_change", None)
        if ask_change is None:
            raise TypeError(f"{type(self.inner).__name__} has no combined change-password dialog")
        return await self._run(request, lambda: ask_change(request))

    async def _run(self, request: PromptRequest, show: Callable[[], Awaitable[T | None]]) -> T | None:
        site = request.site
        self._refuse_if_blocked(site)
        if self._pending.get(site, 0) >= self.limits.max_pending_per_site:
            log.warning("refused a password question from %s: %d already waiting", site or "?",
                        self._pending[site])
            raise PromptRefused("too many pending")
        self._pending[site] = self._pending.get(site, 0) + 1
        try:
            await self._acquire(site)
            try:
                # The person may have cancelled this site's earlier questions while this one waited.
                self._refuse_if_blocked(site)
                answer = await show()
            finally:
                self._release()
        finally:
            self._pending[site] -= 1
            if not self._pending[site]:
                del self._pending[site]
        if answer is None:
            self._note_cancel(site)
        return answer

    def _refuse_if_blocked(self, site: str) -> None:
        until = self._blocked_until.get(site)
        if until is None:
            return
        if self._clock() < until:
            log.info("refused a password question from %s: cooling down after repeated cancels", site or "?")
            raise PromptRefused("cool-down")
        del self._blocked_until[site]

    def _note_cancel(self, site: str) -> None:
        now = self._clock()
        recent = self._cancels.setdefault(site, deque())
        recent.append(now)
        while recent and recent[0] <= now - self.limits.cancel_window:
            recent.popleft()
        if len(recent) >= self.limits.cancels_for_cooldown:
            log.warning("%s: %d password questions cancelled within %.0f s; its questions are refused for %.0f s",
                        site or "?", len(recent), self.limits.cancel_window, self.limits.cooldown)
            self._blocked_until[site] = now + self.limits.cooldown
            recent.clear()

    async def _acquire(self, site: str) -> None:
        if not self._busy:
            self._busy = True
            self._last_site = site
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (site, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the turn was handed to us just as the page went away: pass it on
            else:
                self._waiters.remove(entry)
            raise

    def _release(self) -> None:
        if not self._waiters:
            self._busy = False
            self._last_site = None
            return
        index = next((i for i, (s, _) in enumerate(self._waiters) if s != self._last_site), 0)
        site, future = self._waiters.pop(index)
        self._last_site = site
        future.set_result(None)
