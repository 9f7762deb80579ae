"""Hardware keys on the wire: E-IMZO's idcard/baikey/ckc calls, our `token` plugin, and the token signing hook.

E-IMZO reaches its own tokens (BAIK, UZGUARD, CKC) and the ID card through proprietary applets; we reach
tokens through PKCS#11 (`keys/pkcs11_store.py`) and readers through PC/SC (`keys/pcsc.py`). Where E-IMZO has
a call we answer it in its shape; `token.*` is our extension for pages that want to pick a token key
themselves. `TokenService` is what the pkcs7 and x509 plugins use for the literal ids "baikey"/"ckc"/"idcard"
and for keyIds of type PKCS11_KEY_STORE; everything else stays on the PFX path.

The PIN is asked by the agent (prompt kind "pin"), never taken from the page, up to `password_tries` times.
Before every question the token's own PIN state is read: a locked PIN is refused without a question, the
token's last try is asked with a warning (and earlier wrong PINs with a milder one), and the last try is never
spent unless the question the person answered carried that warning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509

from eimzo_agent.keys import pcsc
from eimzo_agent.keys.pkcs11_signer import TokenSigner
from eimzo_agent.keys.pkcs11_store import (
    PKCS11_KEY_STORE,
    PinState,
    Pkcs11Store,
    TokenError,
    TokenErrorKind,
    TokenKey,
    default_modules,
)
from eimzo_agent.keys.sessions import KeySessions, LoadedKey
from eimzo_agent.plugins.keyuse import key_label
from eimzo_agent.policy.asking import ask_person
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompter import Operation, Prompter, PromptRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Literal `id`s of create_pkcs7 that mean "a key on a token": the person picks it, the agent asks the PIN.
TOKEN_IDS = ("baikey", "ckc")
IDCARD_ID = "idcard"
#: The device type of list_ckc's entries and supported_ckc's one answer: a token reached through PKCS#11.
SUPPORTED_CKC_TYPE = "PKCS11"
#: What to install for token keys (the agent runs without it: python-pkcs11 and pyscard are an optional extra).
TOKENS_EXTRA = "eimzo-agent[tokens]"


def modules_for(configured: list[str] | None) -> list[str]:
    """Configured modules (settings + --pkcs11-module); when none are configured, the per-OS defaults on disk."""
    return list(configured) if configured is not None else default_modules()


def pkcs11_missing() -> str | None:
    """Why python-pkcs11 cannot be imported (the tokens extra is not installed), or None when it can."""
    try:
        import pkcs11  # noqa: F401 - only whether it imports
    except ImportError as exc:
        return str(exc) or type(exc).__name__
    return None


def is_token_key(key: LoadedKey) -> bool:
    return key.store_type == PKCS11_KEY_STORE


# A LoadedKey is shaped for key files; for a token key its fields hold: disk = tokenId, path = module,
# name = CKA_ID in hex, alias = the E-IMZO alias built from the certificate, file = the module's path.
def _loaded(key: TokenKey, origin: str) -> LoadedKey:
    return LoadedKey(key_id="", origin=origin, store_type=PKCS11_KEY_STORE, disk=key.token.token_id,
                     path=key.token.module, name=key.cka_id.hex(), alias=key.alias, file=Path(key.token.module))


def _token_error(exc: TokenError) -> EimzoError:
    log.info("token: %s", exc.kind.name)
    log.debug("token: %s", exc)
    match exc.kind:
        case TokenErrorKind.PIN_LOCKED:
            return EimzoError(Status.OTHER, "pin_locked")
        case TokenErrorKind.TOKEN_REMOVED:
            return EimzoError(Status.OTHER, "token_removed")
        case _:
            return EimzoError(Status.OTHER, "token_error")


class TokenService:
    """Keys on PKCS#11 tokens for the plugins: which one to use, the PIN (asked by the agent), signing.

    The store is created on first use: loading modules costs time, and most people have no token.
    """

    def __init__(self, modules: list[str] | None, prompter: Prompter, tries: int,
                 store_factory: Callable[[list[str]], Pkcs11Store] = Pkcs11Store) -> None:
        self._modules = modules
        self._factory = store_factory
        self._store: Pkcs11Store | None = None
        self.prompter = prompter
        self.tries = tries

    @property
    def store(self) -> Pkcs11Store:
        if self._store is None:
            modules = modules_for(self._modules)
            missing = pkcs11_missing() if modules else None
            if missing is not None:
                # Without the extra there are no token keys: listings answer [] (as with no token), not -9999.
                log.warning("PKCS#11 modules %s not used: python-pkcs11 is missing (%s); install %s",
                            ", ".join(modules), missing, TOKENS_EXTRA)
                modules = []
            self._store = self._factory(modules)
        return self._store

    async def pick(self, call: Call) -> LoadedKey | None:
        """For create_pkcs7's literal ids: the token key to use (not stored as a session); None for other ids."""
        key_id = call.arg("id").strip().lower()
        if key_id == IDCARD_ID:
            # The ID card's E-IMZO applet protocol is not public: say so at once rather than wait for a card.
            raise EimzoError(Status.OTHER, "idcard_not_supported")
        if key_id not in TOKEN_IDS:
            return None
        keys = await asyncio.to_thread(self.store.list_keys)
        if not keys:
            raise EimzoError(Status.OTHER, "token_key_none")
        origin = call.caller.origin or ""
        if len(keys) == 1:
            return _loaded(keys[0], origin)
        # Several token keys: the person picks one (E-IMZO: "Выберите крипто контейнер ключа и введите PIN-код").
        labels = tuple(f"{key_label(k.alias)} — {k.token.label}" for k in keys)
        answer = await ask_person(self.prompter, PromptRequest(
            kind="choose_key", site=call.caller.label, key_label="", operation="sign", language=call.language,
            choices=labels, caller=call.caller))
        if answer is None:
            raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")
        choice = answer.strip()
        if choice.isdigit() and 1 <= int(choice) <= len(keys):
            return _loaded(keys[int(choice) - 1], origin)
        raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")

    async def sign(self, call: Call, key: LoadedKey, operation: Operation, build: Callable[[TokenSigner], T]) -> T:
        """Ask the PIN (up to `tries` times), log in and run `build(signer)` in a worker thread.

        The token's PIN state is read before every question (see the module docstring). Our `tries` may end
        before the token's own count does; what must never happen is a silent last try of the token.
        """
        store = self.store
        token_key = await self.find(key)
        label = f"{key_label(token_key.alias)} — {token_key.token.label}"
        attempt, changed_under_us, wrong = 1, False, 0
        while attempt <= self.tries:
            state = await self._pin_state(token_key)
            final = state is PinState.FINAL_TRY or changed_under_us
            if final:
                log.info("token %s: last PIN try; asking with a warning", token_key.token.label)
            pin = await ask_person(self.prompter, PromptRequest(
                kind="pin", site=call.caller.label, key_label=label, operation=operation, attempt=attempt,
                # On the token's last try "tries left" must not promise more than the token allows.
                max_attempts=attempt if final else self.tries, retry=attempt > 1, language=call.language,
                caller=call.caller, pin_final_try=final, pin_count_low=state is PinState.COUNT_LOW))
            if pin is None:
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
            changed_under_us = False
            if pin:  # an empty PIN would only spend one of the token's tries
                try:
                    return await asyncio.to_thread(store.sign, token_key, pin, build, final_try_warned=final)
                except TokenError as exc:
                    if exc.kind is TokenErrorKind.FINAL_TRY_UNWARNED:
                        # The token reached its last try while the question was open (another program spent
                        # one): ask this attempt again, now with the warning, instead of spending it.
                        changed_under_us = True
                        continue
                    if exc.kind is not TokenErrorKind.WRONG_PIN:
                        raise _token_error(exc) from None
                    wrong += 1
            attempt += 1
        await self._pin_state(token_key)  # a PIN locked by the last wrong try says so, not "cancelled"
        if wrong:  # as for key files: E-IMZO's status, a reason the vendor's client shows as a wrong password
            raise EimzoError(Status.PASSWORD_CANCELLED, "pin_wrong", tries=wrong)
        raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")

    async def _pin_state(self, key: TokenKey) -> PinState:
        """The token's PIN state now; a locked PIN or a vanished token ends the operation here."""
        try:
            state = await asyncio.to_thread(self.store.pin_state, key)
        except TokenError as exc:
            raise _token_error(exc) from None
        if state is PinState.LOCKED:
            raise EimzoError(Status.OTHER, "pin_locked")
        return state

    async def find(self, key: LoadedKey) -> TokenKey:
        """The token key a session names (disk = tokenId, name = CKA_ID in hex); the token must be present."""
        token_key = await asyncio.to_thread(self.store.find_key, key.disk, bytes.fromhex(key.name))
        if token_key is None:
            raise EimzoError(Status.OTHER, "token_removed")
        return token_key

    async def chain(self, key: LoadedKey) -> list[x509.Certificate]:
        """A token key's certificate and chain: public objects, no PIN needed."""
        token_key = await self.find(key)
        return [token_key.certificate, *token_key.chain]


