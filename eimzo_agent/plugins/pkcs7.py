"""The pkcs7 plugin: CMS signatures with a loaded key (the password is asked here, not at load_key)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eimzo_agent.crypto import cms
from eimzo_agent.crypto.ozdst_keys import OZDST, OZMST, OzdstSigner
from eimzo_agent.crypto.signer import Signer
from eimzo_agent.keys.sessions import KeySessions, LoadedKey
from eimzo_agent.plugins.hardware import TokenService, is_token_key
from eimzo_agent.plugins.journaling import journaled
from eimzo_agent.plugins.keyuse import KeyUnlocker
from eimzo_agent.policy.journal import Journal
from eimzo_agent.policy.login_origin import LoginOriginGuard
from eimzo_agent.protocol import base64data
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.protocol.large_request import LongText

log = logging.getLogger(__name__)


def decode_base64(value: str | LongText, argument: str) -> bytes:
    try:
        return base64data.decode(value if isinstance(value, str) else value.view())
    except ValueError:
        raise EimzoError(Status.OTHER, "base64_invalid", argument=argument) from None


#: Documents above this are decoded, hashed and encoded in a worker thread: other pages' calls must not wait
#: behind a 10 MB signature on the event loop. Below it the thread hop costs more than the work.
LARGE_DOCUMENT = 256 * 1024


async def decode_document(value: str | LongText, argument: str) -> bytes:
    if len(value) <= LARGE_DOCUMENT:
        return decode_base64(value, argument)
    return await asyncio.to_thread(decode_base64, value, argument)


def _reply(result: cms.SignatureResult) -> dict[str, Any]:
    return {
        "pkcs7_64": base64data.encode_pieces(result.cms_parts),
        "signer_serial_number": result.signer_serial_hex,
        "signature_hex": result.signature.hex(),
    }


def _sign_to_reply(content: bytes, signer: Signer, detached: bool,
                   message_digest: bytes | None = None) -> dict[str, Any]:
    """The whole CPU part of a signature in one go (one thread hop): the CMS and its Base64."""
    return _reply(cms.create_pkcs7(content, signer, detached=detached, signed_attributes=_profile(signer),
                                   message_digest=message_digest))


def _sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _profile(signer: Signer) -> cms.AttributeMode:
    """Which signed attributes a signer's CMS carries: O'zDSt signers say "eimzo" (E-IMZO's three), others CAdES."""
    return signer.cms_profile


#: The digests a document may arrive with (agent.document_digester: the O'zDSt hash), by the signer's digest
#: algorithm.
_PREPARED_DIGESTS = {OZDST.digest_oid: "gost94", OZMST.digest_oid: "gost94"}


async def _prepared_digests(future: Future[dict[str, bytes] | None] | None) -> dict[str, bytes]:
    """The digests computed while the request arrived (server/prehash.py), or {} when there are none."""
    if future is None:
        return {}
    try:
        return await asyncio.wrap_future(future) or {}
    except asyncio.CancelledError:
        if future.cancelled():  # the prepared work was dropped, not this call
            return {}
        raise


@dataclass(frozen=True)
class _ReplyAhead:
    """The reply of an attached signature made up to the signature's own part, while the hash still runs."""

    signing_time: datetime
    prefix: bytes  # the CMS before the document
    pieces: list[str]  # the Base64 of the prefix and the document, in whole groups of three bytes
    carry: bytes  # the 0-2 bytes of the document left for the next group


def _reply_ahead(content: bytes, signer: Signer, signing_time: datetime) -> _ReplyAhead:
    """Everything of an O'zDSt signer's reply that does not depend on the digest (32 bytes) and the signature (64)."""
    prefix = cms.attached_prefix(content, signer, signing_time=signing_time, signed_attributes=_profile(signer),
                                 digest_size=32, signature_size=64)
    pieces, carry = base64data.encode_pieces_open([prefix, content])
    return _ReplyAhead(signing_time, prefix, pieces, carry)


def _finish_reply(content: bytes, signer: Signer, digest: bytes | None, ahead: _ReplyAhead) -> dict[str, Any]:
    result = cms.create_pkcs7(content, signer, detached=False, signing_time=ahead.signing_time,
                              signed_attributes=_profile(signer), message_digest=digest)
    if len(result.cms_parts) != 3 or result.cms_parts[0] != ahead.prefix:
        log.warning("create_pkcs7: the CMS laid out ahead did not match; encoding it again")
        return _reply(result)
    return {
        "pkcs7_64": base64data.close_pieces(ahead.pieces, ahead.carry, result.cms_parts[2]),
        "signer_serial_number": result.signer_serial_hex,
        "signature_hex": result.signature.hex(),
    }


async def _sign_large(content: bytes, signer: Signer, detached: bool,
                      prepared: Future[dict[str, bytes] | None] | None) -> tuple[dict[str, Any], str]:
    """A large document's signature and the journal's SHA-256 of it (hex).

    The O'zDSt hash may still be running, started as the request arrived (server/prehash.py). Meanwhile the
    journal's SHA-256 runs on the other core and, for an attached O'zDSt signature, the reply's Base64 up to the
    signer's part is made, so that once the digest is there only the small signer part is left to do."""
    journal_hash = asyncio.ensure_future(asyncio.to_thread(_sha256_hex, content))
    ahead = None
    if prepared is not None and not prepared.done() and not detached and isinstance(signer, OzdstSigner):
        ahead = await asyncio.to_thread(_reply_ahead, content, signer, datetime.now(UTC))
    digest = (await _prepared_digests(prepared)).get(
        _PREPARED_DIGESTS.get(signer.digest_algorithm["algorithm"].dotted, ""))
    if digest is not None:
        log.debug("create_pkcs7: the document was hashed as it arrived")
    if ahead is not None:
        reply = await asyncio.to_thread(_finish_reply, content, signer, digest, ahead)
    else:
        reply = await asyncio.to_thread(_sign_to_reply, content, signer, detached, digest)
    return reply, await journal_hash


class Pkcs7Plugin:
    """pkcs7.*: CMS signatures with a key a page chose; the person confirms with the password or PIN."""

    def __init__(self, *, sessions: KeySessions, unlocker: KeyUnlocker, tokens: TokenService,
                 journal: Journal | None, login_origins: LoginOriginGuard | None = None) -> None:
        """`login_origins`: refuses login challenges meant for another site (one guard shared by every signing
        plugin, so its warning limits hold across them)."""
        self.sessions = sessions
        self.unlocker = unlocker
        self.tokens = tokens
        self.journal = journal
        self.login_origins = login_origins or LoginOriginGuard(unlocker.prompter, journal)

    def functions(self) -> list[PluginFunction]:
        key_id = Argument("id", "Идентификатор ключа (keyId), 'idcard', 'baikey' или 'ckc'")
        return [
            PluginFunction(
                "pkcs7",
                "create_pkcs7",
                self.create_pkcs7,
                (
                    Argument("data_64", "Данные в кодировке Base64"),
                    key_id,
                    Argument("detached", "'yes' — отсоединённая подпись, 'no' или '' — присоединённая", True),
                ),
                "Создать PKCS#7 документ, подписав данные ключом",
            ),
            PluginFunction(
                "pkcs7",
                "append_pkcs7_attached",
                self.append_pkcs7_attached,
                (Argument("pkcs7_64", "Присоединённый PKCS#7 документ в кодировке Base64"), key_id),
                # Hidden in E-IMZO 6.4.7's apidoc (no description there); we document it: portals rely on it.
                "Добавить подпись к присоединённому PKCS#7 документу",
            ),
        ]

    async def _loaded(self, call: Call) -> LoadedKey:
        # Hardware ids ("idcard", "baikey", "ckc") pick a token key (plugins/hardware.py).
        key = await self.tokens.pick(call) or self.sessions.get(call.arg("id"), call.caller.origin)
        if key is None:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        return key

    async def create_pkcs7(self, call: Call) -> dict[str, Any]:
        document_64 = call.long_arg("data_64")
        detached = call.arg("detached").strip().lower() == "yes"
        content = await decode_document(document_64, "data_64")  # no 13 MB str for 10 MB
        prepared = document_64.digests if isinstance(document_64, LongText) else None
        # The Base64 is not needed any more: a large request's frame (13.6 MB for 10 MB) is freed now, not after
        # the reply, so it is not held beside the document, its CMS and the reply (server/memory.py).
        call.release_long_arg("data_64")
        await self.login_origins.check(call, content)  # before any key is picked or password asked
        key = await self._loaded(call)
        async with journaled(self.journal, call, key, "pkcs7.create_pkcs7", content) as note:
            if is_token_key(key):  # PIN, login and signature happen on the token
                return _reply(await self.tokens.sign(call, key, "sign",
                                                     lambda s: cms.create_pkcs7(content, s, detached=detached,
                                                                                 signed_attributes=_profile(s))))
            opened, _ = await self.unlocker.open(call, key, "sign", document=content)
            note.certificate = opened.certificate
            if len(content) <= LARGE_DOCUMENT:
                reply = _sign_to_reply(content, opened.signer, detached)
                note.content_sha256 = _sha256_hex(content)
            else:
                reply, note.content_sha256 = await _sign_large(content, opened.signer, detached, prepared)
        return reply

    async def append_pkcs7_attached(self, call: Call) -> dict[str, Any]:
        existing = await decode_document(call.arg("pkcs7_64"), "pkcs7_64")
        # Check the document before any key is picked (a token's "which key?" question) or a password asked.
        try:
            info = await asyncio.to_thread(cms.read_signed_data, existing)
        except cms.CmsError as exc:
            raise EimzoError(Status.OTHER, "pkcs7_invalid", detail=str(exc)) from None
        if info.content is None:
            raise EimzoError(Status.OTHER, "pkcs7_detached")
        # A co-signature over a relayed login challenge is as good as a signature to a lax server.
        await self.login_origins.check(call, info.content)
        key = await self._loaded(call)
        async with journaled(self.journal, call, key, "pkcs7.append_pkcs7_attached", info.content) as note:
            if is_token_key(key):  # PIN, login and signature happen on the token
                try:
                    return _reply(await self.tokens.sign(call, key, "cosign",
                                                         lambda s: cms.append_signer(existing, s,
                                                                                    signed_attributes=_profile(s))))
                except cms.CmsError as exc:
                    raise EimzoError(Status.OTHER, "pkcs7_invalid", detail=str(exc)) from None
            opened, _ = await self.unlocker.open(call, key, "cosign", document=info.content)
            note.certificate = opened.certificate
            try:
                signer = opened.signer
                return await asyncio.to_thread(
                    lambda: _reply(cms.append_signer(existing, signer, signed_attributes=_profile(signer))))
            except cms.CmsError as exc:
                raise EimzoError(Status.OTHER, "pkcs7_invalid", detail=str(exc)) from None
