"""The tray icon's menu with pystray's dummy backend (no display needed), and a tray that must never hurt.

The dummy backend is chosen through PYSTRAY_BACKEND before pystray is first imported in this process; the
agent subprocesses started below get their own environment.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agent_harness import mint

from eimzo_agent.agent import Agent, build_agent
from eimzo_agent.caller import Caller
from eimzo_agent.config import AgentConfig
from eimzo_agent.policy.approved_store import ApprovedDomainStore
from eimzo_agent.policy.consent import CONSENT_FILE, DENIED_FILE, SiteConsent
from eimzo_agent.policy.journal import JOURNAL_FILE, Journal
from eimzo_agent.protocol.calls import CallContext
from eimzo_agent.protocol.errors import EimzoError
from eimzo_agent.ui.prompt_queue import SerialPrompter
from eimzo_agent.ui.prompter import NoPrompter, PromptRequest
from eimzo_agent.ui.tray_menu import TrayModel


class AcceptAll:
    def verify(self, domain: str, key: str) -> bool | None:
        return True


@pytest.fixture(scope="module")
def pystray() -> Iterator[ModuleType]:
    previous = os.environ.get("PYSTRAY_BACKEND")
    os.environ["PYSTRAY_BACKEND"] = "dummy"
    try:
        import pystray

        assert pystray.Icon.__module__ == "pystray._base", "pystray was imported with a real backend first"
        yield pystray
    finally:
        if previous is None:
            os.environ.pop("PYSTRAY_BACKEND", None)
        else:
            os.environ["PYSTRAY_BACKEND"] = previous


@pytest.fixture(scope="module")
def key_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tray-keys")
    root = tmp / "flash"
    mint(tmp / "ca", root / "DSKEYS", "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    mint(tmp / "ca", root / "DSKEYS", "p256", "--cn", "OLD KEY", "--valid-from", "2020-01-01",
         "--valid-to", "2021-01-01")
    return root


@pytest.fixture
def agent(key_root: Path) -> Agent:
    config = AgentConfig(scan_system_locations=False, key_roots=[key_root], language="en")
    agent = build_agent(config, prompter=NoPrompter(), verifiers=[AcceptAll()])
    agent.passwords._timers = False  # no timer threads in unit tests
    return agent


class Harness:
    def __init__(self, agent: Agent, pystray: ModuleType) -> None:
        from eimzo_agent.ui.tray import Tray

        self.opened: list[str] = []
        self.quit = 0
        self.about: list[tuple[str, str]] = []
        self.model = TrayModel(agent, 64646, self._quit, opener=self.opened.append,
                               show_about=lambda title, text: self.about.append((title, text)))
        self.tray = Tray(self.model, pystray)

    def _quit(self) -> None:
        self.quit += 1

    def items(self, *path: str) -> list[Any]:
        """Visible items of the menu, or of the submenu reached by the item texts in `path`."""
        menu = self.tray.icon.menu
        for text in path:
            menu = self.item(text, menu).submenu
        return list(menu)

    def item(self, text: str, menu: Any = None) -> Any:
        for item in menu if menu is not None else self.tray.icon.menu:
            if item.text == text:
                return item
        raise AssertionError(f"no menu item {text!r}")

    def click(self, *path: str) -> None:
        *parents, text = path
        menu = self.tray.icon.menu
        for parent in parents:
            menu = self.item(parent, menu).submenu
        item = self.item(text, menu)
        assert item.enabled, f"{text!r} is disabled"
        item(self.tray.icon)


@pytest.fixture
def harness(agent: Agent, pystray: ModuleType) -> Harness:
    return Harness(agent, pystray)


def test_menu_layout_in_english(harness: Harness) -> None:
    harness.model.refresh_keys()
    texts = [item.text for item in harness.items()]
    assert texts == ["Status page", "- - - -", "Keys found", "Allowed sites", "Remembered passwords: 0",
                     "Forget remembered passwords", "- - - -", "Language", "About", "Quit"]
    assert harness.item("Status page").default
    assert sorted(item.text for item in harness.items("Keys found")) == ["ALIYEV VALI", "OLD KEY (expired)"]
    assert [item.text for item in harness.items("Allowed sites")] == ["No sites allowed yet"]
    assert not harness.item("Forget remembered passwords").enabled  # nothing to forget yet


def test_status_page_about_and_quit(harness: Harness) -> None:
    harness.click("Status page")
    assert harness.opened == ["http://127.0.0.1:64646/"]
    harness.click("About")
    assert harness.about and "eimzo-agent" in harness.about[0][1] and "Apache-2.0" in harness.about[0][1]
    harness.click("Quit")
    assert harness.quit == 1


def test_forget_remembered_passwords(harness: Harness, agent: Agent) -> None:
    agent.passwords.remember("https://a.example.uz", "key-1", "Secret-Passw0rd", 900)
    agent.passwords.remember("https://b.example.uz", "key-1", "Secret-Passw0rd", 3600)
    assert harness.item("Remembered passwords: 2")
    harness.click("Forget remembered passwords")
    assert len(agent.passwords) == 0
    assert agent.passwords.recall("https://a.example.uz", "key-1") is None
    assert harness.item("Remembered passwords: 0")


def test_revoke_an_allowed_site(harness: Harness, agent: Agent) -> None:
    for host in ("portal.example.uz", "bank.example.uz"):
        assert agent.gate.install_keys([(host, "key")], Caller.from_origin(f"https://{host}")) == []
    assert [i.text for i in harness.items("Allowed sites")] == ["Revoke access: https://bank.example.uz",
                                                                  "Revoke access: https://portal.example.uz"]
    harness.click("Allowed sites", "Revoke access: https://portal.example.uz")
    assert not agent.gate.is_allowed(Caller.from_origin("https://portal.example.uz"))
    assert agent.gate.is_allowed(Caller.from_origin("https://bank.example.uz"))
    assert [i.text for i in harness.items("Allowed sites")] == ["Revoke access: https://bank.example.uz"]


class Always:
    """The person at the keyboard, answering the consent question "always"."""

    async def ask(self, request: PromptRequest) -> str | None:
        return "always"


def test_sites_the_person_allowed_are_listed_and_revocable(harness: Harness, agent: Agent, tmp_path: Path) -> None:
    store = ApprovedDomainStore(tmp_path / CONSENT_FILE)
    agent.consent = SiteConsent(store, Always())
    asyncio.run(agent.consent.request(CallContext.from_origin("https://shop.example.uz"), "en"))
    agent.gate.install_keys([("portal.example.uz", "key")], Caller.from_origin("https://portal.example.uz"))
    assert [i.text for i in harness.items("Allowed sites")] == ["Revoke access: https://portal.example.uz",
                                                                  "Revoke access: https://shop.example.uz"]
    harness.click("Allowed sites", "Revoke access: https://shop.example.uz")
    assert agent.consent.sites() == [] and store.load() == set()  # revoked for good, not only in memory
    assert [i.text for i in harness.items("Allowed sites")] == ["Revoke access: https://portal.example.uz"]


def test_language_switch_changes_menu_dialogs_and_replies(harness: Harness, agent: Agent) -> None:
    languages = harness.items("Language")
    assert [i.text for i in languages] == ["Русский", "O'zbekcha", "Qaraqalpaqsha", "English"]
    assert [i.checked for i in languages] == [False, False, False, True]
    harness.click("Language", "O'zbekcha")
    assert agent.language == "uz"
    assert harness.items()[0].text == "Holat sahifasi"
    assert [i.checked for i in harness.items("Til")] == [False, True, False, False]
    harness.click("Til", "Qaraqalpaqsha")
    assert [i.text for i in harness.items()][-3:] == ["Til", "Baǵdarlama haqqında", "Shıǵıw"]


def test_failing_action_does_not_break_the_tray(harness: Harness) -> None:
    def broken(url: str) -> None:
        raise OSError("no browser")

    harness.model.opener = broken
    harness.click("Status page")  # logged, not raised into the backend's loop


def test_dummy_backend_tray_starts_stops_and_the_process_exits(key_root: Path) -> None:
    """A backend that fails to run is logged, and neither the icon's threads nor stop() keep the process alive."""
    code = (
        "import os; os.environ['PYSTRAY_BACKEND'] = 'dummy'\n"
        "from eimzo_agent.agent import build_agent\n"
        "from eimzo_agent.config import AgentConfig\n"
        "from eimzo_agent.ui.prompter import NoPrompter\n"
        "from eimzo_agent.ui.tray import start_tray\n"
        "agent = build_agent(AgentConfig(scan_system_locations=False), prompter=NoPrompter())\n"
        "tray = start_tray(agent, 1, lambda: None)\n"
        "assert tray is not None\n"
        "import time; time.sleep(0.5)\n"
        "tray.stop()\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_agent_without_display_runs_without_tray(tmp_path: Path) -> None:
    """`import pystray` without DISPLAY raises Xlib's DisplayNameError: the agent must start all the same."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND")}
    config = tmp_path / "config.toml"
    config.write_text("[keys]\nscan_system_locations = false\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "ready: ws://127.0.0.1:" in line
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert process.returncode in (0, -15), stderr
    assert "no tray icon" in stderr
    assert "Traceback" not in stderr


class Deny:
    """The person at the keyboard, answering the consent question "deny"."""

    async def ask(self, request: PromptRequest) -> str | None:
        return "deny"


def test_sites_the_person_refused_are_listed_and_can_ask_again(harness: Harness, agent: Agent,
                                                               tmp_path: Path) -> None:
    denied = ApprovedDomainStore(tmp_path / DENIED_FILE)
    agent.consent = SiteConsent(ApprovedDomainStore(tmp_path / CONSENT_FILE), Deny(), denied=denied,
                                journal=Journal(tmp_path / JOURNAL_FILE))
    with pytest.raises(EimzoError) as refused:
        asyncio.run(agent.consent.request(CallContext.from_origin("https://shop.example.uz"), "en"))
    assert refused.value.reason_key == "consent_denied"
    assert [i.text for i in harness.items("Refused sites")] == ["Let ask again: https://shop.example.uz"]
    harness.click("Refused sites", "Let ask again: https://shop.example.uz")
    assert agent.consent.denied() == [] and denied.load() == set()  # forgotten for good, not only in memory
    assert "Refused sites" not in [i.text for i in harness.items()]
    results = [(e.site, e.operation, e.result) for e in Journal(tmp_path / JOURNAL_FILE).entries()]
    assert results == [("https://shop.example.uz", "consent", "denied"),
                       ("https://shop.example.uz", "consent", "denial_forgotten")]


class Cancel:
    async def ask(self, request: PromptRequest) -> str | None:
        return None


def test_a_site_cooling_down_after_repeated_cancels_is_shown(key_root: Path, pystray: ModuleType) -> None:
    config = AgentConfig(scan_system_locations=False, key_roots=[key_root], language="en")
    agent = build_agent(config, prompter=SerialPrompter(Cancel()), verifiers=[AcceptAll()])
    agent.passwords._timers = False
    harness = Harness(agent, pystray)
    assert harness.model.cooldowns() == []

    async def cancel_three_times() -> None:
        for _ in range(3):
            with pytest.raises(EimzoError):
                await agent.consent.request(CallContext.from_origin("https://shop.example.uz"), "en")

    asyncio.run(cancel_three_times())
    [line] = [i.text for i in harness.items() if i.text.startswith("Paused")]
    # The registrable domain: every sub-domain of the site is paused with it (prompt_queue.py).
    assert line.startswith("Paused after repeated cancels: example.uz, ") and line.endswith(" s left")
    assert 55 <= int(line.split(", ")[1].split(" ")[0]) <= 60
    assert not harness.item(line).enabled  # information, not an action
    assert harness.model.tooltip().splitlines() == ["eimzo-agent: the signing agent is running", line]
