"""batch.create_pkcs7: many documents signed with one key file after ONE confirmation (our addition to E-IMZO).

Accountants sign hundreds of invoices in a row; one dialog per document trains people to click without reading.
Here the person sees the whole list (names, sizes, fingerprints) and types the password once, always: a password
remembered for the site is not used to skip the question (the list must be seen), but the batch dialog's
"remember" works as the password dialog's does, for later calls. Signing then runs in a worker thread, one
document after another, checking the person's cancel between documents; signatures made before a cancel are
returned, the rest marked cancelled. The limits ([limits] batch_max_documents, batch_max_bytes) are checked
before anything is asked. Token keys ("idcard", "baikey", "ckc") are refused: their PIN dialog cannot show a list.

Test hook: with EIMZO_AGENT_TEST_BATCH_HOLD_AFTER=N in the agent's environment the worker waits (at most a minute)
after the N-th signature until the person cancels, so a test cancels midway on any machine speed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from eimzo_agent.crypto import cms
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.signer import Signer
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.sessions import KeySessions, LoadedKey
from eimzo_agent.plugins.hardware import IDCARD_ID, TOKEN_IDS
from eimzo_agent.plugins.keyuse import KeyUnlocker, memory_key, read_key
from eimzo_agent.plugins.prompt_info import key_family
from eimzo_agent.policy.asking import ask_person, refused
from eimzo_agent.policy.journal import Journal, JournalEntry, now_utc
from eimzo_agent.policy.login_origin import LoginOriginGuard
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused
from eimzo_agent.ui.prompter import Answer, BatchDocument, BatchProgress, BatchPrompter, PromptRequest

log = logging.getLogger(__name__)

OPERATION = "batch.create_pkcs7"
#: Every hash our keys sign with (SHA-256 for RSA/ECDSA, O'zDSt 1106 for O'zDSt) is 32 bytes long.
DIGEST_BYTES = 32
#: A name longer than this is cut for the dialog and the reply (a page must not fill the screen with one name).
MAX_NAME_CHARS = 200
HOLD_ENV = "EIMZO_AGENT_TEST_BATCH_HOLD_AFTER"
_ALGORITHMS = {"ozdst": "O'zDSt 1106", "other": "SHA-256", None: "SHA-256 / O'zDSt 1106"}


@dataclass(frozen=True)
class _Document:
    name: str
    content: bytes | None  # None: only the hash was sent (a detached signature over it)
    digest: bytes | None


@dataclass
class _Asked:
    """What the question brought: the last answer (an `Answer` may ask to remember) and how many were asked."""

    answer: str | None = None
    attempts: int = 0


def _invalid(detail: str) -> EimzoError:
    return EimzoError(Status.OTHER, "batch_documents_invalid", detail=detail)


def parse_documents(raw: str, max_documents: int, max_bytes: int) -> list[dict[str, str]]:
    """The `documents` argument checked for shape and limits, before anything is decoded or asked."""
    try:
        items = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise _invalid("not JSON") from None
    if not isinstance(items, list) or not items:
        raise _invalid("expected a non-empty JSON array")
    if len(items) > max_documents:
        raise EimzoError(Status.OTHER, "batch_too_many", count=len(items), limit=max_documents)
    estimated = 0
    for number, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _invalid(f"documents[{number}] needs a \"name\" text")
        given = [field for field in ("data_64", "digest_hex") if field in item]
        if len(given) != 1 or not isinstance(item[given[0]], str):
            raise _invalid(f"documents[{number}] needs exactly one of \"data_64\" or \"digest_hex\" (a text)")
        estimated += len(item.get("data_64", "")) // 4 * 3
    if estimated > max_bytes + 3 * len(items):  # base64 padding aside, this is the decoded size
        raise EimzoError(Status.OTHER, "batch_too_large", size=estimated, limit=max_bytes)
    return items


def decode_documents(items: list[dict[str, str]], family: str | None, max_bytes: int) -> list[_Document]:
    """Decode the contents and hashes (in a worker thread: a batch may hold hundreds of megabytes)."""
    documents = []
    total = 0
    algorithm = _ALGORITHMS.get(family, _ALGORITHMS[None])
    for number, item in enumerate(items):
        name = item["name"][:MAX_NAME_CHARS]
        if "digest_hex" in item:
            try:
                digest = bytes.fromhex(item["digest_hex"])
            except ValueError:
                raise _invalid(f"documents[{number}].digest_hex is not hexadecimal") from None
            if len(digest) != DIGEST_BYTES:
                raise EimzoError(Status.OTHER, "batch_digest_length", name=name, expected=DIGEST_BYTES,
                                 algorithm=algorithm, length=len(digest))
            documents.append(_Document(name, None, digest))
            continue
        try:
            content = base64.b64decode("".join(item["data_64"].split()), validate=True)
        except (binascii.Error, ValueError):
            raise EimzoError(Status.OTHER, "base64_invalid", argument=f"documents[{number}].data_64") from None
        total += len(content)
        if total > max_bytes:
            raise EimzoError(Status.OTHER, "batch_too_large", size=total, limit=max_bytes)
        documents.append(_Document(name, content, None))
    return documents


def listing(documents: list[_Document], family: str | None) -> tuple[BatchDocument, ...]:
    """What the person sees of each document: the fingerprint is the key's own hash (SHA-256 when the key file
    does not tell), or the hash the page sent."""
    shown = []
    for document in documents:
        if document.content is None:
            assert document.digest is not None
            shown.append(BatchDocument(document.name, None, (_ALGORITHMS.get(family, "hash"), document.digest.hex())))
        elif family == "ozdst":
            shown.append(BatchDocument(document.name, len(document.content),
                                       ("O'zDSt 1106", gost94_digest(document.content).hex())))
        else:
            shown.append(BatchDocument(document.name, len(document.content),
                                       ("SHA-256", hashlib.sha256(document.content).hexdigest())))
    return tuple(shown)


def sign_all(documents: list[_Document], signer: Signer, detached: bool,
             progress: BatchProgress) -> list[cms.SignatureResult | str | None]:
    """One result per document signed before a cancel: a signature, or an error text. Runs in a worker thread."""
    hold_after = int(os.environ.get(HOLD_ENV, "0") or 0)
    results: list[cms.SignatureResult | str | None] = []
    for document in documents:
        if progress.cancel.is_set():
            break
        try:
            if document.content is None:
                assert document.digest is not None
                result: cms.SignatureResult | str = cms.create_detached_pkcs7_from_digest(
                    document.digest, signer, signed_attributes=signer.cms_profile)
            else:
                result = cms.create_pkcs7(document.content, signer, detached=detached,
                                          signed_attributes=signer.cms_profile)
        except ValueError as exc:
            result = str(exc)
        results.append(result)
        progress.done += 1
        if hold_after and progress.done == hold_after:
            progress.cancel.wait(60)
    return results


class BatchPlugin:
    """batch.*: many signatures after one confirmation."""

    def __init__(self, *, sessions: KeySessions, unlocker: KeyUnlocker, journal: Journal | None,
                 max_documents: int, max_bytes: int, login_origins: LoginOriginGuard | None = None) -> None:
        self.sessions = sessions
        self.unlocker = unlocker
        self.journal = journal
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self.login_origins = login_origins or LoginOriginGuard(unlocker.prompter, journal)

    def functions(self) -> list[PluginFunction]:
        return [
            PluginFunction(
                "batch",
                "create_pkcs7",
                self.create_pkcs7,
                (
                    Argument("documents", "JSON-массив документов: [{\"name\", \"data_64\"} или "
                                          "{\"name\", \"digest_hex\"}]"),
                    Argument("id", "Идентификатор ключа (keyId) из pfx.load_key"),
                    Argument("detached", "'yes' — отсоединённые подписи, 'no' или '' — присоединённые", True),
                ),
                "Подписать пакет документов одним подтверждением (дополнение eimzo-agent)",
                extension=True,
            ),
        ]

    async def create_pkcs7(self, call: Call) -> dict[str, Any]:
        items = parse_documents(call.arg("documents"), self.max_documents, self.max_bytes)
        detached = call.arg("detached").strip().lower() == "yes"
        key_id = call.arg("id").strip()
        if key_id.lower() in (*TOKEN_IDS, IDCARD_ID):
            raise EimzoError(Status.OTHER, "batch_token_unsupported")
        key = self.sessions.get(key_id, call.caller.origin)
        if key is None:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        data = await read_key(key)
        family = await asyncio.to_thread(key_family, data)
        documents = await asyncio.to_thread(decode_documents, items, family, self.max_bytes)
        for document in documents:  # a login challenge hidden in a batch is refused like a single one
            if document.content is not None:
                await self.login_origins.check(call, document.content)
        shown = await asyncio.to_thread(listing, documents, family)
        windows: list[BatchProgress] = []  # one per dialog shown (a wrong password shows another)
        certificate = None
        results: list[cms.SignatureResult | str | None] = []
        asked = _Asked()
        outcome = "cancelled"
        try:
            opened = await self._confirm(call, key, shown, windows, asked)
            certificate = opened.certificate
            if not windows:  # askpass: no window, but the page going away still stops the worker
                windows.append(BatchProgress(len(documents)))
            progress = windows[-1]
            results = await asyncio.to_thread(sign_all, documents, opened.signer, detached, progress)
            outcome = ""
        except EimzoError as exc:
            outcome = ("wrong_password" if exc.reason_key == "password_wrong" else
                       "cancelled" if exc.status in (Status.PASSWORD_CANCELLED, Status.OPERATION_CANCELLED)
                       else f"failed:{exc.status}")
            raise
        except BaseException:
            outcome = "cancelled"  # the page went away: the worker stops before its next document
            raise
        finally:
            for window in windows:
                window.cancel.set()  # the worker (if the page went away) stops before its next document
                window.finished.set()  # closes the batch dialog
            wrong = asked.attempts if outcome == "wrong_password" else max(0, asked.attempts - 1)
            self._journal(call, key, certificate, documents, results, outcome, wrong)
        if not any(isinstance(r, cms.SignatureResult) for r in results) and len(results) < len(documents):
            raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")
        self._remember(call, key, data, opened, asked.answer)
        return _reply(documents, results)

    async def _confirm(self, call: Call, key: LoadedKey, shown: tuple[BatchDocument, ...],
                       windows: list[BatchProgress], asked: _Asked) -> Any:
        """One question with the list and the password (again only after a wrong password); returns the opened
        key. `asked` gets the answer (for "remember") and the number of questions; a batch dialog's progress is
        added to `windows` (the last one shows the signing)."""
        prompter = self.unlocker.prompter
        origin = call.caller.origin if not call.caller.opaque else None
        can_remember = bool(origin) and self.unlocker.remember_max_seconds > 0

        async def ask(request: PromptRequest) -> str | None:
            for window in windows:  # a wrong password: the last window closes and a new one asks again
                window.finished.set()
            asked.attempts = request.attempt
            request = dataclasses.replace(request, operation="sign_batch", batch=shown, can_remember=can_remember,
                                          remember_max_seconds=self.unlocker.remember_max_seconds)
            if isinstance(prompter, BatchPrompter) and prompter.supports_batch:
                window = BatchProgress(len(shown))
                windows.append(window)
                try:
                    asked.answer = await prompter.ask_batch(request, window)
                except PromptRefused as exc:
                    raise refused(exc) from None
            else:
                asked.answer = await ask_person(prompter, request)
            return asked.answer

        opened, _ = await self.unlocker.open(call, key, "sign_batch", ask=ask)
        return opened

    def _remember(self, call: Call, key: LoadedKey, data: bytes, opened: Any, answer: str | None) -> None:
        """The person ticked "remember" in the batch dialog (or askpass said `remember=`): as KeyUnlocker does."""
        seconds = answer.remember_seconds if isinstance(answer, Answer) else 0
        origin = call.caller.origin if not call.caller.opaque else None
        if not seconds or not origin or self.unlocker.remember_max_seconds <= 0 or answer is None:
            return
        passwords = self.unlocker.passwords
        passwords.remember(origin, memory_key(key), answer, min(seconds, self.unlocker.remember_max_seconds))
        passwords.keep_unlocked(origin, memory_key(key), hashlib.sha256(data).digest(), opened)

    def _journal(self, call: Call, key: LoadedKey, certificate: Any, documents: list[_Document],
                 results: list[cms.SignatureResult | str | None], outcome: str, failed_attempts: int) -> None:
        """One entry per document: signed, failed, or whatever stopped the batch before it."""
        if self.journal is None:
            return
        if certificate is not None:
            serial = format(certificate.serial_number, "x")
            owner = str(certificate.subject.native.get("common_name") or certificate.subject.human_friendly)
        else:
            parsed = owner_from_alias(key.alias)
            serial, owner = parsed.serial or "", parsed.cn or key.alias
        for number, document in enumerate(documents):
            result = results[number] if number < len(results) else None
            content_hash = (hashlib.sha256(document.content).hexdigest() if document.content is not None
                            else "")
            self.journal.append(JournalEntry(
                time=now_utc(), site=call.caller.label, operation=OPERATION, certificate_serial=serial, owner=owner,
                content_sha256=content_hash,
                result=("signed" if isinstance(result, cms.SignatureResult) else "failed:internal"
                        if isinstance(result, str) else outcome or "cancelled"),
                failed_attempts=failed_attempts if number == 0 else 0,
            ))


def _reply(documents: list[_Document], results: list[cms.SignatureResult | str | None]) -> dict[str, Any]:
    signatures: list[dict[str, Any]] = []
    for number, document in enumerate(documents):
        result = results[number] if number < len(results) else None
        if isinstance(result, cms.SignatureResult):
            signatures.append({
                "name": document.name,
                "pkcs7_64": base64.b64encode(result.cms_der).decode("ascii"),
                "signer_serial_number": result.signer_serial_hex,
                "signature_hex": result.signature.hex(),
            })
        elif isinstance(result, str):
            signatures.append({"name": document.name, "error": result})
        else:
            signatures.append({"name": document.name, "cancelled": True})
    signed = sum(1 for s in signatures if "pkcs7_64" in s)
    return {"signatures": signatures, "signed": signed, "cancelled": sum(1 for s in signatures if "cancelled" in s)}
