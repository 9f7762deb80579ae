"""The app plugin: settings a portal may change — for its own pages only."""

from __future__ import annotations

from typing import Any

from eimzo_agent import i18n
from eimzo_agent.policy.languages import SiteLanguages
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status


class AppPlugin:
    def __init__(self, languages: SiteLanguages) -> None:
        self.languages = languages

    def functions(self) -> list[PluginFunction]:
        return [
            PluginFunction(
                "app",
                "change_ui_lang",
                self.change_ui_lang,
                (Argument("lang", "Код языка: uz, ru (а также kaa, en)"),),
                "Изменить язык интерфейса",
            )
        ]

    async def change_ui_lang(self, call: Call) -> dict[str, Any]:
        """E-IMZO switches its whole interface; we switch the replies and dialogs of the calling site only, so one
        portal cannot change the language another portal's users read."""
        lang = i18n.normalize_language(call.arg("lang"))
        if lang is None or call.arg("lang").strip().lower() not in (lang, i18n.LOCALE_NAMES[lang].lower()):
            raise EimzoError(Status.LANGUAGE_INVALID, "language_invalid")
        self.languages.choose(call.caller, lang)
        return {"message": i18n.LOCALE_NAMES[lang]}
