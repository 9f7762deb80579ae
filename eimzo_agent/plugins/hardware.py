"""Hardware keys on the wire: E-IMZO's idcard/baikey/ckc calls, our `token` plugin, and the token signing hook.

E-IMZO reaches its own tokens (BAIK, UZGUARD, CKC) and the ID card through proprietary applets; we reach
tokens through PKCS#11 (`keys/pkcs11_store.py`) and readers through PC/SC (`keys/pcsc.py`). Where E-IMZO has
a call we answer it in its shape; `token.*` is our extension for pages that want to pick a token key
themselves. `plugins/pkcs7.py` calls `hardware_key`/`sign_with_token` for the literal ids "baikey"/"ckc"/
"idcard" and for keyIds of type PKCS11_KEY_STORE; everything else stays on the PFX path.

The PIN is asked by the agent (prompt kind "pin"), never taken from the page, up to `password_tries` times;
a token that reports its PIN locked stops the loop at once so we never burn the last tries of a real token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eimzo_agent.keys import pcsc
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.pkcs11_signer import TokenSigner
from eimzo_agent.keys.pkcs11_store import (
    PKCS11_KEY_STORE,
    Pkcs11Store,
    TokenError,
    TokenErrorKind,
    TokenKey,
    default_modules,
)
from eimzo_agent.keys.sessions import LoadedKey
from eimzo_agent.plugins.keyuse import key_label
from eimzo_agent.protocol.dispatcher import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.protocol.registry import Argument, PluginFunction
from eimzo_agent.ui.prompter import Operation, PromptRequest

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent
    from eimzo_agent.config import AgentConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Literal `id`s of create_pkcs7 that mean "a key on a token": the person picks it, the agent asks the PIN.
TOKEN_IDS = ("baikey", "ckc")
IDCARD_ID = "idcard"


def modules_for(config: AgentConfig) -> list[str]:
    """Configured modules (settings + --pkcs11-module); when none are configured, the per-OS defaults on disk."""
    configured = getattr(config, "pkcs11_modules", None)
    return list(configured) if configured is not None else default_modules()


def store_of(agent: Agent) -> Pkcs11Store:
    """The agent's token store, created on first use (module handles are cached inside it)."""
    store: Pkcs11Store | None = getattr(agent, "token_store", None)
    if store is None:
        store = Pkcs11Store(modules_for(agent.config))
        agent.token_store = store  # type: ignore[attr-defined]
    return store


def is_token_key(key: LoadedKey) -> bool:
    return key.store_type == PKCS11_KEY_STORE


# A LoadedKey is shaped for key files; for a token key its fields hold: disk = tokenId, path = module,
# name = CKA_ID in hex, alias = the E-IMZO alias built from the certificate, file = the module's path.
def _loaded(key: TokenKey, origin: str) -> LoadedKey:
    return LoadedKey(key_id="", origin=origin, store_type=PKCS11_KEY_STORE, disk=key.token.token_id,
                     path=key.token.module, name=key.cka_id.hex(), alias=key.alias, file=Path(key.token.module))


async def hardware_key(agent: Agent, call: Call) -> LoadedKey | None:
    """For create_pkcs7's literal ids: the token key to use (not stored as a session); None for other ids."""
    key_id = call.arg("id").strip().lower()
    if key_id == IDCARD_ID:
        # The ID card's E-IMZO applet protocol is not public: say so at once rather than wait for a card.
        raise EimzoError(Status.OTHER, "idcard_not_supported")
    if key_id not in TOKEN_IDS:
        return None
    keys = await asyncio.to_thread(store_of(agent).list_keys)
    if not keys:
        raise EimzoError(Status.OTHER, "token_key_none")
    if len(keys) == 1:
        return _loaded(keys[0], call.context.origin or "")
    # Several token keys: the person picks one (E-IMZO: "Выберите крипто контейнер ключа и введите PIN-код").
    labels = tuple(f"{key_label(k.alias)} — {k.token.label}" for k in keys)
    answer = await agent.prompter.ask(
        PromptRequest(kind="choose_key", site=call.context.origin or "", key_label="", operation="sign",
                      language=call.language, choices=labels)
    )
    if answer is None:
        raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")
    choice = answer.strip()
    if choice.isdigit() and 1 <= int(choice) <= len(keys):
        return _loaded(keys[int(choice) - 1], call.context.origin or "")
    raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")


def _token_error(exc: TokenError) -> EimzoError:
    log.info("token: %s", exc)
    match exc.kind:
        case TokenErrorKind.PIN_LOCKED:
            return EimzoError(Status.OTHER, "pin_locked")
        case TokenErrorKind.TOKEN_REMOVED:
            return EimzoError(Status.OTHER, "token_removed")
        case _:
            return EimzoError(Status.OTHER, "token_error")


async def sign_with_token(agent: Agent, call: Call, key: LoadedKey, operation: Operation,
                          build: Callable[[TokenSigner], T]) -> T:
    """Ask the PIN (up to `password_tries` times), log in and run `build(signer)` in a worker thread."""
    store = store_of(agent)
    token_key = await asyncio.to_thread(store.find_key, key.disk, bytes.fromhex(key.name))
    if token_key is None:
        raise EimzoError(Status.OTHER, "token_removed")
    label = f"{key_label(token_key.alias)} — {token_key.token.label}"
    tries = agent.config.password_tries
    for attempt in range(1, tries + 1):
        pin = await agent.prompter.ask(
            PromptRequest(kind="pin", site=call.context.origin or "", key_label=label, operation=operation,
                          attempt=attempt, max_attempts=tries, retry=attempt > 1, language=call.language)
        )
        if pin is None:
            raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
        if not pin:
            continue  # an empty PIN would only spend one of the token's tries
        try:
            return await asyncio.to_thread(store.sign, token_key, pin, build)
        except TokenError as exc:
            if exc.kind is not TokenErrorKind.WRONG_PIN:
                raise _token_error(exc) from None
        if await asyncio.to_thread(store.pin_locked, token_key):
            raise EimzoError(Status.OTHER, "pin_locked")
    raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")


