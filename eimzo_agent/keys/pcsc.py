"""Smart-card readers and cards through PC/SC (pcscd on Linux/macOS, WinSCard on Windows), via `pyscard`.

What works today: listing readers, seeing which hold a card (with its ATR) without connecting to it, and
watching cards being inserted and removed. Signing with a card needs a *card driver* that speaks the card's
applet protocol; drivers plug into `CARD_DRIVERS`. The Uzbek ID card's E-IMZO applet has no public
specification, so no driver for it exists and `idcard` signing answers a clear error instead (never a hang).
Cards whose vendor ships a PKCS#11 module are used through `pkcs11_store` instead.

`smartcard` is imported lazily: without pyscard or without a running PC/SC service the agent works as before
and simply sees no readers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Pseudo-reader that reports readers being plugged in or out (PC/SC-lite and WinSCard both know it).
_PNP_READER = "\\\\?PnP?\\Notification"


class PcscUnavailable(Exception):
    """No pyscard, or no PC/SC service (pcscd not running / not installed)."""


@dataclass(frozen=True)
class ReaderState:
    name: str
    card_present: bool
    atr: bytes | None  # None when no card is in the reader


@dataclass(frozen=True)
class CardEvent:
    kind: str  # "inserted" or "removed"
    reader: str
    atr: bytes | None


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise PcscUnavailable(f"pyscard is not installed ({exc})") from None
    return scard


def _check(scard: Any, rv: int, what: str) -> None:
    if rv != scard.SCARD_S_SUCCESS:
        raise PcscUnavailable(f"{what}: {scard.SCardGetErrorMessage(rv)} (0x{rv & 0xFFFFFFFF:08X})")


def _context(scard: Any) -> Any:
    rv, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check(scard, rv, "no PC/SC service")
    return context


def _readers(scard: Any, context: Any) -> list[str]:
    rv, readers = scard.SCardListReaders(context, [])
    if rv in (scard.SCARD_E_NO_READERS_AVAILABLE, getattr(scard, "SCARD_E_READER_UNAVAILABLE", -1)):
        return []
    _check(scard, rv, "cannot list readers")
    return list(readers)


def reader_states() -> list[ReaderState]:
    """Every reader and whether it holds a card, read without connecting to (or locking) any card."""
    scard = _scard()
    context = _context(scard)
    try:
        readers = _readers(scard, context)
        if not readers:
            return []
        rv, states = scard.SCardGetStatusChange(context, 0, [(r, scard.SCARD_STATE_UNAWARE) for r in readers])
        _check(scard, rv, "cannot read reader states")
        return [_state(scard, name, event, atr) for name, event, atr in states]
    finally:
        scard.SCardReleaseContext(context)


def list_readers() -> list[str]:
    """Reader names, or [] when there is no PC/SC service (logged once per call at debug level)."""
    try:
        return [state.name for state in reader_states()]
    except PcscUnavailable as exc:
        log.debug("PC/SC: %s", exc)
        return []


def _state(scard: Any, name: str, event: int, atr: Any) -> ReaderState:
    present = bool(event & scard.SCARD_STATE_PRESENT)
    return ReaderState(name, present, bytes(atr) if present and atr else None)


class CardWatcher:
    """Calls `on_event` for every card inserted or removed (and readers plugged in), from its own thread.

    Uses SCardGetStatusChange, so it wakes on changes rather than polling; `stop()` cancels the wait.
    """

    def __init__(self, on_event: Callable[[CardEvent], None], timeout_ms: int = 1000) -> None:
        self.on_event = on_event
        self.timeout_ms = timeout_ms
        self._stop = threading.Event()
        self._scard = _scard()
        self._context = _context(self._scard)
        self._thread = threading.Thread(target=self._run, name="pcsc-watcher", daemon=True)
        self._known: dict[str, ReaderState] = {}

    def start(self) -> CardWatcher:
        # The first snapshot is the baseline: cards already inserted are not "events".
        self._known = {s.name: s for s in self._snapshot(0)}
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._scard.SCardCancel(self._context)
        self._thread.join(5)
        self._scard.SCardReleaseContext(self._context)

    def _snapshot(self, timeout_ms: int) -> list[ReaderState]:
        scard = self._scard
        readers = _readers(scard, self._context)
        watched = [(r, _current(scard, self._known.get(r))) for r in readers]
        watched.append((_PNP_READER, scard.SCARD_STATE_UNAWARE if not self._known else len(readers) << 16))
        rv, states = scard.SCardGetStatusChange(self._context, timeout_ms, watched)
        if rv in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return list(self._known.values())
        _check(scard, rv, "cannot wait for card events")
        return [_state(scard, name, event, atr) for name, event, atr in states if name != _PNP_READER]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                states = self._snapshot(self.timeout_ms)
            except PcscUnavailable as exc:
                log.debug("PC/SC watcher: %s", exc)
                self._stop.wait(1.0)
                continue
            current = {s.name: s for s in states}
            for name in set(self._known) | set(current):
                before, after = self._known.get(name), current.get(name)
                was = before is not None and before.card_present
                now = after is not None and after.card_present
                if now and not was:
                    self._emit(CardEvent("inserted", name, after.atr if after else None))
                elif was and not now:
                    self._emit(CardEvent("removed", name, None))
            self._known = current

    def _emit(self, event: CardEvent) -> None:
        log.info("PC/SC: card %s in %s", event.kind, event.reader)
        try:
            self.on_event(event)
        except Exception:
            log.exception("card event handler failed")


def _current(scard: Any, known: ReaderState | None) -> int:
    if known is None:
        return scard.SCARD_STATE_UNAWARE
    return scard.SCARD_STATE_PRESENT if known.card_present else scard.SCARD_STATE_EMPTY


# --- card drivers ---------------------------------------------------------------------------------------------


class CardNotSupported(Exception):
    """The card in the reader has no driver that can sign with it."""


class CardDriver(Protocol):
    """What a card protocol must offer to sign with an applet reached over PC/SC.

    A driver recognises its cards by ATR (cheap, no connection) and then works with APDUs through
    `transmit`, which sends one command APDU and returns (data, sw1, sw2).
    """

    name: str

    def recognises(self, atr: bytes) -> bool: ...

    def sign_digest(self, transmit: Callable[[bytes], tuple[bytes, int, int]], pin: str, digest: bytes) -> bytes:
        """Verify `pin`, sign `digest` with the card's signing key, return the signature."""
        ...


#: Registered card drivers, tried in order. Empty today: no card protocol we may implement is public.
CARD_DRIVERS: list[CardDriver] = []


def driver_for(atr: bytes) -> CardDriver | None:
    return next((driver for driver in CARD_DRIVERS if driver.recognises(atr)), None)
