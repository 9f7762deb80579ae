"""Using a key file's private key: key-store errors in E-IMZO's words, asking the person, and the password loop.

`KeyUnlocker` is the one service that turns "this page wants this key for this operation" into an open key: it
asks the person (through the prompter, never the page) up to `tries` times, tries a password the person asked to
remember for this origin and key first, and maps every key-store failure to E-IMZO's status and reason.

The admin's `[passwords]` settings are enforced here, not only in the dialog: with remembering forbidden no
password is kept whatever a prompter answers (an askpass program or another dialog may still say "remember"),
and every kept password expires within the admin's cap.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from eimzo_agent.crypto.ozdst_keys import OzdstSigner
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pfx_files import read_key_file
from eimzo_agent.keys.pkcs12 import UnlockedKey, open_pfx
from eimzo_agent.keys.sessions import LoadedKey
from eimzo_agent.plugins.journaling import count_wrong_password
from eimzo_agent.plugins.prompt_info import document_preview, key_family, looks_like_login_challenge, owner_details
from eimzo_agent.policy.asking import ask_person
from eimzo_agent.protocol.calls import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import Answer, Operation, Prompter, PromptKind, PromptRequest
from eimzo_agent.ui.remember import MAX_REMEMBER_SECONDS, PasswordMemory

log = logging.getLogger(__name__)

PFX_KEY_STORE = "PFX_KEY_STORE"


#: Each key-store failure as E-IMZO says it: status and reason text (the detail, with paths, stays in the log).
_KEY_ERRORS: dict[KeyErrorKind, tuple[int, str]] = {
    KeyErrorKind.DISK_NOT_FOUND: (Status.DISK_NOT_FOUND, "disk_not_found"),
    KeyErrorKind.BAD_PATH: (Status.PATH_INVALID, "path_invalid"),
    KeyErrorKind.BAD_FILE_NAME: (Status.FILE_NAME_INVALID, "file_name_invalid"),
    KeyErrorKind.FILE_NOT_FOUND: (Status.KEY_FILE_MISSING, "key_file_missing"),
    KeyErrorKind.ALIAS_NOT_FOUND: (Status.ALIAS_NOT_IN_PFX, "alias_not_in_pfx"),
    KeyErrorKind.UNSUPPORTED: (Status.OTHER, "key_algorithm_unsupported"),
    KeyErrorKind.KEY_MISMATCH: (Status.OTHER, "key_mismatch"),
    KeyErrorKind.FILE_EXISTS: (Status.FILE_EXISTS, "file_exists"),
    KeyErrorKind.WRITE_FAILED: (Status.OTHER, "key_file_write_failed"),
}


def eimzo_error(exc: KeyStoreError, *, alias: str = "", name: str = "") -> EimzoError:
    """Map a key-store failure to E-IMZO's status and reason; anything else reads as a damaged key file."""
    # DEBUG, not INFO: the detail names files and aliases (the owner's name and PINFL).
    log.debug("key store: %s", exc)
    status, reason = _KEY_ERRORS.get(exc.kind, (Status.OTHER, "key_file_damaged"))
    return EimzoError(status, reason, alias=alias, name=name)


def key_label(alias: str) -> str:
    """"CN (PINFL …, TIN …)" for the password prompt, so the person recognises whose key it is."""
    owner = owner_from_alias(alias)
    ids = [f"PINFL {owner.pinfl}" if owner.pinfl else "", f"STIR/INN {owner.tin or owner.org_tin}"
           if (owner.tin or owner.org_tin) else ""]
    ids = [i for i in ids if i]
    name = (owner.cn or alias or "?").upper() if owner.cn else (alias or "?")
    return f"{name} ({', '.join(ids)})" if ids else name


async def read_key(key: LoadedKey) -> bytes:
    try:
        return await asyncio.to_thread(read_key_file, key.file)
    except KeyStoreError as exc:
        raise eimzo_error(exc, alias=key.alias, name=key.name) from None


#: Operations whose password may be remembered for a site. verify_password always asks (as in E-IMZO), and so
#: does change_password: both exist to make the person type the password.
REMEMBERABLE: frozenset[str] = frozenset({"sign", "cosign", "login", "read_certificates"})

Ask = Callable[[PromptRequest], Awaitable[str | None]]


def _file_stamp(key: LoadedKey) -> bytes | None:
    """What tells that a key file is still the one a kept key was opened from: device, inode, size and change
    time (a new password written by any program replaces the file or its bytes). A stat, not a read: the kept key
    exists so that a signing loop does not touch the file's bytes on every signature."""
    try:
        info = os.stat(key.file)
    except OSError:
        return None  # gone (flash drive pulled out): the read below reports it as E-IMZO does
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}".encode()


def memory_key(key: LoadedKey) -> str:
    """Which key a remembered password belongs to: the file and the entry in it."""
    return f"{key.file}\n{key.alias}"


