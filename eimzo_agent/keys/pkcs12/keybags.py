"""Key bags: decrypting them to PKCS#8 and reading the key's algorithm, so each backend knows what is its own."""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12

from ..errors import KeyErrorKind, KeyStoreError
from .asn1 import ASN1_ERRORS
from .pbe import decrypt_pbe
from .structure import bag_attributes, decryption_failed, is_key_bag, iter_safe_bags


@dataclass(frozen=True)
class KeyAlgorithm:
    """The algorithm of a PKCS#8 key: its OID and, when the parameters are a bare OID, that OID (EC curve)."""

    oid: str
    parameter: str | None = None

    def describe(self) -> str:
        return f"{self.oid} ({self.parameter})" if self.parameter else self.oid


def pkcs8_algorithm(der: bytes) -> KeyAlgorithm:
    """Read a PKCS#8 key's algorithm generically (national OIDs break asn1crypto's keys module)."""
    info = core.Sequence.load(der, strict=True)
    if len(info) < 3 or not isinstance(info[0], core.Integer) or info[0].native not in (0, 1):
        raise ValueError("not a PKCS#8 PrivateKeyInfo")
    identifier = info[1]
    if not isinstance(identifier, core.Sequence) or not isinstance(identifier[0], core.ObjectIdentifier):
        raise ValueError("PKCS#8 algorithm identifier is malformed")
    parameter = identifier[1] if len(identifier) > 1 else None
    return KeyAlgorithm(
        identifier[0].dotted, parameter.dotted if isinstance(parameter, core.ObjectIdentifier) else None
    )


def is_pkcs8(plain: bytes) -> bool:
    try:
        pkcs8_algorithm(plain)
    except ASN1_ERRORS:
        return False
    return True


def decrypt_key_bag(pfx: asn1_pkcs12.Pfx, bag: asn1_pkcs12.SafeBag, password: str) -> bytes:
    """The PKCS#8 DER of a keyBag or pkcs8ShroudedKeyBag; precise KeyStoreError when it cannot be had."""
    try:
        value = bag["bag_value"]
        if bag["bag_id"].native == "key_bag":
            return value.untag().dump()
        algorithm, ciphertext = value["encryption_algorithm"], value["encrypted_data"].native
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed key bag: {exc}") from exc
    plain = decrypt_pbe(algorithm, ciphertext, password, accept=is_pkcs8)
    if plain is None:
        raise decryption_failed(pfx, "the private key")
    return plain


def key_bags(pfx: asn1_pkcs12.Pfx, password: str) -> list[asn1_pkcs12.SafeBag]:
    """The key bags: normally in unencrypted SafeContents; encrypted ones are opened only when none is there."""
    bags = [bag for bag in iter_safe_bags(pfx) if is_key_bag(bag)]
    return bags or [bag for bag in iter_safe_bags(pfx, password) if is_key_bag(bag)]


def key_algorithms(pfx: asn1_pkcs12.Pfx, password: str) -> list[KeyAlgorithm | None]:
    """The algorithm of every key bag (None where the bag's cipher is unknown to us)."""
    found: list[KeyAlgorithm | None] = []
    for bag in key_bags(pfx, password):
        try:
            found.append(pkcs8_algorithm(decrypt_key_bag(pfx, bag, password)))
        except KeyStoreError as exc:
            if exc.kind is not KeyErrorKind.UNSUPPORTED:
                raise
            found.append(None)
    return found


def key_bag_names(pfx: asn1_pkcs12.Pfx) -> list[str | None]:
    """friendlyName of each key bag in unencrypted SafeContents, None where absent."""
    return [bag_attributes(bag)[0] for bag in iter_safe_bags(pfx) if is_key_bag(bag)]
