"""Changing a file's password without changing anything else about it.

The file is not rebuilt from its key (which is how the first writer turned every AES/PBKDF2 file into
3DES/SHA-1/2048 and dropped the friendlyName's case). Each encrypted part is decrypted with the old password and
encrypted again with the new one under the same kind of scheme; everything else — the order of the parts and
bags, the friendlyName and localKeyId bytes and any other attribute, the certificates, the unencrypted parts —
is copied byte for byte. So a portal's cached alias still matches, and old readers (E-IMZO's Java 8 agent) that
opened the original open the result.

What each part becomes:

- PBES2 (PBKDF2 + AES or 3DES): the same PRF and cipher.
- pbeWithSHAAnd3-KeyTripleDES-CBC: the same.
- RC2 (40- and 128-bit) and 2-key 3DES PKCS#12 PBE, which nothing should write any more: 3-key 3DES PBE — still
  PKCS#12 PBE, so every reader of the original reads it, and stronger.
- an unencrypted keyBag: a 3-key 3DES pkcs8ShroudedKeyBag with the same attributes (the new password is meant to
  protect the key).
- every KDF: a fresh salt (reusing one would be a flaw) of the original's length, at least 8 bytes, and the
  original's iteration count, at least 2048. (`cryptography`'s PKCS#12 writer could do none of this: it offers
  two fixed schemes, one for key and certificates alike, and no salt lengths.)
- the MAC: the same hash, iterations as above, a fresh salt; a file without a MAC stays without one.
- rebuilt parts are DER; parts that did not change keep their original bytes, even BER.

A part we cannot decrypt ourselves (e.g. Camellia, which only `cryptography`'s loader reads) or a public-key
privacy container makes the change fail with UNSUPPORTED: the file is never rewritten some other way.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12

from ...crypto import der
from ..errors import KeyErrorKind, KeyStoreError
from .asn1 import ASN1_ERRORS
from .bags import data_content, encrypted_content, pfx_of, safe_contents, shrouded_key_bag
from .entries import UnlockedKey
from .keybags import decrypt_key_bag
from .listing import list_aliases
from .mac import mac_data, mac_parameters
from .opening import check_key_matches, open_entries, select_entry
from .ozdst_writer import LEGACY_SCHEME
from .pbe import OID_PBE_3DES, PbeScheme, scheme_of
from .structure import MAX_NESTING, auth_safe_bytes, decrypt_container, has_mac, parse_pfx

MIN_ITERATIONS = 2048
MIN_SALT_BYTES = 8
#: PKCS#12 PBE schemes that are re-encrypted with 3-key 3DES: RC2-128, RC2-40, 2-key 3DES.
_UPGRADED = frozenset({"1.2.840.113549.1.12.1.4", "1.2.840.113549.1.12.1.5", "1.2.840.113549.1.12.1.6"})


def change_pfx_password(data: bytes, old_password: str, new_password: str, alias: str | None = None) -> bytes:
    """The file re-encrypted under `new_password`, its scheme and attributes kept (see the module docstring).

    Every key of the file must open with `old_password` (WRONG_PASSWORD, KEY_MISMATCH, ... as `open_pfx`);
    `alias`, when given, must name one of them (ALIAS_NOT_FOUND). The result is opened with `new_password`
    before it is returned. ValueError for an empty new password.
    """
    if not new_password:
        raise ValueError("a key file needs a non-empty password")
    before = _checked_entries(data, old_password, alias)
    try:
        rewritten = _rewrite(parse_pfx(data), old_password, new_password)
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed PKCS#12 part: {exc}") from exc
    after = _checked_entries(rewritten, new_password, alias)
    if _summary(after) != _summary(before) or list_aliases(rewritten) != list_aliases(data):
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, "the re-encrypted file does not hold the same keys")
    return rewritten


def _checked_entries(data: bytes, password: str, alias: str | None) -> list[UnlockedKey]:
    entries = open_entries(data, password)
    if not entries:
        raise KeyStoreError(KeyErrorKind.ALIAS_NOT_FOUND, "the file holds no private key")
    if alias is not None:
        select_entry(entries, alias)
    for entry in entries:
        check_key_matches(entry)
    return entries


def _summary(entries: list[UnlockedKey]) -> list[tuple[str, bytes]]:
    return [(entry.alias, entry.certificate.dump()) for entry in entries]


def _rewrite(pfx: asn1_pkcs12.Pfx, old: str, new: str) -> bytes:
    parts = []
    for info in asn1_pkcs12.AuthenticatedSafe.load(auth_safe_bytes(pfx)):
        kind = info["content_type"].native
        if kind == "data":
            plain = info["content"].native
            rewritten = _rewrite_contents(pfx, plain, old, new, 0)
            parts.append(info if rewritten is plain else data_content(rewritten))
        elif kind == "encrypted_data":
            algorithm = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            scheme = successor(scheme_of(algorithm))
            plain = _rewrite_contents(pfx, decrypt_container(pfx, info, old), old, new, 0)
            parts.append(encrypted_content(plain, new, scheme))
        else:
            detail = f"re-encrypting a {kind} container (public-key privacy mode) is not supported"
            raise KeyStoreError(KeyErrorKind.UNSUPPORTED, detail)
    auth_safe = asn1_pkcs12.AuthenticatedSafe(parts).dump()
    mac = None
    if has_mac(pfx):
        name, iterations, salt_size = mac_parameters(pfx)
        mac = mac_data(auth_safe, new, name, max(iterations, MIN_ITERATIONS), max(salt_size, MIN_SALT_BYTES))
    return pfx_of(auth_safe, mac)


def successor(scheme: PbeScheme) -> PbeScheme:
    """The scheme that replaces `scheme` on re-encryption: the same, or 3-key 3DES for the weak PBEs."""
    oid = OID_PBE_3DES if scheme.oid in _UPGRADED else scheme.oid
    return PbeScheme(oid, max(scheme.iterations, MIN_ITERATIONS), max(scheme.salt_size, MIN_SALT_BYTES),
                     scheme.prf, scheme.cipher)


def _rewrite_contents(pfx: asn1_pkcs12.Pfx, plain: bytes, old: str, new: str, depth: int) -> bytes:
    """SafeContents DER with every key bag re-encrypted; `plain` itself when it holds no key bag."""
    if depth > MAX_NESTING:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "PKCS#12 structure nested too deeply")
    bags: list[asn1_pkcs12.SafeBag | bytes] = []
    changed = False
    parsed = asn1_pkcs12.SafeContents.load(plain)
    # The bags this rewrite does not change are copied as the bytes they are: asn1crypto re-encodes a value whose
    # length ends in 0x80 on dump(), which for a certificate bag means parsing the certificate, and that fails for
    # key algorithms it does not know (O'zDSt) or changes a BER encoding.
    originals = der.elements(plain)
    if originals is None or len(originals) != len(parsed):
        originals = [None] * len(parsed)
    for bag, original in zip(parsed, originals, strict=True):
        kind = bag["bag_id"].native
        if kind == "pkcs8_shrouded_key_bag":
            scheme = successor(scheme_of(bag["bag_value"]["encryption_algorithm"]))
            bag = shrouded_key_bag(decrypt_key_bag(pfx, bag, old), new, scheme, _attributes(bag))
            changed = True
        elif kind == "key_bag":
            bag = shrouded_key_bag(decrypt_key_bag(pfx, bag, old), new, LEGACY_SCHEME, _attributes(bag))
            changed = True
        elif kind == "safe_contents":
            inner = bag["bag_value"].untag().dump()
            rewritten = _rewrite_contents(pfx, inner, old, new, depth + 1)
            if rewritten is not inner:
                bag = _nested_bag(rewritten, _attributes(bag))
                changed = True
            else:
                bag = original or bag
        else:
            bag = original or bag
        bags.append(bag)
    return safe_contents(bags) if changed else plain


def _attributes(bag: asn1_pkcs12.SafeBag) -> asn1_pkcs12.Attributes | None:
    attributes = bag["bag_attributes"]
    return None if isinstance(attributes, core.Void) else attributes


def _nested_bag(contents: bytes, attributes: asn1_pkcs12.Attributes | None) -> asn1_pkcs12.SafeBag:
    bag: dict[str, object] = {"bag_id": "safe_contents", "bag_value": asn1_pkcs12.SafeContents.load(contents)}
    if attributes is not None:
        bag["bag_attributes"] = attributes
    return asn1_pkcs12.SafeBag(bag)
