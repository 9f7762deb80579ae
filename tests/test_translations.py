"""The ru, uz and kaa catalogues hold no English left over from en.toml.

Russian is written in Cyrillic, so any Latin word in it is suspect: it must be a brand, a standard's name or a
technical token the person types or reads as it is (ALLOWED, or a command/identifier of its own key in VERBATIM).
Uzbek and Karakalpak are written in Latin script, so there the check is against English itself: a word that is one
of en.toml's English words (and not also a word of the language, SHARED) is a leftover.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

CATALOGUES = Path(__file__).resolve().parents[1] / "eimzo_agent" / "i18n"

#: Names written as they are in every language (removed before words are looked at).
BRANDS = ("E-IMZO-v", "E-IMZO", "eimzo-agent", "Apache-2.0", "PKCS#7", "PKCS#11", "Caps Lock",
          "BadPaddingException", "LocalNetworkAccess.SkipDomains", "O'zbekcha", "Qaraqalpaqsha", "English",
          "O'zDSt", "SHA-256")
#: Abbreviations, products and technical words that stay in Latin letters.
ALLOWED = frozenset({
    "API", "PFX", "PIN", "PUK", "ID", "JSON", "CKC", "OK", "Base64", "TLS", "USB", "PID", "PINFL", "TIN", "RSA",
    "ECDSA", "GOST", "ERI", "ENQ", "CA", "https", "http", "ws", "wss", "DISPLAY", "askpass", "certutil", "Debian",
    "Ubuntu", "Windows", "macOS", "Linux", "Chromium", "Google", "Chrome", "Microsoft", "Edge", "Firefox", "login",
    "pfx", "GUID",
})
#: Identifiers a message quotes because the reader types or sends them exactly so: (section.key) → words.
VERBATIM = {
    "reasons.path_invalid": {"path"},
    "doctor.prompter_askpass_broken": {"PATH"},  # the environment variable
    "reasons.request_invalid": {"plugin", "name", "arguments"},
    "prompt.consent_askpass": {"once", "always", "deny"},
    "prompt.consent_opaque_askpass": {"once", "deny"},
    "doctor.site_agent_refused_fix": {"sites"},
    "doctor.prompter_none_fix": {"PROGRAM"},
}
#: Words that are English and also Uzbek / Karakalpak (loanwords spelt the same).
SHARED = frozenset({"agent", "portal", "port", "token", "disk", "administrator", "modul", "server", "status",
                    "argument"})
#: Commands quoted in messages, e.g. "eimzo-agent trust install", "sudo apt install libnss3-tools".
COMMAND = re.compile(r"(?:\beimzo-agent|\bsudo)(?: --?[a-z][a-z-]*| [a-z][a-z0-9-]*(?:\.[a-z_]+)?)+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’#_]*")


def _flat(lang: str) -> dict[str, str]:
    data = tomllib.loads((CATALOGUES / f"{lang}.toml").read_text(encoding="utf-8"))
    return {f"{section}.{key}": value for section, values in data.items() if isinstance(values, dict)
            for key, value in values.items() if isinstance(value, str)}


def _words(key: str, value: str) -> list[str]:
    """The words of a message left to judge: placeholders, URLs, paths, commands, brands and identifiers out."""
    text = re.sub(r"\{[^}]*\}", " ", value)
    text = re.sub(r"\S*://\S*|\S*/\S*|\S+\.\S*\w|`[^`]*`|\[[a-z_]+\]", " ", text)
    text = COMMAND.sub(" ", text)
    for brand in BRANDS:
        text = text.replace(brand, " ")
    allowed = ALLOWED | VERBATIM.get(key, set())
    # Words with digits or underscores are identifiers (libnss3, EIMZO_AGENT_ASKPASS), not language.
    return [word for word in WORD.findall(text) if word not in allowed and not re.search(r"[\d_]", word)]


ENGLISH = frozenset(word.lower() for key, value in _flat("en").items() for word in _words(key, value)
                    if len(word) >= 3) - SHARED


def english_leftovers(lang: str) -> dict[str, list[str]]:
    found = {}
    for key, value in _flat(lang).items():
        words = _words(key, value)
        suspects = words if lang == "ru" else [w for w in words if w.lower().strip("'’") in ENGLISH]
        if suspects:
            found[key] = suspects
    return found


@pytest.mark.parametrize("lang", ["ru", "uz", "kaa"])
def test_no_english_left_in_the_catalogue(lang: str) -> None:
    assert english_leftovers(lang) == {}


def test_the_check_catches_a_leftover() -> None:
    """The issue's own example: "API-key" in a Russian reason, and English words in Uzbek."""
    assert _words("reasons.apikey_invalid", "API-key для домена {domain} недействителен.") == ["key"]
    uz = [w for w in _words("x.y", "Agent {domain} uchun key invalid, process {pid}") if w.lower() in ENGLISH]
    assert uz == ["key", "invalid", "process"]
