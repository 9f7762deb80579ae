"""Writes a signing-journal entry around each signing operation, whatever its outcome."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.policy.journal import JournalEntry, now_utc
from eimzo_agent.protocol.errors import EimzoError, Status

if TYPE_CHECKING:
    from eimzo_agent.keys.sessions import LoadedKey
    from eimzo_agent.policy.journal import Journal
    from eimzo_agent.protocol.calls import Call

_CANCELLED = {Status.PASSWORD_CANCELLED, Status.OPERATION_CANCELLED}

#: The wrong passwords of the signing attempt that runs in this task (the key unlocker counts them, whatever the
#: outcome: a signature made after two wrong passwords shows them as well as a refusal does).
_wrong_passwords: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("wrong_passwords", default=None)


def count_wrong_password() -> None:
    """One wrong password typed for the signing attempt being journaled (nothing when none is)."""
    counter = _wrong_passwords.get()
    if counter is not None:
        counter[0] += 1


@dataclass
class SigningNote:
    #: Set once the key is open: the certificate that really signed (asn1crypto Certificate).
    certificate: Any = None
    #: The content's SHA-256 (hex) when the plugin already computed it off the event loop (large documents).
    content_sha256: str | None = None


@contextlib.asynccontextmanager
async def journaled(
    journal: Journal | None, call: Call, key: LoadedKey, operation: str, content: bytes
) -> AsyncIterator[SigningNote]:
    note = SigningNote()
    result = "signed"
    wrong = [0]
    token = _wrong_passwords.set(wrong)
    try:
        yield note
    except EimzoError as exc:
        if exc.reason_key == "password_wrong":
            result = "wrong_password"  # same -5000 as a cancel for the page; the reason and the journal tell apart
        else:
            result = "cancelled" if exc.status in _CANCELLED else f"failed:{exc.status}"
        raise
    except asyncio.CancelledError:
        result = "cancelled"  # the page went away before the signature was made
        raise
    except Exception:
        result = "failed:internal"
        raise
    finally:
        _wrong_passwords.reset(token)
        if journal is not None:
            serial, owner = _identify(note.certificate, key.alias)
            journal.append(
                JournalEntry(
                    time=now_utc(),
                    site=call.caller.label,
                    operation=operation,
                    certificate_serial=serial,
                    owner=owner,
                    content_sha256=note.content_sha256 or hashlib.sha256(content).hexdigest(),
                    result=result,
                    failed_attempts=wrong[0],
                )
            )


def _identify(certificate: Any, alias: str) -> tuple[str, str]:
    if certificate is not None:
        common_name = certificate.subject.native.get("common_name")
        return format(certificate.serial_number, "x"), str(common_name or certificate.subject.human_friendly)
    owner = owner_from_alias(alias)
    return owner.serial or "", owner.cn or alias
