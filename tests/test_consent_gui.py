"""The site-consent dialog on a virtual screen: it takes the focus, Escape denies, the buttons answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, start_agent
from xsession import XScreen, require_gui_tools, xvfb

DIALOG = "^eimzo-agent"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XScreen, AgentProcess, ThreadPoolExecutor]]:
    require_gui_tools("xwininfo")
    tmp = tmp_path_factory.mktemp("consent-gui")
    with xvfb() as screen, ThreadPoolExecutor(max_workers=4) as pool:
        env = screen.env()
        env.update({var: str(tmp / "home" / var.lower()) for var in
                    ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")})
        agent = start_agent(tmp / "agent", config=TEST_CONFIG, env=env)
        try:
            yield screen, agent, pool
        finally:
            agent.stop()


def ask(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor], origin: str, *keys: str) -> dict:
    screen, agent, pool = desktop
    reply = pool.submit(agent.call, "list_disks", plugin="pfx", origin=origin)
    window = screen.wait_window(DIALOG)
    assert screen.wait_focus(window), "the consent dialog did not take the keyboard focus"
    screen.key(*keys)
    screen.wait_gone(window, DIALOG)
    return reply.result(timeout=30)


def test_escape_denies(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor]) -> None:
    assert ask(desktop, "https://one.example.uz", "Escape")["status"] == -1022


def test_enter_on_the_focused_button_denies(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor]) -> None:
    assert ask(desktop, "https://two.example.uz", "Return")["status"] == -1022


def test_allow_once_by_keyboard(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor]) -> None:
    assert ask(desktop, "https://three.example.uz", "Tab", "Return")["success"] is True
    screen, agent, _ = desktop
    assert agent.call("list_disks", plugin="pfx", origin="https://three.example.uz")["success"] is True
    assert not screen.find_windows(DIALOG)


def test_consent_screenshot(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor]) -> None:
    screen, agent, pool = desktop
    assert agent.call("change_ui_lang", "uz", plugin="app")["success"] is True
    try:
        reply = pool.submit(agent.call, "list_disks", plugin="pfx", origin="https://soliq.example.uz")
        window = screen.wait_window(DIALOG)
        time.sleep(0.2)
        shot = screen.screenshot(window, SCREENSHOTS / "consent-dialog-uz.png")
        screen.key("Escape")
        screen.wait_gone(window, DIALOG)
        assert reply.result(timeout=30)["status"] == -1022
    finally:
        agent.call("change_ui_lang", "ru", plugin="app")
    from PIL import Image

    with Image.open(shot) as image:
        assert 300 < image.size[0] < 1000 and 150 < image.size[1] < 800, image.size
