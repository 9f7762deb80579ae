"""How the agent asks the person at the keyboard for a key password.

The page never sees or supplies the password: the agent asks through a `Prompter`. On a desktop that is a
Tk dialog; in kiosks, CI and headless servers it is an askpass program (like SSH_ASKPASS) that prints the
password on stdout. Prompts are serialised: one question on screen at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.ui.details import DocumentPreview, OwnerDetails, format_size
from eimzo_agent.ui.remember import MAX_REMEMBER_SECONDS

log = logging.getLogger(__name__)

#: "pin" = a token's user PIN (plugins/hardware.py); asked exactly like a key password.
#: "change_password" = one dialog asking current, new and repeated password (`ask_change`).
#: "consent" = may this site use the signing keys at all? (policy/consent.py); answers "once", "always", "deny".
#: "choose_key" = which of several token keys to use (create_pkcs7 with "ckc"/"baikey"); answers its number (1…).
#: "choose_disk" = where a new key file goes (enrollment); `choices` are the disks, answers its number (1…).
#: "enroll" = one dialog asking the disk and the new key password twice (`ask_enroll`).
#: "origin_warning" = a notice, not a question: a page relayed a login challenge meant for another site
#: (`login_origin`) and nothing was signed (policy/login_origin.py); any answer only closes it.
PromptKind = Literal["password", "new_password", "repeat_new_password", "pin", "change_password", "consent",
                     "choose_key", "choose_disk", "enroll", "origin_warning"]
#: "read_certificates" = x509.get_certificate_chain: the certificates in a .pfx are usually encrypted too.
#: "enroll" = a new key pair is being written to a disk as a .pfx (pki.enroll_pfx_step1, pfx.save_pfx).
#: "certificate_request" = a PKCS#10 request signed with a loaded key (pkcs10.create_pkcs10_from_key).
#: "sign_batch" = batch.create_pkcs7: many documents, one question (the request's `batch` lists them).
Operation = Literal["sign", "cosign", "verify_password", "change_password", "read_certificates",
                    "login", "consent", "enroll", "certificate_request", "sign_batch"]

#: An askpass program answers with one line; anything longer is not a password.
MAX_ANSWER_BYTES = 4096
#: How many document names of a batch the plain-text question (askpass) lists before "… and N more".
BATCH_NAMES_IN_TEXT = 50


@dataclass(frozen=True)
class BatchDocument:
    """One document of a batch as the person sees it; `size` is None when the page sent only its hash."""

    name: str
    size: int | None
    #: (algorithm, hex): the key's own hash of the document, or the hash the page sent.
    fingerprint: tuple[str, str]


class BatchProgress:
    """Shared between the signing worker and the batch dialog (different threads): how far the batch got, the
    person's cancel, and the end (the dialog closes itself then). Ints and Events: safe without a lock."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.cancel = threading.Event()
        self.finished = threading.Event()


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
    #: The key owner in detail (name, PINFL/TIN, organisation, validity), when the key file tells.
    owner: OwnerDetails | None = None
    #: What will be signed, when something is signed.
    document: DocumentPreview | None = None
    #: Offer "remember for this site" (signing only: verify_password and change_password always ask).
    can_remember: bool = False
    #: The longest "remember" the admin allows ([passwords] remember_max_minutes): caps the offered durations.
    remember_max_seconds: int = MAX_REMEMBER_SECONDS
    #: For "choose_key": the keys to choose from, as the person should recognise them.
    choices: tuple[str, ...] = ()
    #: Who asks: the queue limits questions by it, and an opaque caller gets a warning. Derived from `site` when
    #: not given (tests and tools that only know the origin text).
    caller: Caller | None = None
    #: For "pin": the token says this is the last try before the PIN locks (warn, never spend it silently).
    pin_final_try: bool = False
    #: For "pin": the token says earlier tries failed and few are left.
    pin_count_low: bool = False
    #: For operation "sign_batch": every document of the batch, in order.
    batch: tuple[BatchDocument, ...] = ()
    #: For "origin_warning": the origin the relayed login challenge names ("" when it was malformed).
    login_origin: str = ""

    def __post_init__(self) -> None:
        if self.caller is None:
            object.__setattr__(self, "caller", Caller.from_origin(self.site or None))

    @property
    def opaque_site(self) -> bool:
        """True when the asking page cannot be identified (file:// page, sandboxed frame)."""
        return self.caller is not None and self.caller.opaque

    def heading(self) -> str:
        """The question without anything about the person, the key or the site (safe for a command line)."""
        key = {"password": "enter_password", "new_password": "new_password", "pin": "enter_pin",
               "change_password": "change_heading", "consent": "consent_heading",
               "choose_key": "choose_key", "choose_disk": "choose_disk",
               "enroll": "enroll_heading", "origin_warning": "origin_warning_heading"}.get(self.kind,
                                                                                          "repeat_new_password")
        return i18n.text(self.language, "prompt", key)

    def text(self) -> str:
        """The whole question as plain text, in the request's language."""
        t = lambda name, **kw: i18n.text(self.language, "prompt", name, **kw)  # noqa: E731
        if self.kind == "choose_key":
            numbered = [f"{number}. {label}" for number, label in enumerate(self.choices, 1)]
            return "\n".join((t("choose_key"), *numbered, t("site", site=self.site), t("choose_key_askpass")))
        if self.kind in ("choose_disk", "enroll"):  # where a new key goes; "enroll" also asks its password
            numbered = [f"{number}. {label}" for number, label in enumerate(self.choices, 1)]
            first = t("choose_disk") if self.kind == "choose_disk" else t("enroll_heading")
            last = (t("choose_disk_askpass"),) if self.kind == "choose_disk" else ()
            return "\n".join((first, t("key", key=self.key_label), *numbered, t("site", site=self.site),
                              t("operation", operation=t(f"op_{self.operation}")), *last))
        if self.kind == "consent":
            if self.opaque_site:
                return "\n".join((t("consent_opaque_question"), t("consent_opaque_warning"), t("consent_explain"),
                                  t("consent_opaque_askpass")))
            return "\n".join((t("consent_question", site=self.site), t("consent_explain"), t("consent_askpass")))
        if self.kind == "origin_warning":
            return "\n".join((t("origin_warning_heading"), *self.origin_warning_lines(), t("site", site=self.site),
                              t("origin_warning_askpass")))
        lines = []
        if self.retry:
            lines.append(t("wrong_pin" if self.kind == "pin" else "wrong_password"))
            lines.append(t("attempts_left", count=self.max_attempts - self.attempt + 1))
        if self.kind == "pin" and self.pin_final_try:
            lines.append(t("pin_final_try"))
        elif self.kind == "pin" and self.pin_count_low:
            lines.append(t("pin_count_low"))
        heading = {"password": "enter_password", "new_password": "new_password", "pin": "enter_pin",
                   "change_password": "change_heading"}.get(self.kind, "repeat_new_password")
        lines.append(t(heading))
        lines.append(t("key", key=self.key_label))
        if self.owner is not None and self.owner.warning(self.language):
            lines.append(self.owner.warning(self.language))
        if self.document is not None:
            lines.append(t("document", document=self.document.summary(self.language)))
        if self.batch:
            lines.extend(self.batch_lines())
        lines.append(t("site", site=self.site))
        lines.append(t("operation", operation=t(f"op_{self.operation}")))
        return "\n".join(lines)


    def origin_warning_lines(self) -> list[str]:
        """What happened and what it means, for the warning (dialog and askpass alike)."""
        t = lambda name, **kw: i18n.text(self.language, "prompt", name, **kw)  # noqa: E731
        if not self.login_origin:
            site = t("consent_opaque_site") if self.opaque_site else self.site
            return [t("origin_warning_malformed", site=site)]
        first = (t("origin_warning_opaque", login_site=self.login_origin) if self.opaque_site else
                 t("origin_warning_mismatch", site=self.site, login_site=self.login_origin))
        return [first, t("origin_warning_impersonating", login_site=self.login_origin)]

    def batch_total_bytes(self) -> int:
        return sum(document.size or 0 for document in self.batch)

    def batch_lines(self) -> list[str]:
        """The batch for a plain-text question: count and size, then the first names."""
        t = lambda name, **kw: i18n.text(self.language, "prompt", name, **kw)  # noqa: E731
        size = format_size(self.batch_total_bytes(), self.language)
        lines = [t("batch_summary", count=len(self.batch), size=size)]
        lines.extend(f"  {document.name}" for document in self.batch[:BATCH_NAMES_IN_TEXT])
        if len(self.batch) > BATCH_NAMES_IN_TEXT:
            lines.append("  " + t("batch_more", count=len(self.batch) - BATCH_NAMES_IN_TEXT))
        return lines


