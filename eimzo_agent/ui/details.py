"""What a password question shows besides the question: whose key it is and what is being signed.

Plain data, built by the plugins (which know key files and documents) and shown by every prompter: the Tk
dialog lays it out, the askpass program gets it as `EIMZO_AGENT_*` environment variables. Nothing here comes
from text the page wrote about itself: the owner is read from the key file, the document is the data that
will actually be signed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from eimzo_agent import i18n

KeyValidity = Literal["valid", "expired", "not_yet_valid", "unknown"]
DocumentKind = Literal["text", "binary", "empty"]


@dataclass(frozen=True)
class OwnerDetails:
    """The key owner as the certificate names them; dates are naive local time (as the alias states them)."""

    name: str
    pinfl: str | None = None
    tin: str | None = None
    org: str | None = None
    org_tin: str | None = None
    title: str | None = None
    valid_from: datetime.datetime | None = None
    valid_to: datetime.datetime | None = None
    validity: KeyValidity = "unknown"

    def id_line(self, lang: str) -> str:
        """"PINFL … · TIN …" in the person's language ("JShShIR … · STIR …" in Uzbek)."""
        t = lambda key, **kw: i18n.text(lang, "prompt", key, **kw)  # noqa: E731
        parts = []
        if self.pinfl:
            parts.append(t("owner_pinfl", pinfl=self.pinfl))
        if self.tin:
            parts.append(t("owner_tin", tin=self.tin))
        return " · ".join(parts)

    def org_line(self, lang: str) -> str:
        if not self.org and not self.org_tin:
            return ""
        org = self.org or ""
        if self.org_tin:
            org = f"{org} ({i18n.text(lang, 'prompt', 'owner_tin', tin=self.org_tin)})".strip()
        if self.title:
            org = f"{self.title}, {org}"
        return org

    def validity_line(self, lang: str) -> str:
        if not self.valid_from and not self.valid_to:
            return ""
        return i18n.text(lang, "prompt", "owner_valid", start=_date(self.valid_from), end=_date(self.valid_to))

    def warning(self, lang: str) -> str:
        """The expired / not-yet-valid warning, or "" for a key that is valid now."""
        if self.validity == "expired":
            return i18n.text(lang, "prompt", "key_expired", date=_date(self.valid_to))
        if self.validity == "not_yet_valid":
            return i18n.text(lang, "prompt", "key_not_yet_valid", date=_date(self.valid_from))
        return ""


@dataclass(frozen=True)
class DocumentPreview:
    """The data to be signed, as a person can judge it: a text excerpt, or size and fingerprint."""

    kind: DocumentKind
    size: int
    #: The beginning of the text with control and bidi-override characters made visible ("" for binary).
    text: str = ""
    #: Characters of the text not shown.
    more_chars: int = 0
    #: (algorithm name, lower-case hex) — O'zDSt 1106:2009 for O'zDSt keys, SHA-256 otherwise.
    fingerprints: tuple[tuple[str, str], ...] = ()

    def size_text(self, lang: str) -> str:
        return format_size(self.size, lang)

    def summary(self, lang: str) -> str:
        """One line for logs-free places like the askpass question: kind and size (no content)."""
        key = {"text": "doc_text", "binary": "doc_binary", "empty": "doc_empty"}[self.kind]
        return i18n.text(lang, "prompt", key, size=self.size_text(lang))


def format_size(size: int, lang: str) -> str:
    if size < 1024:
        return i18n.text(lang, "prompt", "size_bytes", count=size)
    if size < 1024 * 1024:
        return i18n.text(lang, "prompt", "size_kb", count=f"{size / 1024:.1f}")
    return i18n.text(lang, "prompt", "size_mb", count=f"{size / 1024 / 1024:.1f}")


def group_hex(value: str, group: int = 4) -> str:
    """"ab12cd34…" as "ab12 cd34 …": easier to compare by eye with what the site shows."""
    return " ".join(value[i : i + group] for i in range(0, len(value), group))


def _date(moment: datetime.datetime | None) -> str:
    return moment.strftime("%d.%m.%Y") if moment else "?"
