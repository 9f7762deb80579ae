"""What opening a file yields (`UnlockedKey`) and what a backend that opens files must offer (`PfxBackend`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from asn1crypto import x509 as asn1_x509

from ...crypto.ozdst_keys import OzdstSigner
from ...crypto.signer import CryptographySigner


@dataclass(frozen=True)
class UnlockedKey:
    """A decrypted key entry: its alias, a signer, and the certificates that go with it."""

    alias: str
    #: A key file's signer: both kinds can tell whether the key belongs to the certificate.
    signer: CryptographySigner | OzdstSigner
    certificate: asn1_x509.Certificate
    #: Other certificates of the file in issuer order (the end entity's issuer first), end entity excluded.
    chain: tuple[asn1_x509.Certificate, ...]


class PfxBackend(Protocol):
    """Turns a PFX whose MAC already verified into key entries, for the key algorithms it knows.

    `open` returns None when the file's keys are not of its algorithms ("not mine": the next backend tries),
    a list (possibly empty) of entries otherwise, and raises KeyStoreError for everything else.
    """

    name: str

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None: ...