class Answer(str):
    """A typed password plus what the person chose beside it: "remember for this site" for N seconds.

    A str, so every caller that only wants the password keeps working; 0 means "do not remember".
    """

    remember_seconds: float

    def __new__(cls, value: str, remember_seconds: float = 0.0) -> Answer:
        answer = super().__new__(cls, value)
        answer.remember_seconds = remember_seconds
        return answer

    def __repr__(self) -> str:  # a password must not end up in a log line through repr()
        return f"<Answer remember={self.remember_seconds:.0f}s>"


@dataclass(frozen=True, repr=False)
class PasswordChange:
    """The combined change-password dialog's answer; the dialog already checked that both new entries match."""

    current: str
    new: str


@dataclass(frozen=True, repr=False)
class EnrollChoice:
    """The enrollment dialog's answer: the disk (one of the request's `choices`, by its text) and the new password,
    already typed twice alike. The plugin still checks E-IMZO's password rules (an askpass answer is not checked
    by any dialog)."""

    disk: str
    password: str


class Prompter(Protocol):
    async def ask(self, request: PromptRequest) -> str | None:
        """The typed secret (maybe an `Answer`), or None when the person cancelled (or no one can be asked)."""


@runtime_checkable
class ChangePrompter(Prompter, Protocol):
    """A prompter that may ask current, new and repeated password in one dialog (the Tk dialog can; askpass
    programs answer one question at a time). `supports_change` says whether it really can (a queue in front of
    an askpass program cannot)."""

    @property
    def supports_change(self) -> bool: ...

    async def ask_change(self, request: PromptRequest) -> PasswordChange | None:
        """Both passwords, the new one already typed twice alike; None when the person cancelled."""


