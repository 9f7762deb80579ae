"""Fills a .desktop template's @LOCALIZED@ line with GenericName and Comment in every language of the agent.

The texts come from the agent's own catalogues (eimzo_agent/i18n/<lang>.toml, section [desktop]), so translators
keep one place; English is the untranslated default, as the Desktop Entry specification wants.
usage: python3 desktop_entry.py I18N_DIR TEMPLATE OUTPUT
"""

import sys
import tomllib
from pathlib import Path

LANGUAGES = ("en", "ru", "uz", "kaa")
KEYS = {"GenericName": "generic_name", "Comment": "comment"}


def localized_lines(i18n: Path) -> list[str]:
    lines = []
    for key, name in KEYS.items():
        for lang in LANGUAGES:
            text = tomllib.loads((i18n / f"{lang}.toml").read_text(encoding="utf-8"))["desktop"][name]
            suffix = "" if lang == "en" else f"[{lang}]"
            lines.append(f"{key}{suffix}={text}")
    return lines


def main() -> None:
    i18n, template, output = map(Path, sys.argv[1:4])
    text = template.read_text(encoding="utf-8").replace("@LOCALIZED@", "\n".join(localized_lines(i18n)))
    output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
