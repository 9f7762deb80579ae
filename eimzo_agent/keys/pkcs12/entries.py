"""What opening a file yields (`UnlockedKey`) and what a backend that opens files must offer (`PfxBackend`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from asn1crypto import x509 as asn1_x509

from ...crypto.signer import Signer


@dataclass(frozen=True)
class UnlockedKey:
    """A decrypted key entry: its alias, a signer, and the certificates that go with it."""

    alias: str
    signer: Signer
    certificate: asn1_x509.Certificate
    #: Other certificates of the file in issuer order (the end entity's issuer first), end entity excluded.
    chain: tuple[asn1_x509.Certificate, ...]


class PfxBackend(Protocol):
    """Turns a PFX whose MAC already verified into key entries, for the key algorithms it knows.

    `open` returns None when the file's keys are not of its algorithms ("not mine": the next backend tries),
    a list (possibly empty) of entries otherwise, and raises KeyStoreError for everything else. Signers
    that are not `CryptographySigner` should offer `matches_certificate() -> bool` for the KEY_MISMATCH
    check.
    """

    name: str

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None: ...
