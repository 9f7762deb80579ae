"""Walking a PFX: the outer structure, the SafeContents (decrypted on demand) and the attributes of each bag.

`cryptography` says "Invalid password or PKCS12 data" for every failure, so the structure is parsed here with
asn1crypto, and every malformed part becomes a KeyStoreError of the right kind.
"""

from __future__ import annotations

from collections.abc import Iterator

from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509

from ..errors import KeyErrorKind, KeyStoreError
from .asn1 import ASN1_ERRORS
from .pbe import decrypt_pbe

MAX_NESTING = 8  # nested SafeContents bags
KEY_BAG_IDS = frozenset({"key_bag", "pkcs8_shrouded_key_bag"})


def parse_pfx(data: bytes) -> asn1_pkcs12.Pfx:
    """Parse a PFX and walk its unencrypted part, so that later code meets no lazy-parsing surprises."""
    try:
        pfx = asn1_pkcs12.Pfx.load(bytes(data), strict=True)
        if pfx["version"].native != "v3":
            raise ValueError(f"PFX version {pfx['version'].native} (expected 3)")
        content_type = pfx["auth_safe"]["content_type"].native
        if content_type != "data":
            detail = f"PFX integrity mode {content_type} (only password mode is supported)"
            raise KeyStoreError(KeyErrorKind.UNSUPPORTED, detail)
        for bag in iter_safe_bags(pfx):
            bag_attributes(bag)
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"not a well-formed PKCS#12 file: {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - guarded by MAX_NESTING
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "PKCS#12 structure nested too deeply") from exc
    return pfx


def auth_safe_bytes(pfx: asn1_pkcs12.Pfx) -> bytes:
    """The octets the MAC covers: the content of the authSafe `data` ContentInfo."""
    content = pfx["auth_safe"]["content"].native
    if not isinstance(content, bytes):
        raise ValueError("authSafe holds no data")
    return content


def has_mac(pfx: asn1_pkcs12.Pfx) -> bool:
    return not isinstance(pfx["mac_data"], core.Void)


def iter_safe_bags(pfx: asn1_pkcs12.Pfx, password: str | None = None) -> Iterator[asn1_pkcs12.SafeBag]:
    """Every bag of the file: unencrypted SafeContents always, encrypted ones only when `password` is given.

    Decrypting needs the password: a wrong one raises WRONG_PASSWORD (no MAC) or DAMAGED_FILE (the MAC
    accepted it, so the container itself is bad); an unknown cipher raises UNSUPPORTED.
    """
    for info in asn1_pkcs12.AuthenticatedSafe.load(auth_safe_bytes(pfx)):
        kind = info["content_type"].native
        if kind == "data":
            yield from _flatten(asn1_pkcs12.SafeContents.load(info["content"].native), 0)
        elif kind == "encrypted_data" and password is not None:
            try:
                yield from _flatten(asn1_pkcs12.SafeContents.load(decrypt_container(pfx, info, password)), 0)
            except ASN1_ERRORS as exc:
                detail = f"malformed encrypted container: {exc}"
                raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail) from exc


def _flatten(contents: asn1_pkcs12.SafeContents, depth: int) -> Iterator[asn1_pkcs12.SafeBag]:
    if depth > MAX_NESTING:
        raise ValueError("SafeContents nested too deeply")
    for bag in contents:
        if bag["bag_id"].native == "safe_contents":
            yield from _flatten(bag["bag_value"], depth + 1)
        else:
            yield bag


def decrypt_container(pfx: asn1_pkcs12.Pfx, info: core.Asn1Value, password: str) -> bytes:
    """The SafeContents DER inside an `encrypted_data` ContentInfo of the authSafe."""
    content_info = info["content"]["encrypted_content_info"]
    ciphertext = content_info["encrypted_content"].native or b""
    plain = decrypt_pbe(content_info["content_encryption_algorithm"], ciphertext, password,
                        accept=_is_safe_contents)
    if plain is None:
        raise decryption_failed(pfx, "an encrypted certificate container")
    return plain


def _is_safe_contents(plain: bytes) -> bool:
    try:
        contents = asn1_pkcs12.SafeContents.load(plain, strict=True)
        return all(isinstance(bag["bag_id"].native, str) for bag in contents)
    except ASN1_ERRORS:
        return False


def decryption_failed(pfx: asn1_pkcs12.Pfx, what: str) -> KeyStoreError:
    """The error for a part that does not decrypt: damage if the MAC vouched for the password."""
    if has_mac(pfx):
        return KeyStoreError(
            KeyErrorKind.DAMAGED_FILE, f"{what} does not decrypt although the password passed the MAC check"
        )
    return KeyStoreError(
        KeyErrorKind.WRONG_PASSWORD, f"{what} does not decrypt with this password (the file has no MAC)"
    )


def bag_attributes(bag: asn1_pkcs12.SafeBag) -> tuple[str | None, bytes | None]:
    """(friendlyName, localKeyId) of a bag, None where absent."""
    name: str | None = None
    key_id: bytes | None = None
    attributes = bag["bag_attributes"]
    if isinstance(attributes, core.Void):
        return None, None
    for attribute in attributes:
        kind, values = attribute["type"].native, attribute["values"]
        if not len(values):
            continue
        if kind == "friendly_name" and name is None:
            name = _first_text(values)
        elif kind == "local_key_id" and key_id is None:
            key_id = values[0].native
    return name, key_id


def _first_text(values: core.SetOf) -> str | None:
    """The first value of a friendlyName; some writers use UTF8String where RFC 7292 says BMPString."""
    try:
        return values[0].native
    except ASN1_ERRORS:
        native = core.Asn1Value.load(values.contents).native
        return native if isinstance(native, str) else None


def is_key_bag(bag: asn1_pkcs12.SafeBag) -> bool:
    return bag["bag_id"].native in KEY_BAG_IDS


def bag_certificate(bag: asn1_pkcs12.SafeBag) -> asn1_x509.Certificate | None:
    """The X.509 certificate of a certBag, None for other bags or unreadable certificates."""
    if bag["bag_id"].native != "cert_bag":
        return None
    try:
        value = bag["bag_value"]
        if value["cert_id"].native != "x509":
            return None
        cert = value["cert_value"].parsed
        cert["tbs_certificate"]["subject"].native  # noqa: B018 - force the lazy parse here, not later
        return cert
    except ASN1_ERRORS:
        return None
