"""E-IMZO's rules for a new key password: enforced by the pfx plugin for every prompter (dialog or askpass), and
shown live by the change-password dialog.

E-IMZO requires at least 10 characters, at least 2 lower-case and 2 upper-case letters, and digits. We add one
rule of our own: Latin letters, digits and ASCII symbols only. A Cyrillic letter typed because the keyboard was
on the wrong layout is the classic way to lock oneself out, and E-IMZO (BouncyCastle) and other PKCS#12 readers
encode non-ASCII passwords differently, so such a key might not open elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

MIN_LENGTH = 10

#: (catalogue key in [prompt], check) in the order the dialog lists them.
RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("rule_length", lambda p: len(p) >= MIN_LENGTH),
    ("rule_lower", lambda p: sum(1 for c in p if "a" <= c <= "z") >= 2),
    ("rule_upper", lambda p: sum(1 for c in p if "A" <= c <= "Z") >= 2),
    ("rule_digit", lambda p: any("0" <= c <= "9" for c in p)),
    ("rule_ascii", lambda p: all(" " <= c <= "~" for c in p)),
)


def check(password: str) -> list[tuple[str, bool]]:
    """Each rule's catalogue key and whether `password` meets it."""
    return [(key, rule(password)) for key, rule in RULES]


def acceptable(password: str) -> bool:
    return all(ok for _, ok in check(password))


def unmet(password: str) -> list[str]:
    """The catalogue keys of the rules `password` breaks (empty when it is acceptable)."""
    return [key for key, ok in check(password) if not ok]
