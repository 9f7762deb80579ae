"""Keys on PKCS#11 tokens (USB tokens, smart cards with a vendor module, SoftHSM): listing, PIN login, signing.

`python-pkcs11` is imported lazily, so the agent runs on machines without it or without any module. Module
handles are cached (loading and C_Initialize cost time), but slots are enumerated again on every listing:
tokens come and go while the agent runs. Every call into a module holds that module's lock, because the
module is initialised without threading callbacks (C_Initialize(NULL)) and because a PKCS#11 login is
per application, not per session: two operations on one token must never interleave.

A token key is identified by its token (`token_id`, a hash of module, manufacturer, model and serial: slot
numbers change on every re-plug) and the CKA_ID shared by the certificate and its private key.

A token counts wrong PINs itself and locks after a few; its token-info flags tell how it stands (`PinState`).
python-pkcs11 reads C_GetTokenInfo afresh for every `Slot.get_token()`, and we call that for every operation,
so the state is never a cached one. `sign` refuses to log in on the token's last try unless the caller says the
person was warned: the check and C_Login run under one lock, so our own agent cannot slip in between.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509

from eimzo_agent.keys.alias import build_alias
from eimzo_agent.keys.pkcs11_signer import TokenSigner, UnsupportedTokenKey

log = logging.getLogger(__name__)

T = TypeVar("T")

#: E-IMZO-style session type name for keys loaded from a PKCS#11 token (ours; E-IMZO has none).
PKCS11_KEY_STORE = "PKCS11_KEY_STORE"

#: Modules tried when the settings name none: OpenSC (most ID cards and many tokens) and vendor modules of
#: tokens sold in Uzbekistan's neighbourhood (Rutoken, SafeNet/eToken, JaCarta, FeiTian ePass), where present.
_DEFAULT_MODULES: dict[str, tuple[str, ...]] = {
    "linux": (
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
        "/usr/lib64/opensc-pkcs11.so",
        "/usr/lib/librtpkcs11ecp.so",
        "/opt/aktivco/rutokenecp/amd64/librtpkcs11ecp.so",
        "/usr/lib/libeToken.so",
        "/usr/lib/libeTPkcs11.so",
        "/usr/lib/libjcPKCS11-2.so",
        "/usr/lib/libcastle.so.1",
    ),
    "darwin": (
        "/Library/OpenSC/lib/opensc-pkcs11.so",
        "/opt/homebrew/lib/opensc-pkcs11.so",
        "/usr/local/lib/opensc-pkcs11.so",
        "/Library/Frameworks/eToken.framework/Versions/Current/libeToken.dylib",
        "/Library/Aktiv Co/Rutoken ECP/lib/librtpkcs11ecp.dylib",
    ),
    "win32": (
        r"C:\Windows\System32\opensc-pkcs11.dll",
        r"C:\Program Files\OpenSC Project\OpenSC\pkcs11\opensc-pkcs11.dll",
        r"C:\Windows\System32\rtPKCS11ECP.dll",
        r"C:\Windows\System32\eTPKCS11.dll",
        r"C:\Windows\System32\jcPKCS11-2.dll",
    ),
}


def default_modules(platform: str = sys.platform) -> list[str]:
    """The per-OS default modules that exist on this machine."""
    key = "linux" if platform.startswith("linux") else platform
    return [path for path in _DEFAULT_MODULES.get(key, ()) if Path(path).is_file()]


#: Token-info flags (PKCS#11 2.40 §5.4 CK_TOKEN_INFO).
_CKF_TOKEN_INITIALIZED = 0x00000400
_CKF_USER_PIN_COUNT_LOW = 0x00010000
_CKF_USER_PIN_FINAL_TRY = 0x00020000
_CKF_USER_PIN_LOCKED = 0x00040000


class PinState(enum.Enum):
    """What a token says about its user PIN, read before every PIN question."""

    OK = "ok"
    COUNT_LOW = "count_low"  # a wrong PIN was entered since the last right one
    FINAL_TRY = "final_try"  # one more wrong PIN locks it
    LOCKED = "locked"
    UNKNOWN = "unknown"  # the token info could not be read: ask as usual

    @classmethod
    def from_flags(cls, flags: int) -> PinState:
        # Tokens set COUNT_LOW together with FINAL_TRY; the stronger state wins.
        if flags & _CKF_USER_PIN_LOCKED:
            return cls.LOCKED
        if flags & _CKF_USER_PIN_FINAL_TRY:
            return cls.FINAL_TRY
        if flags & _CKF_USER_PIN_COUNT_LOW:
            return cls.COUNT_LOW
        return cls.OK


class TokenErrorKind(enum.Enum):
    WRONG_PIN = "wrong_pin"
    PIN_LOCKED = "pin_locked"
    #: The token reached its last PIN try after the person was asked without that warning; nothing was spent.
    FINAL_TRY_UNWARNED = "final_try_unwarned"
    TOKEN_REMOVED = "token_removed"  # noqa: S105 - a kind, not a secret; the token (or its key) is not there any more
    TOKEN_ERROR = "token_error"  # noqa: S105 - the module or token failed in some other way
    UNAVAILABLE = "unavailable"  # python-pkcs11 missing or the module cannot be loaded


class TokenError(Exception):
    """A token operation failed; `kind` tells why, `detail` is for the log only."""

    def __init__(self, kind: TokenErrorKind, detail: str = "") -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    label: str
    manufacturer: str
    model: str
    serial: str
    module: str
    slot_description: str


@dataclass(frozen=True)
class TokenKey:
    """A certificate on a token whose private key carries the same CKA_ID."""

    token: TokenInfo
    cka_id: bytes
    label: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    alias: str

    @property
    def uri(self) -> str:
        """RFC 7512 PKCS#11 URI, for people and logs."""
        pct = "".join(f"%{b:02x}" for b in self.cka_id)
        return f"pkcs11:token={self.token.label};serial={self.token.serial};id={pct}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip().rstrip("\x00").strip()


