"""The app plugin: settings a portal may change — for its own pages only — and the agent's menu and runtime."""

from __future__ import annotations

import platform
from typing import Any

from eimzo_agent import __version__, i18n
from eimzo_agent.policy.languages import SiteLanguages
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.tray_menu import MenuOpener


class AppPlugin:
    def __init__(self, languages: SiteLanguages, menu: MenuOpener | None = None) -> None:
        self.languages = languages
        self.menu = menu or MenuOpener()

    def functions(self) -> list[PluginFunction]:
        return [
            PluginFunction(
                "app",
                "change_ui_lang",
                self.change_ui_lang,
                (Argument("lang", "Код языка: uz, ru (а также kaa, en)"),),
                "Изменить язык интерфейса",
            ),
            PluginFunction("app", "show_menu", self.show_menu, (), "Показать меню программы"),
            # No description in E-IMZO 6.4.7's apidoc; portals (RUZ) call it to show the runtime's version.
            PluginFunction("app", "get_jvm_version", self.get_jvm_version, (), "Получить версию среды выполнения"),
        ]

    async def show_menu(self, call: Call) -> dict[str, Any]:
        """E-IMZO opens its tray window. Without a tray icon nothing could be shown: say so rather than answer a
        success the page would take for a menu on screen."""
        show = self.menu.show
        if show is None:
            raise EimzoError(Status.OTHER, "menu_unavailable")
        show()  # starts the pop-up in its own thread: the reply does not wait for the person
        return {}

    async def get_jvm_version(self, call: Call) -> dict[str, Any]:
        """There is no JVM: name the runtime there is, so a page that shows this line shows the truth."""
        return {"message": f"Python {platform.python_version()} (eimzo-agent {__version__}, no JVM)"}

    async def change_ui_lang(self, call: Call) -> dict[str, Any]:
        """E-IMZO switches its whole interface; we switch the replies and dialogs of the calling site only, so one
        portal cannot change the language another portal's users read."""
        lang = i18n.normalize_language(call.arg("lang"))
        if lang is None or call.arg("lang").strip().lower() not in (lang, i18n.LOCALE_NAMES[lang].lower()):
            raise EimzoError(Status.LANGUAGE_INVALID, "language_invalid")
        self.languages.choose(call.caller, lang)
        return {"message": i18n.LOCALE_NAMES[lang]}