@runtime_checkable
class EnrollPrompter(Prompter, Protocol):
    """A prompter that asks the disk for a new key and its new password (twice) in one dialog (the Tk dialog can;
    askpass programs get "choose_disk", "new_password" and "repeat_new_password" one after another instead).
    `supports_enroll` says whether it really can (a queue in front of an askpass program cannot)."""

    @property
    def supports_enroll(self) -> bool: ...

    async def ask_enroll(self, request: PromptRequest) -> EnrollChoice | None:
        """The chosen disk and the new password; None when the person cancelled."""


@runtime_checkable
class BatchPrompter(Prompter, Protocol):
    """A prompter that shows a whole batch (names, sizes, fingerprints) with the password entry in one dialog, then
    the signing progress with a cancel button (the Tk dialog can; askpass programs get one "password" question with
    operation "sign_batch" and the list in the text). `supports_batch` says whether it really can."""

    @property
    def supports_batch(self) -> bool: ...

    async def ask_batch(self, request: PromptRequest, progress: BatchProgress) -> str | None:
        """The password (maybe an `Answer`) once the person confirmed, None when cancelled. The dialog stays open
        showing `progress` until `progress.finished` is set, and sets `progress.cancel` on the person's cancel."""


class AskpassPrompter:
    """Runs PROGRAM with a short heading as its only argument; its stdout (one line) is the answer.

    A non-zero exit status means "cancel", as with SSH_ASKPASS. The whole question (site, key owner with name and
    PINFL, document) is *not* in the arguments, which every user of the machine can read (`ps`, /proc/*/cmdline):
    it is in the environment, which only the same user can read: EIMZO_AGENT_PROMPT (the full text), and its
    parts EIMZO_AGENT_PROMPT_KIND, _SITE, _KEY, _OPERATION, _ATTEMPT, and `details_env`'s _OWNER…,
    _KEY_VALIDITY, _DOCUMENT…, _LANGUAGE, _PIN_STATE, _LOGIN_ORIGIN, so scripts can decide without parsing
    translated text. Kind "origin_warning" is a notice (nothing was signed): its answer is ignored.
    A batch (operation "sign_batch") lists its first names in EIMZO_AGENT_PROMPT and its size in
    EIMZO_AGENT_DOCUMENT_COUNT. EIMZO_AGENT_REMEMBER_MAX (seconds) is set when the password may be remembered
    for the site; the program then may print `remember=SECONDS` on a second line.
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
            EIMZO_AGENT_CHOICES="\n".join(request.choices),
            EIMZO_AGENT_PROMPT=request.text(),
            EIMZO_AGENT_OPAQUE_SITE="1" if request.opaque_site else "",
            EIMZO_AGENT_REMEMBER_MAX=str(request.remember_max_seconds) if request.can_remember else "",
        )
        env.update(details_env(request))
        try:
            process = await asyncio.create_subprocess_exec(
                self.program,
                request.heading(),
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
            await _end(process)
            log.warning("askpass program gave no answer within %.0f s: treated as cancel", self.timeout)
            return None
        except asyncio.CancelledError:
            # The page went away while the question was open (or the agent is stopping): take the question off the
            # screen too.
            await _end(process)
            raise
        if process.returncode != 0:
            return None
        return _askpass_answer(stdout[:MAX_ANSWER_BYTES].decode("utf-8", errors="replace"), request)


#: How long a killed askpass program may take to be gone, its output pipe closed included.
END_TIMEOUT = 2.0


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the askpass program and wait until it has exited and its output has reached its end.

    Not only kill: the process's exit and its pipe's closing come to the event loop as callbacks, and an agent
    stopping on SIGTERM while a question is open closed its loop before they ran; the subprocess transport, left
    open, then printed a traceback from its finaliser ("Event loop is closed"). A program that left a child holding
    its output open is given up on after END_TIMEOUT."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(END_TIMEOUT):
            await process.communicate()


def _askpass_answer(output: str, request: PromptRequest) -> str:
    """The first line is the answer. Where "remember" may be offered (EIMZO_AGENT_REMEMBER_MAX is set), a second
    line `remember=SECONDS` asks for it, as the dialog's checkbox does (kiosks and batch-signing scripts)."""
    first, _, rest = output.partition("\n")
    answer = first[:-1] if first.endswith("\r") else first
    if not request.can_remember:
        return answer
    for line in rest.splitlines():
        name, _, value = line.strip().partition("=")
        if name == "remember" and value.isdigit():
            return Answer(answer, float(min(int(value), request.remember_max_seconds)))
    return answer


