"""One question on screen at a time, and no site can bury the person in questions.

Requests wait in a queue in front of the one dialog. Limits, each refused at once (the page gets E-IMZO's -5001
"Операция отменена"):
- an origin may have at most `max_pending_per_origin` questions waiting or showing;
- all origins under one registrable domain ("a.soliq.uz", "b.soliq.uz" → "soliq.uz") at most
  `max_pending_per_domain`, so a site cannot multiply its share with sub-domains;
- all sites together at most `max_pending_total`.
A registrable domain whose questions the person cancelled `cancels_for_cooldown` times within `cancel_window`
seconds is refused for `cooldown` seconds: cancelling is how people say "stop asking". When the dialog closes,
the next question comes preferably from another domain, so one busy site never starves the others. Counters of
domains not seen for a while are forgotten, so memory stays bounded however many names a site uses.

A request whose page went away is cancelled by the server; if it was still waiting it just leaves the queue, and
if its dialog was showing the inner prompter closes it (see `TkPrompter`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from eimzo_agent.ui.prompter import (
    BatchProgress,
    BatchPrompter,
    ChangePrompter,
    EnrollChoice,
    EnrollPrompter,
    PasswordChange,
    Prompter,
    PromptRequest,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class PromptRefused(Exception):
    """A question refused without asking. `why`: "origin", "domain" or "total" (too many waiting) or "cooldown"
    (the person kept cancelling); `retry_after`: seconds until this site may ask again (0 when unknown).

    The plugin layer answers the page with -5001, as E-IMZO does for a cancelled operation.
    """

    def __init__(self, why: str, retry_after: float = 0.0) -> None:
        super().__init__(f"question refused: {why}")
        self.why = why
        self.retry_after = retry_after

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after)) if self.retry_after > 0 else 0


@dataclass(frozen=True)
class QueueLimits:
    max_pending_per_origin: int = 3
    max_pending_per_domain: int = 6
    max_pending_total: int = 32
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
        self._pending_origin: dict[str, int] = {}
        self._pending_domain: dict[str, int] = {}
        self._pending_total = 0
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []
        self._busy = False
        self._last_domain: str | None = None
        self._cancels: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._pruned = 0.0

    @property
    def supports_change(self) -> bool:
        """True when the inner prompter asks current, new and repeated password in one dialog."""
        return isinstance(self.inner, ChangePrompter) and self.inner.supports_change

    @property
    def supports_enroll(self) -> bool:
        """True when the inner prompter asks the disk and the new password in one dialog."""
        return isinstance(self.inner, EnrollPrompter) and self.inner.supports_enroll

    @property
    def supports_batch(self) -> bool:
        """True when the inner prompter shows a whole batch, with its progress, in one dialog."""
        return isinstance(self.inner, BatchPrompter) and self.inner.supports_batch

    def pending(self, origin: str) -> int:
        return self._pending_origin.get(origin, 0)

    def cooldowns(self) -> list[tuple[str, int]]:
        """(domain, whole seconds left) for each domain refused after repeated cancels: the tray shows them.

        Called from the tray's thread: the dict is copied in one step (atomic under the GIL) before iterating."""
        now = self._clock()
        blocked = dict(self._blocked_until)
        return sorted((domain, math.ceil(until - now)) for domain, until in blocked.items() if until > now)

    def tracked_domains(self) -> int:
        """How many domains the queue holds counters for (bounded: idle ones are forgotten)."""
        return len(set(self._cancels) | set(self._blocked_until) | set(self._pending_domain))

    async def ask(self, request: PromptRequest) -> str | None:
        return await self._run(request, lambda: self.inner.ask(request))

    async def ask_change(self, request: PromptRequest) -> PasswordChange | None:
        inner = self.inner
        if not isinstance(inner, ChangePrompter):
            raise TypeError(f"{type(inner).__name__} has no combined change-password dialog")
        return await self._run(request, lambda: inner.ask_change(request))

    async def ask_enroll(self, request: PromptRequest) -> EnrollChoice | None:
        inner = self.inner
        if not isinstance(inner, EnrollPrompter):
            raise TypeError(f"{type(inner).__name__} has no combined enrollment dialog")
        return await self._run(request, lambda: inner.ask_enroll(request))

    async def ask_batch(self, request: PromptRequest, progress: BatchProgress) -> str | None:
        inner = self.inner
        if not isinstance(inner, BatchPrompter):
            raise TypeError(f"{type(inner).__name__} has no batch dialog")
        return await self._run(request, lambda: inner.ask_batch(request, progress))

    async def _run(self, request: PromptRequest, show: Callable[[], Awaitable[T | None]]) -> T | None:
        caller = request.caller
        origin = request.site if caller is None else (caller.origin or request.site)
        domain = origin if caller is None else caller.limit_key
        self._forget_idle()
        self._refuse_if_blocked(domain)
        for why, count, limit in (
            ("origin", self._pending_origin.get(origin, 0), self.limits.max_pending_per_origin),
            ("domain", self._pending_domain.get(domain, 0), self.limits.max_pending_per_domain),
            ("total", self._pending_total, self.limits.max_pending_total),
        ):
            if count >= limit:
                log.warning("refused a question: %d already waiting (limit per %s)", count, why)
                raise PromptRefused(why)
        self._pending_origin[origin] = self._pending_origin.get(origin, 0) + 1
        self._pending_domain[domain] = self._pending_domain.get(domain, 0) + 1
        self._pending_total += 1
        try:
            await self._acquire(domain)
            try:
                # The person may have cancelled this site's earlier questions while this one waited.
                self._refuse_if_blocked(domain)
                answer = await show()
            finally:
                self._release()
        finally:
            self._pending_total -= 1
            for counts, key in ((self._pending_origin, origin), (self._pending_domain, domain)):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
        if answer is None:
            self._note_cancel(domain)
        return answer

    def _refuse_if_blocked(self, domain: str) -> None:
        until = self._blocked_until.get(domain)
        if until is None:
            return
        now = self._clock()
        if now < until:
            log.info("refused a question: the site is cooling down after repeated cancels")
            raise PromptRefused("cooldown", until - now)
        del self._blocked_until[domain]

    def _note_cancel(self, domain: str) -> None:
        now = self._clock()
        recent = self._cancels.setdefault(domain, deque())
        recent.append(now)
        while recent and recent[0] <= now - self.limits.cancel_window:
            recent.popleft()
        if len(recent) >= self.limits.cancels_for_cooldown:
            log.warning("%d questions cancelled within %.0f s; the site's questions are refused for %.0f s",
                        len(recent), self.limits.cancel_window, self.limits.cooldown)
            self._blocked_until[domain] = now + self.limits.cooldown
            del self._cancels[domain]

    def _forget_idle(self) -> None:
        """Drop cancel counters older than the window and cool-downs that ended (at most once a second)."""
        now = self._clock()
        if now - self._pruned < 1.0:
            return
        self._pruned = now
        window_start = now - self.limits.cancel_window
        for domain in [d for d, times in self._cancels.items() if not times or times[-1] <= window_start]:
            del self._cancels[domain]
        for domain in [d for d, until in self._blocked_until.items() if until <= now]:
            del self._blocked_until[domain]

    async def _acquire(self, domain: str) -> None:
        if not self._busy:
            self._busy = True
            self._last_domain = domain
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (domain, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the turn was handed to us just as the page went away: pass it on
            elif entry in self._waiters:
                self._waiters.remove(entry)
            raise

    def _release(self) -> None:
        """Hand the dialog to the next waiting question, preferably another domain's. Waiters cancelled in the same
        moment (several tabs closed at once) are skipped: handing the turn to one of them would leave the queue
        busy for ever."""
        self._waiters = [(d, f) for d, f in self._waiters if not f.done()]
        if not self._waiters:
            self._busy = False
            self._last_domain = None
            return
        index = next((i for i, (d, _) in enumerate(self._waiters) if d != self._last_domain), 0)
        domain, future = self._waiters.pop(index)
        self._last_domain = domain
        future.set_result(None)