class KeyUnlocker:
    """Opens key files for one operation at a time, asking the person for the password."""

    def __init__(self, prompter: Prompter, passwords: PasswordMemory, tries: int, *,
                 remember_max_seconds: int = MAX_REMEMBER_SECONDS) -> None:
        """`remember_max_seconds`: the admin's cap on remembering a password (0: never remembered)."""
        self.prompter = prompter
        self.passwords = passwords
        self.tries = tries
        self.remember_max_seconds = max(0, min(remember_max_seconds, MAX_REMEMBER_SECONDS))

    async def open(self, call: Call, key: LoadedKey, operation: Operation, *, document: bytes | None = None,
                   ask: Ask | None = None, kind: PromptKind = "password") -> tuple[UnlockedKey, str]:
        """Ask for the password until the key opens (at most `tries` times); -5000 on cancel or too many (the
        reason tells a wrong password from a cancel).

        `document` is what will be signed: the dialog shows it. A password the person asked to remember for this
        origin and key is tried first, without asking (never for an opaque origin: "null" is any sandboxed page).
        `ask` and `kind` replace the prompter's `ask` and the question (change_password's combined dialog).
        Returns the opened key and the password that opened it (change_password needs it).
        """
        opened, password = await self._open(call, key, operation, document=document, ask=ask, kind=kind)
        # Its kind is known for sure now (an elliptic-curve file cannot tell O'zDSt from ECDSA without the
        # password): the page's next large documents are O'zDSt-hashed ahead only if it is one (agent.py).
        key.ozdst = isinstance(opened.signer, OzdstSigner)
        return opened, password

    async def _open(self, call: Call, key: LoadedKey, operation: Operation, *, document: bytes | None,
                    ask: Ask | None, kind: PromptKind) -> tuple[UnlockedKey, str]:
        caller = call.caller
        if operation == "sign" and document is not None and looks_like_login_challenge(document):
            operation = "login"
        origin = caller.origin if not caller.opaque else None
        can_remember = ask is None and operation in REMEMBERABLE and bool(origin) and self.remember_max_seconds > 0
        stamp = _file_stamp(key) if can_remember else None
        if can_remember and origin is not None and stamp is not None:
            kept = self.passwords.recall_unlocked(origin, memory_key(key), stamp)
            if kept is not None:  # the person's "remember" is in force: sign at key speed, no file, no decryption
                unlocked, password = kept
                if isinstance(unlocked, UnlockedKey):
                    return unlocked, password
        data = await read_key(key)
        if can_remember and origin is not None:
            opened = await self._open_with_remembered(origin, key, data)
            if opened is not None:
                if stamp is not None:
                    self.passwords.keep_unlocked(origin, memory_key(key), stamp, opened[0])
                return opened
        owner = owner_details(key.alias)
        preview = None
        if document is not None:
            preview = await asyncio.to_thread(lambda: document_preview(document, key_family(data)))
        ask = ask or (lambda request: ask_person(self.prompter, request))
        for attempt in range(1, self.tries + 1):
            password = await ask(
                PromptRequest(
                    kind=kind,
                    site=caller.label,
                    key_label=key_label(key.alias),
                    operation=operation,
                    attempt=attempt,
                    max_attempts=self.tries,
                    retry=attempt > 1,
                    language=call.language,
                    owner=owner,
                    document=preview,
                    can_remember=can_remember,
                    remember_max_seconds=self.remember_max_seconds,
                    caller=caller,
                )
            )
            if password is None:
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
            try:
                opened = await asyncio.to_thread(open_pfx, data, password, key.alias)
            except KeyStoreError as exc:
                if exc.kind is KeyErrorKind.WRONG_PASSWORD:
                    count_wrong_password()  # the signing journal records failed attempts
                    continue
                raise eimzo_error(exc, alias=key.alias, name=key.name) from None
            remember_seconds = password.remember_seconds if isinstance(password, Answer) else 0
            if can_remember and origin is not None and remember_seconds:
                self.passwords.remember(origin, memory_key(key), password,
                                        min(remember_seconds, self.remember_max_seconds))
                if stamp is not None:
                    self.passwords.keep_unlocked(origin, memory_key(key), stamp, opened)
            return opened, str(password)
        # E-IMZO's -5000 status stays, but the reason says "wrong password" in words the vendor's e-imzo-init.js
        # already maps to "Пароль неверный." (it looks for "BadPaddingException"): not the same as a cancel.
        raise EimzoError(Status.PASSWORD_CANCELLED, "password_wrong", tries=self.tries)

    async def _open_with_remembered(self, origin: str, key: LoadedKey,
                                    data: bytes) -> tuple[UnlockedKey, str] | None:
        password = self.passwords.recall(origin, memory_key(key))
        if password is None:
            return None
        try:
            return await asyncio.to_thread(open_pfx, data, password, key.alias), password
        except KeyStoreError as exc:
            if exc.kind is not KeyErrorKind.WRONG_PASSWORD:
                raise eimzo_error(exc, alias=key.alias, name=key.name) from None
        # The password was changed in the meantime (maybe by another program): forget it and ask.
        self.passwords.forget(origin, memory_key(key))
        return None