# --- listings ---------------------------------------------------------------------------------------------------


def _token_entry(key: TokenKey) -> dict[str, str]:
    return {"tokenId": key.token.token_id, "tokenLabel": key.token.label, "label": key.label, "alias": key.alias}


class HardwarePlugin:
    """E-IMZO's idcard/baikey/ckc listings and our own `token.*` calls."""

    def __init__(self, tokens: TokenService, sessions: KeySessions) -> None:
        self.tokens = tokens
        self.sessions = sessions

    def functions(self) -> list[PluginFunction]:
        def fn(plugin: str, name: str, handler: Any, args: tuple[Argument, ...], description: str,
               extension: bool = False) -> PluginFunction:
            return PluginFunction(plugin, name, handler, args, description, extension=extension)

        clear = "Удалить сохранённые PIN-коды"
        return [
            fn("idcard", "list_readers", self.list_readers, (), "Получить список считывателей смарт-карт"),
            fn("idcard", "clear_saved_pin_codes", self.clear_saved_pin_codes, (), clear),
            fn("baikey", "list_tokens", self.list_tokens, (), "Получить список подключенных токенов"),
            fn("baikey", "clear_saved_pin_codes", self.clear_saved_pin_codes, (), clear),
            fn("ckc", "list_ckc", self.list_ckc, (), "Получить список подключенных устройств"),
            fn("ckc", "clear_saved_pin_codes", self.clear_saved_pin_codes, (), clear),
            fn("ckc", "supported_ckc", self.supported_ckc, (), "Получить список поддерживаемых типов устройств"),
            fn("token", "list_tokens", self.list_tokens, (), "Получить список токенов PKCS#11", extension=True),
            fn("token", "list_keys", self.list_keys, (), "Получить список ключей на токенах PKCS#11",
               extension=True),
            fn("token", "list_readers", self.reader_states, (),
               "Получить список считывателей PC/SC с признаком наличия карты и её ATR", extension=True),
            fn("token", "load_key", self.load_key, (Argument("tokenId", "Идентификатор токена"),
                                                   Argument("alias", "Алиас сертификата")),
               "Загрузить ключ с токена и получить его идентификатор (PIN-код спрашивается при подписании)",
               extension=True),
            fn("token", "unload_key", self.unload_key, (Argument("keyId", "Идентификатор загруженного ключа"),),
               "Выгрузить ранее загруженный ключ токена", extension=True),
        ]

    async def _tokens(self) -> list[dict[str, str]]:
        found = await asyncio.to_thread(self.tokens.store.list_tokens)
        return [{"tokenId": t.token_id, "label": t.label, "manufacturer": t.manufacturer, "model": t.model,
                 "serial": t.serial} for t in found]

    async def list_ckc(self, call: Call) -> dict[str, Any]:
        found = await asyncio.to_thread(self.tokens.store.list_tokens)
        return {"devices": [{"type": SUPPORTED_CKC_TYPE,
                             "deviceID": f"{t.label} ({t.manufacturer} {t.model} {t.serial})"} for t in found]}

    async def supported_ckc(self, call: Call) -> dict[str, Any]:
        """E-IMZO lists its own device kinds in `list`; ours is one kind: any token with a PKCS#11 module (the
        `type` list_ckc reports), whether or not python-pkcs11 is installed (the listing then is empty)."""
        return {"list": [SUPPORTED_CKC_TYPE]}

    async def list_tokens(self, call: Call) -> dict[str, Any]:
        return {"tokens": await self._tokens()}

    async def list_readers(self, call: Call) -> dict[str, Any]:
        return {"readers": await asyncio.to_thread(pcsc.list_readers)}

    async def reader_states(self, call: Call) -> dict[str, Any]:
        try:
            states = await asyncio.to_thread(pcsc.reader_states)
        except pcsc.PcscUnavailable as exc:
            log.debug("PC/SC: %s", exc)
            states = []
        return {"readers": [{"name": s.name, "cardPresent": s.card_present, "atr": s.atr.hex() if s.atr else ""}
                            for s in states]}

    async def list_keys(self, call: Call) -> dict[str, Any]:
        keys = await asyncio.to_thread(self.tokens.store.list_keys)
        return {"keys": [_token_entry(k) for k in keys]}

    async def load_key(self, call: Call) -> dict[str, Any]:
        token_id, alias = call.arg("tokenId"), call.arg("alias").strip().lower()
        key = await asyncio.to_thread(self.tokens.store.find_key, token_id, None, alias)
        if key is None:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        key_id = self.sessions.add(_loaded(key, call.caller.origin or ""))
        return {"keyId": key_id, "type": PKCS11_KEY_STORE}

    async def unload_key(self, call: Call) -> dict[str, Any]:
        origin = call.caller.origin
        key = self.sessions.get(call.arg("keyId"), origin)
        if key is None or not is_token_key(key) or not self.sessions.remove(key.key_id, origin):
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PKCS11_KEY_STORE)
        return {}

    async def clear_saved_pin_codes(self, call: Call) -> dict[str, Any]:
        return {}  # we never keep a PIN beyond one signature: there is nothing to clear
