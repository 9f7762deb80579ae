"""Opening a key entry with its password, with one precise error kind for each way it can fail."""

from __future__ import annotations

from asn1crypto import pkcs12 as asn1_pkcs12

from ..errors import KeyErrorKind, KeyStoreError
from .backends import registered_backends
from .entries import UnlockedKey
from .keybags import key_algorithms
from .mac import verify_mac
from .structure import parse_pfx


def open_pfx(data: bytes, password: str, alias: str | None = None) -> UnlockedKey:
    """Decrypt the key entry `alias` (None or "": the only one) with `password`.

    Checks, each with its own error kind: structure (DAMAGED_FILE), MAC (WRONG_PASSWORD / UNSUPPORTED),
    key algorithm (UNSUPPORTED), alias (ALIAS_NOT_FOUND), key belongs to the certificate (KEY_MISMATCH).
    """
    entry = select_entry(open_entries(data, password), alias)
    check_key_matches(entry)
    return entry


def open_entries(data: bytes, password: str) -> list[UnlockedKey]:
    """Every key entry of the file, from the first backend that claims it (MAC checked first)."""
    pfx = parse_pfx(data)
    verify_mac(pfx, password)
    for backend in registered_backends():
        entries = backend.open(data, password)
        if entries is not None:
            return entries
    raise KeyStoreError(KeyErrorKind.UNSUPPORTED, _unsupported_detail(pfx, password))


def _unsupported_detail(pfx: asn1_pkcs12.Pfx, password: str) -> str:
    try:
        found = key_algorithms(pfx, password)
    except KeyStoreError as exc:
        return exc.detail
    names = sorted({algorithm.describe() for algorithm in found if algorithm is not None})
    return f"key algorithm {', '.join(names) or 'unknown'} is not supported"


def select_entry(entries: list[UnlockedKey], alias: str | None) -> UnlockedKey:
    """The entry named `alias` (case ignored); None or "" picks the only one. ALIAS_NOT_FOUND otherwise."""
    wanted = (alias or "").lower()
    if not entries:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, "the file holds no private key")
    match = next((entry for entry in entries if entry.alias.lower() == wanted), None)
    if match is not None:
        return match
    if not wanted and len(entries) == 1:
        return entries[0]
    if not wanted:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, f"the file holds {len(entries)} keys; name one")
    raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, f"no key with alias {alias!r} in the file")


def check_key_matches(entry: UnlockedKey) -> None:
    """KEY_MISMATCH unless the entry's private key belongs to its certificate."""
    matches = entry.signer.matches_certificate()
    if not matches:
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")
