"""The dialog speaks the page's language when the page asked for one (`app.change_ui_lang`), else the person's
choice from the tray, which is kept across restarts (and wins over the settings file's language).

Real parts: the tray's own menu model makes the choice (the action its Language → Русский item runs), then a real
agent process on a virtual screen shows real Tk dialogs, read back with xdotool.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, mint, start_agent
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent import i18n
from eimzo_agent.agent import build_agent
from eimzo_agent.config import AgentConfig, user_data_path
from eimzo_agent.policy.languages import LANGUAGE_FILE
from eimzo_agent.ui.prompter import NoPrompter
from eimzo_agent.ui.tray_menu import TrayModel

DIALOG = "^eimzo-agent"
PAGE_A = "http://localhost:8080"  # asks for Uzbek
PAGE_B = "http://127.0.0.1:8080"  # asks for nothing
#: The settings file says English: Russian can only come from the tray's kept choice.
CONFIG = TEST_CONFIG + '[ui]\nlanguage = "en"\n'


@pytest.fixture
def desktop() -> Iterator[XScreen]:
    require_gui_tools("xwininfo")
    with xvfb() as screen:
        yield screen


def choose_in_tray(language_name: str) -> None:
    """Run the tray menu's Language → <name> item, on an agent built as `serve` builds it."""
    agent = build_agent(AgentConfig(scan_system_locations=False, language="en"), prompter=NoPrompter())
    model = TrayModel(agent, 64646, on_quit=lambda: None)
    [languages] = [e for e in model.entries() if e.children and e.text == model.t("language")]
    [item] = [e for e in languages.children or () if e.text == language_name]
    assert item.action is not None
    item.action()
    assert agent.language == "ru"


def dialog_title(screen: XScreen, pool: ThreadPoolExecutor, agent: AgentProcess, key: Path, origin: str) -> str:
    """Load `key` for `origin`, ask verify_password (always shows the dialog), read its title, press Escape."""
    entry = next(c for c in agent.call("list_all_certificates", plugin="pfx", origin=origin)["certificates"]
                 if c["name"] == key.stem)
    loaded = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"], plugin="pfx",
                        origin=origin)
    assert loaded["success"] is True, loaded
    reply = pool.submit(agent.call, "verify_password", loaded["keyId"], plugin="pfx", origin=origin)
    window = screen.wait_window(DIALOG)
    title = screen.window_name(window)
    screen.key("Escape")
    screen.wait_gone(window, DIALOG)
    assert reply.result(timeout=30)["status"] == -5000
    return title


def test_page_language_else_tray_choice_kept_across_restarts(desktop: XScreen, tmp_path: Path) -> None:
    key = mint(tmp_path / "ca", tmp_path / "flash" / "DSKEYS", "p256", "--cn", "ALIYEV VALI")
    choose_in_tray("Русский")
    kept = user_data_path() / LANGUAGE_FILE
    assert json.loads(kept.read_text())["language"] == "ru"
    uz_title, ru_title = (i18n.text(lang, "prompt", "title") for lang in ("uz", "ru"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        agent = start_agent(tmp_path / "agent", "--key-root", str(tmp_path / "flash"), config=CONFIG,
                            env=desktop.env(dict(os.environ)))
        try:
            assert agent.call("change_ui_lang", "uz", plugin="app", origin=PAGE_A)["success"] is True
            assert dialog_title(desktop, pool, agent, key, PAGE_A) == uz_title
            assert dialog_title(desktop, pool, agent, key, PAGE_B) == ru_title
            # Replies follow the same rule as the dialogs.
            assert agent.call("nonexistent", plugin="pfx", origin=PAGE_B)["reason"] == i18n.text(
                "ru", "reasons", "function_unknown", function="pfx.nonexistent")
        finally:
            agent.stop()
        # Restarted: the tray's choice still holds; the page's own choice was for that run only.
        agent = start_agent(tmp_path / "agent", "--key-root", str(tmp_path / "flash"), config=CONFIG,
                            env=desktop.env(dict(os.environ)))
        try:
            assert dialog_title(desktop, pool, agent, key, PAGE_B) == ru_title
            assert dialog_title(desktop, pool, agent, key, PAGE_A) == ru_title
        finally:
            agent.stop()


def test_a_damaged_language_file_falls_back_to_the_settings(tmp_path: Path) -> None:
    kept = user_data_path() / LANGUAGE_FILE
    kept.parent.mkdir(parents=True, exist_ok=True)
    for damaged in ('{"language": "de"}', "not json", '["ru"]'):
        kept.write_text(damaged)
        agent = build_agent(AgentConfig(scan_system_locations=False, language="uz"), prompter=NoPrompter())
        assert agent.language == "uz"
