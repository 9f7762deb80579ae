"""How the agent asks the person at the keyboard for a key password.

The page never sees or supplies the password: the agent asks through a `Prompter`. On a desktop that is a
Tk dialog; in kiosks, CI and headless servers it is an askpass program (like SSH_ASKPASS) that prints the
password on stdout. Prompts are serialised: one question on screen at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from typing import Literal, Protocol

from eimzo_agent import i18n

log = logging.getLogger(__name__)

#: "pin" = a token's user PIN (plugins/hardware.py); asked exactly like a key password.
PromptKind = Literal["password", "new_password", "repeat_new_password", "pin"]
Operation = Literal["sign", "cosign", "verify_password", "change_password"]

#: An askpass program answers with one line; anything longer is not a password.
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True)
class PromptRequest:
    kind: PromptKind
    #: The page's Origin from the handshake — never a text the page chose.
    site: str
    #: Who owns the key (certificate CN, PINFL/TIN), for the person to recognise it.
    key_label: str
    operation: Operation
    attempt: int = 1
    max_attempts: int = 3
    #: True when the previous try was a wrong password.
    retry: bool = False
    language: str = i18n.DEFAULT_LANGUAGE

    def text(self) -> str:
        """The whole question as plain text, in the request's language."""
        t = lambda name, **kw: i18n.text(self.language, "prompt", name, **kw)  # noqa: E731
        lines = []
        if self.retry:
            lines.append(t("wrong_pin" if self.kind == "pin" else "wrong_password"))
            lines.append(t("attempts_left", count=self.max_attempts - self.attempt + 1))
        heading = {"password": "enter_password", "new_password": "new_password", "pin": "enter_pin"}.get(
            self.kind, "repeat_new_password"
        )
        lines.append(t(heading))
        lines.append(t("key", key=self.key_label))
        lines.append(t("site", site=self.site))
        lines.append(t("operation", operation=t(f"op_{self.operation}")))
        return "\n".join(lines)


class Prompter(Protocol):
    async def ask(self, request: PromptRequest) -> str | None:
        """The typed secret, or None when the person cancelled (or no one can be asked)."""


class AskpassPrompter:
    """Runs PROGRAM with the question as its only argument; its stdout (one line) is the answer.

    A non-zero exit status means "cancel", as with SSH_ASKPASS. The program also gets the parts of the question
    in environment variables (EIMZO_AGENT_PROMPT_KIND, _SITE, _KEY, _OPERATION, _ATTEMPT) so scripts can decide
    without parsing translated text.
    """

    def __init__(self, program: str, timeout: float = 300.0) -> None:
        self.program = program
        self.timeout = timeout

    async def ask(self, request: PromptRequest) -> str | None:
        env = dict(os.environ)
        env.update(
            EIMZO_AGENT_PROMPT_KIND=request.kind,
            EIMZO_AGENT_SITE=request.site,
            EIMZO_AGENT_KEY=request.key_label,
            EIMZO_AGENT_OPERATION=request.operation,
            EIMZO_AGENT_ATTEMPT=str(request.attempt),
        )
        try:
            process = await asyncio.create_subprocess_exec(
                self.program,
                request.text(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            log.error("askpass program %s could not be started: %s", self.program, exc.strerror or exc)
            return None
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.warning("askpass program gave no answer within %.0f s: treated as cancel", self.timeout)
            return None
        except asyncio.CancelledError:
            # The page went away while the question was open: take the question off the screen too.
            process.kill()
            raise
        if process.returncode != 0:
            return None
        answer = stdout[:MAX_ANSWER_BYTES].decode("utf-8", errors="replace")
        if answer.endswith("\n"):
            answer = answer[:-1]
        if answer.endswith("\r"):
            answer = answer[:-1]
        return answer


class NoPrompter:
    """Used when there is no display and no askpass program: every question is a cancel, with a hint in the log."""

    async def ask(self, request: PromptRequest) -> str | None:
        log.error(
            "a site asked to use a key, but the agent cannot ask for its password: no display for the dialog "
            "and no askpass program (use --askpass PROGRAM or set %s)",
            "EIMZO_AGENT_ASKPASS",
        )
        return None


class SerialPrompter:
    """One question at a time: concurrent requests wait for the dialog in front of them."""

    def __init__(self, inner: Prompter) -> None:
        self.inner = inner
        self._lock = asyncio.Lock()

    async def ask(self, request: PromptRequest) -> str | None:
        async with self._lock:
            return await self.inner.ask(request)


def display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def choose_prompter(askpass: str | None, timeout: float = 300.0) -> Prompter:
    """askpass when configured, else the Tk dialog when a display exists, else NoPrompter."""
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
