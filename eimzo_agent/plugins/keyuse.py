"""Glue shared by the pfx and pkcs7 plugins: key-store errors in E-IMZO's words, and the password loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pfx_files import read_key_file
from eimzo_agent.keys.pkcs12 import UnlockedKey, open_pfx
from eimzo_agent.keys.sessions import LoadedKey
from eimzo_agent.plugins.prompt_info import document_preview, key_family, looks_like_login_challenge, owner_details
from eimzo_agent.protocol.dispatcher import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import Operation, PromptKind, PromptRequest

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent

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
    log.info("key store: %s", exc)
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


def memory_key(key: LoadedKey) -> str:
    """Which key a remembered password belongs to: the file and the entry in it."""
    return f"{key.file}\n{key.alias}"


async def ask_and_open(agent: Agent, call: Call, key: LoadedKey, operation: Operation, *,
                       document: bytes | None = None, ask: Ask | None = None,
                       kind: PromptKind = "password") -> tuple[UnlockedKey, str]:
    """Ask for the password until the key opens (at most `password_tries` times); -5000 on cancel or too many.

    `document` is what will be signed: the dialog shows it. A password the person asked to remember for this
    site and key is tried first, without asking. `ask` and `kind` replace the prompter's `ask` and the question
    (change_password's combined dialog). Returns the opened key and the password that opened it
    (change_password needs it).
    """
    data = await read_key(key)
    site = call.context.origin or ""
    if operation == "sign" and document is not None and looks_like_login_challenge(document):
        operation = "login"
    can_remember = ask is None and operation in REMEMBERABLE and bool(site)
    if can_remember:
        opened = await _open_with_remembered(agent, site, key, data)
        if opened is not None:
            return opened
    owner = owner_details(key.alias)
    preview = None
    if document is not None:
        preview = await asyncio.to_thread(lambda: document_preview(document, key_family(data)))
    ask = ask or agent.prompter.ask
    tries = agent.config.password_tries
    for attempt in range(1, tries + 1):
        password = await ask(
            PromptRequest(
                kind=kind,
                site=site,
                key_label=key_label(key.alias),
                operation=operation,
                attempt=attempt,
                max_attempts=tries,
                retry=attempt > 1,
                language=call.language,
                owner=owner,
                document=preview,
                can_remember=can_remember,
            )
        )
        if password is None:
            raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
        try:
            opened = await asyncio.to_thread(open_pfx, data, password, key.alias)
        except KeyStoreError as exc:
            if exc.kind is KeyErrorKind.WRONG_PASSWORD:
                continue
            raise eimzo_error(exc, alias=key.alias, name=key.name) from None
        remember_seconds = getattr(password, "remember_seconds", 0)
        if can_remember and remember_seconds:
            agent.passwords.remember(site, memory_key(key), password, remember_seconds)
        return opened, str(password)
    raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")


async def _open_with_remembered(agent: Agent, site: str, key: LoadedKey,
                                data: bytes) -> tuple[UnlockedKey, str] | None:
    password = agent.passwords.recall(site, memory_key(key))
    if password is None:
        return None
    try:
        return await asyncio.to_thread(open_pfx, data, password, key.alias), password
    except KeyStoreError as exc:
        if exc.kind is not KeyErrorKind.WRONG_PASSWORD:
            raise eimzo_error(exc, alias=key.alias, name=key.name) from None
    # The password was changed in the meantime (maybe by another program): forget it and ask.
    agent.passwords.forget(site, memory_key(key))
    return None
