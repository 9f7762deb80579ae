"""What the password dialog shows about the key and the document, built from the key file and the signed data.

Everything here is derived from bytes the agent holds (the key file's alias and certificates, the document it
is about to sign), never from a description the page supplies, so a site cannot make the dialog lie.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
import unicodedata
from typing import Literal

from asn1crypto import core

from eimzo_agent import login_challenge
from eimzo_agent.crypto import gost94
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.errors import KeyStoreError
from eimzo_agent.keys.pkcs12 import iter_safe_bags, parse_pfx
from eimzo_agent.keys.pkcs12.structure import is_key_bag
from eimzo_agent.ui.details import DocumentPreview, KeyValidity, OwnerDetails

log = logging.getLogger(__name__)

KeyFamily = Literal["ozdst", "other"]

#: Uzbekistan's national crypto OID arc: O'zDSt 1092:2009 and OZMST key algorithms live under it.
OZDST_OID_ARC = "1.2.860.3.15."
#: How much of a text document the dialog shows; the rest is counted, not shown.
PREVIEW_CHARS = 1500
#: When the key's algorithm cannot be read before the password (encrypted certificate bags: every E-IMZO key
#: file), both fingerprints are shown, so the one the key really uses is always there. Only pure-Python GOST
#: hashing (~1 MB/s, no C core on this machine) limits the O'zDSt one to documents of up to this size.
UNKNOWN_FAMILY_OZDST_LIMIT = None if gost94.ACCELERATED else 1024 * 1024
#: An encrypted key bag at least this long holds an RSA key: every EC or O'zDSt PKCS#8 encoding is far shorter,
#: the smallest RSA one (1024 bits) far longer (the same bound `eimzo-agent keys` uses).
EC_KEY_MAX_SIZE = 400

#: Bidi overrides and isolates can make "pay 100" read as "001 yap": shown as visible markers instead.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_CHALLENGE = re.compile(r"[A-Za-z0-9+/=_.:\-]{8,256}")


def owner_details(alias: str, now: datetime.datetime | None = None) -> OwnerDetails:
    """The owner as the key file's alias states it (readable without the password, as E-IMZO does)."""
    owner = owner_from_alias(alias)
    now = now or datetime.datetime.now()
    validity: KeyValidity = "unknown"
    if owner.valid_to and owner.valid_to < now:
        validity = "expired"
    elif owner.valid_from and owner.valid_from > now:
        validity = "not_yet_valid"
    elif owner.valid_from or owner.valid_to:
        validity = "valid"
    # Aliases are lower-cased by E-IMZO's Java keystore; names are conventionally shown in capitals.
    name = (owner.cn or "").upper() or alias or "?"
    return OwnerDetails(
        name=name,
        pinfl=owner.pinfl,
        tin=owner.tin,
        org=owner.org.upper() if owner.org and owner.org.islower() else owner.org,
        org_tin=owner.org_tin,
        title=owner.title,
        valid_from=owner.valid_from,
        valid_to=owner.valid_to,
        validity=validity,
    )


def key_family(pfx_data: bytes) -> KeyFamily | None:
    """"ozdst" or "other" when the file's unencrypted part says so; None when it can't be told.

    A certificate in the clear names the algorithm. Many writers encrypt the certificate bags too; then the
    encrypted key's size still tells an RSA key (always "other") from an elliptic-curve one, which may be O'zDSt
    or ECDSA: only that case stays None.
    """
    try:
        key_sizes = []
        for bag in iter_safe_bags(parse_pfx(pfx_data)):
            if is_key_bag(bag):
                key_sizes.append(len(bag["bag_value"].dump()))
            if bag["bag_id"].native != "cert_bag":
                continue
            cert = bag["bag_value"]["cert_value"].parsed
            oid = _key_algorithm_oid(cert["tbs_certificate"]["subject_public_key_info"].dump())
            return "ozdst" if oid.startswith(OZDST_OID_ARC) else "other"
    except (KeyStoreError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return "other" if key_sizes and min(key_sizes) >= EC_KEY_MAX_SIZE else None


def _key_algorithm_oid(spki_der: bytes) -> str:
    """The SubjectPublicKeyInfo's algorithm OID, read generically: asn1crypto's key classes raise KeyError on
    the national OIDs as soon as a field is touched."""
    spki = core.Sequence.load(spki_der)
    algorithm = core.Sequence.load(spki[0].dump())
    return core.ObjectIdentifier.load(algorithm[0].dump()).dotted


#: Longer than any login code (a GUID, 32-64 hex digits, a Base64 nonce).
_MAX_CHALLENGE_BYTES = 512


def looks_like_login_challenge(content: bytes) -> bool:
    """Login pages (E-IMZO ID, OneID-style) sign a short one-time code: a GUID, hex or Base64 string.

    Only the label in the dialog depends on this guess; the code itself is shown like any other text.
    """
    if len(content) > _MAX_CHALLENGE_BYTES:  # also keeps a 10 MB text document off this check (event loop)
        return False
    if login_challenge.parse_challenge(content) is not None:
        return True  # our portal's origin-bound challenge (its origin was checked against the page's already)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        return False
    return bool(_CHALLENGE.fullmatch(text)) and any(ch.isdigit() for ch in text)


def document_preview(content: bytes, family: KeyFamily | None) -> DocumentPreview:
    """Text excerpt for text, size and fingerprint for binary; the fingerprint uses the key's own hash."""
    fingerprints: list[tuple[str, str]] = []
    limit = UNKNOWN_FAMILY_OZDST_LIMIT
    if family == "ozdst" or (family is None and (limit is None or len(content) <= limit)):
        fingerprints.append(("O'zDSt 1106", gost94_digest(content).hex()))
    if family != "ozdst":
        fingerprints.append(("SHA-256", hashlib.sha256(content).hexdigest()))
    if not content:
        return DocumentPreview("empty", 0, fingerprints=tuple(fingerprints))
    text = _as_text(content)
    if text is None:
        return DocumentPreview("binary", len(content), fingerprints=tuple(fingerprints))
    shown = text[:PREVIEW_CHARS]
    return DocumentPreview("text", len(content), visible_text(shown), len(text) - len(shown), tuple(fingerprints))


def _as_text(content: bytes) -> str | None:
    """The content as text when it is UTF-8 with (almost) no control characters; else None (binary)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff")
    sample = text[:8192]
    odd = sum(1 for ch in sample if ch not in "\n\r\t" and unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn"))
    return text if odd <= len(sample) // 100 else None


def visible_text(text: str) -> str:
    """Text safe to put in a label: line ends kept, other controls as U+FFFD, bidi controls as visible codes."""
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch in _BIDI_CONTROLS:
            out.append(f"<U+{ord(ch):04X}>")
        elif ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn"):
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)