class NoPrompter:
    """Used when there is no display and no askpass program: every question is a cancel, with a hint in the log."""

    async def ask(self, request: PromptRequest) -> str | None:
        log.error(
            "%s asked for something only the person can allow (%s), but the agent cannot ask: no display for the "
            "dialog and no askpass program (use --askpass PROGRAM or set %s)",
            request.site or "a site",
            request.kind,
            "EIMZO_AGENT_ASKPASS",
        )
        return None


def display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def details_env(request: PromptRequest) -> dict[str, str]:
    """The owner and document details as EIMZO_AGENT_* variables (empty values left out; no NUL possible).

    EIMZO_AGENT_PIN_STATE is "final_try" (the token's last PIN try: a wrong PIN locks it) or "count_low" (the
    token saw wrong PINs before), for PIN questions whose token says so.
    """
    values: dict[str, str | None] = {"EIMZO_AGENT_LANGUAGE": request.language,
                                     "EIMZO_AGENT_LOGIN_ORIGIN": request.login_origin}
    if request.kind == "pin":
        values["EIMZO_AGENT_PIN_STATE"] = ("final_try" if request.pin_final_try
                                           else "count_low" if request.pin_count_low else None)
    owner, document = request.owner, request.document
    if owner is not None:
        values.update(
            EIMZO_AGENT_OWNER=owner.name,
            EIMZO_AGENT_OWNER_PINFL=owner.pinfl,
            EIMZO_AGENT_OWNER_TIN=owner.tin,
            EIMZO_AGENT_OWNER_ORG=owner.org,
            EIMZO_AGENT_OWNER_ORG_TIN=owner.org_tin,
            EIMZO_AGENT_OWNER_VALID_FROM=owner.valid_from.isoformat() if owner.valid_from else None,
            EIMZO_AGENT_OWNER_VALID_TO=owner.valid_to.isoformat() if owner.valid_to else None,
            EIMZO_AGENT_KEY_VALIDITY=owner.validity,
        )
    if request.batch:
        values["EIMZO_AGENT_DOCUMENT_COUNT"] = str(len(request.batch))
    if document is not None:
        values.update(
            EIMZO_AGENT_DOCUMENT_KIND=document.kind,
            EIMZO_AGENT_DOCUMENT_SIZE=str(document.size),
            EIMZO_AGENT_DOCUMENT_TEXT=document.text[:2000] or None,
        )
        for algorithm, digest in document.fingerprints:
            name = "OZDST" if algorithm.startswith("O'zDSt") else algorithm.replace("-", "")
            values[f"EIMZO_AGENT_DOCUMENT_{name}"] = digest
    return {k: v.replace("\0", "") for k, v in values.items() if v}