class _Module:
    """One loaded module, its lock, and re-initialisation after the module lost track of its tokens."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._lib: Any = None

    def lib(self) -> Any:
        if self._lib is None:
            try:
                import pkcs11
            except ImportError as exc:
                raise TokenError(TokenErrorKind.UNAVAILABLE, f"python-pkcs11 is not installed ({exc})") from None
            try:
                self._lib = pkcs11.lib(self.path)
            except Exception as exc:  # RuntimeError/AlreadyInitialized/OSError depending on the failure
                raise TokenError(TokenErrorKind.UNAVAILABLE, f"cannot load {self.path}: {exc}") from None
        return self._lib

    def reinitialize(self) -> None:
        """C_Finalize + C_Initialize: software tokens (SoftHSM) see added or deleted tokens only after this."""
        if self._lib is not None:
            try:
                self._lib.reinitialize()
            except Exception as exc:
                log.warning("PKCS#11 module %s could not be re-initialised: %s", self.path, exc)


class Pkcs11Store:
    """Token keys from a list of PKCS#11 modules."""

    def __init__(self, modules: list[str]) -> None:
        # dict keeps order and drops a module named twice (config + command line).
        self._modules = {path: _Module(path) for path in dict.fromkeys(modules)}

    @property
    def modules(self) -> list[str]:
        return list(self._modules)

    # --- listing ---------------------------------------------------------------------------------------------

    def list_tokens(self) -> list[TokenInfo]:
        tokens: list[TokenInfo] = []
        for module in self._modules.values():
            try:
                with module.lock:
                    tokens.extend(info for info, _ in self._tokens(module))
            except TokenError as exc:
                log.warning("PKCS#11 module %s: %s", module.path, exc)
        return tokens

    def list_keys(self) -> list[TokenKey]:
        keys: list[TokenKey] = []
        for module in self._modules.values():
            try:
                with module.lock:
                    for info, token in self._tokens(module):
                        keys.extend(self._keys_of(info, token))
            except TokenError as exc:
                log.warning("PKCS#11 module %s: %s", module.path, exc)
        return keys

    def find_key(self, token_id: str, cka_id: bytes | None = None, alias: str | None = None) -> TokenKey | None:
        for key in self.list_keys():
            if key.token.token_id != token_id:
                continue
            if (cka_id is not None and key.cka_id == cka_id) or (alias is not None and key.alias == alias):
                return key
        return None

    # --- signing ---------------------------------------------------------------------------------------------

    def sign(self, key: TokenKey, pin: str, build: Callable[[TokenSigner], T], *,
             final_try_warned: bool = False) -> T:
        """Log in with `pin`, run `build(signer)` (e.g. the CMS builder), log out. Blocking: call from a thread.

        On the token's last PIN try it logs in only when `final_try_warned` (the question carried the warning);
        otherwise TokenError(FINAL_TRY_UNWARNED), with the try unspent. TokenError(WRONG_PIN) means the token
        counted one failure; ask `pin_state` before asking again.
        """
        module = self._module_of(key)
        with module.lock, self._session(module, key.token.token_id, pin, final_try_warned) as session:
            try:
                signer = TokenSigner.for_session(session, key.cka_id, key.certificate, key.chain)
            except UnsupportedTokenKey as exc:
                raise TokenError(TokenErrorKind.TOKEN_ERROR, f"unsupported key algorithm {exc}") from None
            return build(signer)

    def pin_state(self, key: TokenKey) -> PinState:
        """The token's user-PIN state now (fresh C_GetTokenInfo). Blocking: call from a thread.

        TokenError(TOKEN_REMOVED) when the token is gone; UNKNOWN when the module cannot tell.
        """
        module = self._module_of(key)
        try:
            with module.lock:
                token = self._token(module, key.token.token_id)
                flags = int(token.flags)
        except TokenError as exc:
            if exc.kind is TokenErrorKind.TOKEN_REMOVED:
                raise
            log.warning("token %s: PIN state unknown: %s", key.token.label, exc)
            return PinState.UNKNOWN
        return PinState.from_flags(flags)

    # --- internals -------------------------------------------------------------------------------------------

    def _module_of(self, key: TokenKey) -> _Module:
        module = self._modules.get(key.token.module)
        if module is None:
            raise TokenError(TokenErrorKind.TOKEN_REMOVED, f"module {key.token.module} is no longer configured")
        return module

    def _token(self, module: _Module, token_id: str) -> Any:
        """The present token `token_id` of `module` (its info just read), or TokenError(TOKEN_REMOVED)."""
        token = next((t for info, t in self._tokens(module) if info.token_id == token_id), None)
        if token is None:
            raise TokenError(TokenErrorKind.TOKEN_REMOVED, f"token {token_id} is not present")
        return token

    def _tokens(self, module: _Module) -> list[tuple[TokenInfo, Any]]:
        """Tokens present now; one re-initialisation when the module fails (a token vanished under it)."""
        import pkcs11.exceptions as p11e

        lib = module.lib()
        for attempt in (1, 2):
            try:
                found = []
                for slot in lib.get_slots(token_present=True):
                    token = slot.get_token()
                    if not int(token.flags) & _CKF_TOKEN_INITIALIZED:
                        continue  # SoftHSM's spare slot, blank cards
                    found.append((self._info(module.path, slot, token), token))
                return found
            except (p11e.GeneralError, p11e.DeviceError, p11e.DeviceRemoved, p11e.TokenNotPresent,
                    p11e.SlotIDInvalid, p11e.TokenNotRecognised) as exc:
                if attempt == 2:
                    raise TokenError(TokenErrorKind.TOKEN_ERROR, f"enumeration failed: {type(exc).__name__}") from None
                log.info("PKCS#11 module %s failed (%s); re-initialising it", module.path, type(exc).__name__)
                module.reinitialize()
            except p11e.PKCS11Error as exc:
                raise TokenError(TokenErrorKind.TOKEN_ERROR, f"enumeration failed: {type(exc).__name__}") from None
        return []  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _info(module: str, slot: Any, token: Any) -> TokenInfo:
        manufacturer, model, serial = _text(token.manufacturer_id), _text(token.model), _text(token.serial)
        identity = "\x00".join((module, manufacturer, model, serial, "" if serial else _text(token.label)))
        return TokenInfo(
            token_id=hashlib.sha256(identity.encode()).hexdigest()[:16],
            label=_text(token.label),
            manufacturer=manufacturer,
            model=model,
            serial=serial,
            module=module,
            slot_description=_text(slot.slot_description),
        )

    @staticmethod
    def _keys_of(info: TokenInfo, token: Any) -> list[TokenKey]:
        """Certificates with a CKA_ID; CA certificates on the token become the chain, not keys."""
        import pkcs11.exceptions as p11e
        from pkcs11 import Attribute, CertificateType, ObjectClass

        try:
            with token.open() as session:
                # list() first: searching again inside a running search is OperationActive (python-pkcs11 trap).
                objects = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                                    Attribute.CERTIFICATE_TYPE: CertificateType.X_509}))
                raw = [(bytes(o[Attribute.ID] or b""), _text(o[Attribute.LABEL] or ""), bytes(o[Attribute.VALUE]))
                       for o in objects]
        except p11e.PKCS11Error as exc:
            log.warning("token %s (%s): cannot read certificates: %s", info.label, info.module, type(exc).__name__)
            return []
        certificates: list[tuple[bytes, str, x509.Certificate]] = []
        for cka_id, label, der in raw:
            try:
                cert = x509.Certificate.load(der)
                cert.native  # noqa: B018 - parse fully now, so a broken certificate is skipped here
            except ValueError:
                log.warning("token %s: certificate %r is not readable X.509; skipped", info.label, label)
                continue
            certificates.append((cka_id, label, cert))
        authorities = [cert for _, _, cert in certificates if cert.ca]
        keys = []
        for cka_id, label, cert in certificates:
            if cert.ca or not cka_id:
                continue
            chain = tuple(_chain(cert, authorities))
            keys.append(TokenKey(info, cka_id, label, cert, chain, build_alias(cert)))
        return keys

    @contextmanager
    def _session(self, module: _Module, token_id: str, pin: str, final_try_warned: bool) -> Iterator[Any]:
        import pkcs11.exceptions as p11e

        # Read right before C_Login, under the module lock: the state may have changed since the question.
        token = self._token(module, token_id)
        state = PinState.from_flags(int(token.flags))
        if state is PinState.LOCKED:
            raise TokenError(TokenErrorKind.PIN_LOCKED, "the token reports its user PIN locked")
        if state is PinState.FINAL_TRY and not final_try_warned:
            raise TokenError(TokenErrorKind.FINAL_TRY_UNWARNED, "the token is on its last PIN try")
        try:
            session = token.open(user_pin=pin)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange):
            raise TokenError(TokenErrorKind.WRONG_PIN) from None
        except p11e.PinLocked:
            raise TokenError(TokenErrorKind.PIN_LOCKED) from None
        except p11e.PKCS11Error as exc:
            raise _token_failure(exc) from None
        try:
            yield session
        except p11e.PKCS11Error as exc:
            raise _token_failure(exc) from None
        finally:
            try:
                session.close()
            except p11e.PKCS11Error as exc:
                log.info("closing a token session failed (token gone?): %s", type(exc).__name__)


def _token_failure(exc: Exception) -> TokenError:
    import pkcs11.exceptions as p11e

    removed = (p11e.TokenNotPresent, p11e.DeviceRemoved, p11e.SessionClosed, p11e.SessionHandleInvalid,
               p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid, p11e.NoSuchKey, p11e.GeneralError)
    # SoftHSM answers GeneralError/ObjectHandleInvalid when its token directory vanished; hardware tokens
    # answer DeviceRemoved/TokenNotPresent. To the person all of these mean "the token went away".
    kind = TokenErrorKind.TOKEN_REMOVED if isinstance(exc, removed) else TokenErrorKind.TOKEN_ERROR
    return TokenError(kind, type(exc).__name__)


def _chain(cert: x509.Certificate, authorities: list[x509.Certificate]) -> Iterator[x509.Certificate]:
    """Issuers of `cert` found on the token, nearest first (loops and self-signed roots end the walk)."""
    seen = {cert.dump()}
    current = cert
    while current.subject != current.issuer:
        issuer = next((a for a in authorities if a.subject == current.issuer and a.dump() not in seen), None)
        if issuer is None:
            return
        seen.add(issuer.dump())
        yield issuer
        current = issuer
