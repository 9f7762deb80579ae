"""Asking the person, as every caller of the prompter needs it: a question the prompt queue refused without
asking (flooding, cool-down) becomes the page's reply, E-IMZO's -5001 with a reason that says why; a question on
a machine where nobody can be asked (no screen, no askpass program) gets a reason that names that cause."""

from __future__ import annotations

import logging

from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused, SerialPrompter
from eimzo_agent.ui.prompter import NoPrompter, Prompter, PromptRequest

log = logging.getLogger(__name__)

#: Questions whose cancel E-IMZO answers with -5000 ("password entry cancelled"); the rest are -5001.
_SECRET_KINDS = frozenset({"password", "new_password", "repeat_new_password", "pin", "change_password"})


def can_ask(prompter: Prompter) -> bool:
    """False when nobody can be asked (no display, no askpass program)."""
    inner = prompter.inner if isinstance(prompter, SerialPrompter) else prompter
    return not isinstance(inner, NoPrompter)


def refused(exc: PromptRefused) -> EimzoError:
    """E-IMZO's -5001 "operation cancelled", saying how long to wait after repeated cancels."""
    if exc.why == "cooldown" and exc.retry_after_seconds:
        return EimzoError(Status.OPERATION_CANCELLED, "prompt_cooldown", seconds=exc.retry_after_seconds)
    return EimzoError(Status.OPERATION_CANCELLED, "prompt_busy")


def nobody_to_ask(request: PromptRequest) -> EimzoError:
    """The status a cancel of this question gets (pages already handle it), with a reason that says the agent
    cannot show a dialog here and what fixes that. Not counted as a cancel: no cool-down follows."""
    log.error("%s asked for something only the person can allow (%s), but the agent cannot ask: no display for the "
              "dialog and no askpass program (start the agent in the desktop session, or use --askpass PROGRAM or "
              "set EIMZO_AGENT_ASKPASS)", request.site or "a site", request.kind)
    status = Status.PASSWORD_CANCELLED if request.kind in _SECRET_KINDS else Status.OPERATION_CANCELLED
    return EimzoError(status, "no_prompter")


async def ask_person(prompter: Prompter, request: PromptRequest) -> str | None:
    """The person's answer (None: cancelled); raises `EimzoError` when the queue refused to ask or nobody can."""
    if not can_ask(prompter):
        raise nobody_to_ask(request)
    try:
        return await prompter.ask(request)
    except PromptRefused as exc:
        raise refused(exc) from None
