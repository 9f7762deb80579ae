"""Smart-card readers and cards through PC/SC (pcscd on Linux/macOS, WinSCard on Windows), via `pyscard`.

What works today: listing readers and seeing which hold a card (with its ATR) without connecting to it. Signing
with a card would need code that speaks the card's applet protocol; the Uzbek ID card's E-IMZO applet has no
public specification, so `idcard` signing answers a clear error instead (never a hang). Cards whose vendor ships
a PKCS#11 module are used through `pkcs11_store`.

`smartcard` is imported lazily: without pyscard or without a running PC/SC service the agent works as before
and simply sees no readers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class PcscUnavailable(Exception):
    """No pyscard, or no PC/SC service (pcscd not running / not installed)."""


@dataclass(frozen=True)
class ReaderState:
    name: str
    card_present: bool
    atr: bytes | None  # None when no card is in the reader


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
