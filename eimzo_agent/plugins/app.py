"""The app plugin: agent-wide settings a portal may change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eimzo_agent import i18n
from eimzo_agent.protocol.dispatcher import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.protocol.registry import Argument, PluginFunction

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent


def register(agent: Agent) -> None:
    async def change_ui_lang(call: Call) -> dict[str, Any]:
        lang = i18n.normalize_language(call.arg("lang"))
        if lang is None or call.arg("lang").strip().lower() not in (lang, i18n.LOCALE_NAMES[lang].lower()):
            raise EimzoError(Status.LANGUAGE_INVALID, "language_invalid")
        agent.language = lang
        return {"message": i18n.LOCALE_NAMES[lang]}

    agent.registry.add(
        PluginFunction(
            "app",
            "change_ui_lang",
            change_ui_lang,
            (Argument("lang", "Код языка: uz, ru (а также kaa, en)"),),
            "Изменить язык интерфейса",
        )
    )
