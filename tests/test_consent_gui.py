"""The site-consent dialog on a virtual screen: it takes the focus, Escape denies, the buttons answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, start_agent
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent import i18n

DIALOG = "^eimzo-agent"


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XScreen, AgentProcess, ThreadPoolExecutor]]:
    require_gui_tools("xwininfo")
    tmp = tmp_path_factory.mktemp("consent-gui")
    with xvfb() as screen, ThreadPoolExecutor(max_workers=4) as pool:
        # The module's own home and XDG folders (conftest's isolated_module_dirs), plus the virtual screen.
        # The person's language is Uzbek: a site that is not allowed yet cannot choose the dialog's language.
        agent = start_agent(tmp / "agent", config=TEST_CONFIG + '[ui]\nlanguage = "uz"\n', env=screen.env())
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


def test_consent_screenshot(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor], screenshot_dir: Path) -> None:
    screen, agent, pool = desktop
    reply = pool.submit(agent.call, "list_disks", plugin="pfx", origin="https://soliq.example.uz")
    window = screen.wait_window(DIALOG)
    time.sleep(0.2)
    shot = screen.screenshot(window, screenshot_dir / "consent-dialog-uz.png")
    shown = screen.window_name(window)
    screen.key("Escape")
    screen.wait_gone(window, DIALOG)
    assert reply.result(timeout=30)["status"] == -1022
    assert shown == f"eimzo-agent — {i18n.text('uz', 'prompt', 'consent_heading')}", "not in Uzbek"
    from PIL import Image

    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert 300 < image.size[0] < 1000 and 150 < image.size[1] < 800, image.size
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert (0xE8, 0xF0, 0xFE) in colours  # SITE_BG of ui/tk_widgets.py: the site band, not a blank grab