# --- listings ---------------------------------------------------------------------------------------------------


def _token_entry(key: TokenKey) -> dict[str, str]:
    return {"tokenId": key.token.token_id, "tokenLabel": key.token.label, "label": key.label, "alias": key.alias}


def key_rows(config: AgentConfig) -> list[dict[str, Any]]:
    """Token keys for `eimzo-agent keys` (type "pkcs11"), in the same row shape as key files."""
    from datetime import datetime

    now = datetime.now()
    rows = []
    for key in Pkcs11Store(modules_for(config)).list_keys():
        owner = owner_from_alias(key.alias)
        rows.append({
            "type": "pkcs11",
            "disk": "",
            "path": "",
            "name": key.label,
            "file": key.uri,
            "alias": key.alias,
            "token_id": key.token.token_id,
            "token_label": key.token.label,
            "module": key.token.module,
            **owner.to_dict(),
            "legal_entity": owner.is_legal_entity,
            "expired": bool(owner.valid_to and owner.valid_to < now),
        })
    return rows


def register(agent: Agent) -> None:
    def add(plugin: str, name: str, handler: Any, args: tuple[Argument, ...], description: str,
            extension: bool = False) -> None:
        agent.registry.add(PluginFunction(plugin, name, handler, args, description, extension=extension))

    async def tokens(call: Call) -> list[dict[str, str]]:
        found = await asyncio.to_thread(store_of(agent).list_tokens)
        return [{"tokenId": t.token_id, "label": t.label, "manufacturer": t.manufacturer, "model": t.model,
                 "serial": t.serial} for t in found]

    async def list_ckc(call: Call) -> dict[str, Any]:
        found = await asyncio.to_thread(store_of(agent).list_tokens)
        return {"devices": [{"type": "PKCS11", "deviceID": f"{t.label} ({t.manufacturer} {t.model} {t.serial})"}
                            for t in found]}

    async def list_tokens(call: Call) -> dict[str, Any]:
        return {"tokens": await tokens(call)}

    async def list_readers(call: Call) -> dict[str, Any]:
        return {"readers": await asyncio.to_thread(pcsc.list_readers)}

    async def reader_states(call: Call) -> dict[str, Any]:
        try:
            states = await asyncio.to_thread(pcsc.reader_states)
        except pcsc.PcscUnavailable as exc:
            log.debug("PC/SC: %s", exc)
            states = []
        return {"readers": [{"name": s.name, "cardPresent": s.card_present, "atr": s.atr.hex() if s.atr else ""}
                            for s in states]}

    async def list_keys(call: Call) -> dict[str, Any]:
        keys = await asyncio.to_thread(store_of(agent).list_keys)
        return {"keys": [_token_entry(k) for k in keys]}

    async def load_key(call: Call) -> dict[str, Any]:
        token_id, alias = call.arg("tokenId"), call.arg("alias").strip().lower()
        key = await asyncio.to_thread(store_of(agent).find_key, token_id, None, alias)
        if key is None:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        key_id = agent.sessions.add(_loaded(key, call.context.origin or ""))
        return {"keyId": key_id, "type": PKCS11_KEY_STORE}

    async def unload_key(call: Call) -> dict[str, Any]:
        key = agent.sessions.get(call.arg("keyId"), call.context.origin)
        if key is None or not is_token_key(key) or not agent.sessions.remove(key.key_id, call.context.origin):
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PKCS11_KEY_STORE)
        return {}

    async def clear_saved_pin_codes(call: Call) -> dict[str, Any]:
        return {}  # we never keep a PIN beyond one signature: there is nothing to clear

    clear = "Удалить сохранённые PIN-коды"
    add("idcard", "list_readers", list_readers, (), "Получить список считывателей смарт-карт")
    add("idcard", "clear_saved_pin_codes", clear_saved_pin_codes, (), clear)
    add("baikey", "list_tokens", list_tokens, (), "Получить список подключенных токенов")
    add("baikey", "clear_saved_pin_codes", clear_saved_pin_codes, (), clear)
    add("ckc", "list_ckc", list_ckc, (), "Получить список подключенных устройств")
    add("ckc", "clear_saved_pin_codes", clear_saved_pin_codes, (), clear)
    add("token", "list_tokens", list_tokens, (), "Получить список токенов PKCS#11", extension=True)
    add("token", "list_keys", list_keys, (), "Получить список ключей на токенах PKCS#11", extension=True)
    add("token", "list_readers", reader_states, (),
        "Получить список считывателей PC/SC с признаком наличия карты и её ATR", extension=True)
    add("token", "load_key", load_key, (Argument("tokenId", "Идентификатор токена"),
                                         Argument("alias", "Алиас сертификата")),
        "Загрузить ключ с токена и получить его идентификатор (PIN-код спрашивается при подписании)",
        extension=True)
    add("token", "unload_key", unload_key, (Argument("keyId", "Идентификатор загруженного ключа"),),
        "Выгрузить ранее загруженный ключ токена", extension=True)
