"""Text catalogues: one TOML file per language, editable by translators without touching code.

Russian is E-IMZO's default and our fallback for every missing string, so a half-translated catalogue never
shows a blank or a key name to a person.
"""

from __future__ import annotations

import locale
import os
import sys
import tomllib
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES: tuple[str, ...] = ("ru", "uz", "kaa", "en")
DEFAULT_LANGUAGE = "ru"

#: What E-IMZO's app.change_ui_lang answers for each language (Java locale names).
LOCALE_NAMES = {"ru": "ru_RU", "uz": "uz_UZ", "kaa": "kaa_UZ", "en": "en_US"}


def normalize_language(code: str | None) -> str | None:
    """Map "uz", "uz_UZ", "uz-Latn", "ru-RU", "kaa", "en_US.UTF-8" … to one of LANGUAGES, else None."""
    if not code:
        return None
    base = code.strip().replace("-", "_").split(".")[0].split("@")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


def language_from_environment() -> str | None:
    """The OS user's language from LC_ALL / LC_MESSAGES / LANG / LANGUAGE, when it is one we have.

    Only the environment is read: Python's locale module maps the neutral "C.UTF-8" to English, which would
    switch a server's replies away from E-IMZO's Russian default for no reason.
    """
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var)
        if value:
            for part in value.split(":"):
                lang = normalize_language(part)
                if lang:
                    return lang
    if sys.platform == "win32":
        try:
            return normalize_language(locale.getlocale()[0])
        except ValueError:
            return None
    return None


@cache
def _load(lang: str) -> dict[str, dict[str, str]]:
    text = resources.files(__package__).joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return {section: dict(values) for section, values in data.items() if isinstance(values, dict)}


def text(lang: str | None, section: str, key: str, /, **params: Any) -> str:
    """The `section.key` string in `lang` (falling back to Russian), with `{name}` placeholders filled."""
    lang = normalize_language(lang) or DEFAULT_LANGUAGE
    template = _load(lang).get(section, {}).get(key)
    if template is None:
        template = _load(DEFAULT_LANGUAGE).get(section, {}).get(key)
    if template is None:
        raise KeyError(f"no text {section}.{key}")
    try:
        return template.format(**params) if params else template
    except (KeyError, IndexError, ValueError):
        # A translator's typo in a placeholder must not turn into an agent crash.
        return template


def catalogue(lang: str) -> dict[str, dict[str, str]]:
    """The whole catalogue of one language (for tests that check every language has every string)."""
    return _load(lang)
