"""Asking the person, as every caller of the prompter needs it: a question the prompt queue refused without
asking (flooding, cool-down) becomes the page's reply, E-IMZO's -5001 with a reason that says why."""

from __future__ import annotations

from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused
from eimzo_agent.ui.prompter import Prompter, PromptRequest


def refused(exc: PromptRefused) -> EimzoError:
    """E-IMZO's -5001 "operation cancelled", saying how long to wait after repeated cancels."""
    if exc.why == "cooldown" and exc.retry_after_seconds:
        return EimzoError(Status.OPERATION_CANCELLED, "prompt_cooldown", seconds=exc.retry_after_seconds)
    return EimzoError(Status.OPERATION_CANCELLED, "prompt_busy")


async def ask_person(prompter: Prompter, request: PromptRequest) -> str | None:
    """The person's answer (None: cancelled); raises `EimzoError` when the queue refused to ask."""
    try:
        return await prompter.ask(request)
    except PromptRefused as exc:
        raise refused(exc) from None
