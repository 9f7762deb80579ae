"""Which prompter asks the person on this machine: askpass when configured, else the Tk dialog when there is a
display, else nobody (every question is a cancel, with a hint in the log). Always behind the one queue."""

from __future__ import annotations

import logging

from eimzo_agent.ui.prompt_queue import SerialPrompter
from eimzo_agent.ui.prompter import AskpassPrompter, NoPrompter, display_available

log = logging.getLogger(__name__)


def choose_prompter(askpass: str | None, timeout: float = 300.0) -> SerialPrompter:
    if askpass:
        return SerialPrompter(AskpassPrompter(askpass, timeout))
    if display_available():
        try:
            from eimzo_agent.ui.tk_dialog import TkPrompter
        except ImportError as exc:  # Python built without Tk
            log.warning("no Tk for the password dialog (%s)", exc)
        else:
            return SerialPrompter(TkPrompter(timeout))
    return SerialPrompter(NoPrompter())
