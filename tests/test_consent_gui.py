"""The site-consent dialog on a virtual screen: it takes the focus, Escape refuses (without remembering), Enter does
nothing until Tab has put the visible focus on a button, the buttons answer; a denial is listed, journaled and
undone with `eimzo-agent sites`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def module_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in the module agent's home (each test has a home of its own; the agent has the module's)."""
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"))
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, timeout=60,
                          check=False, env=env)


def test_enter_without_a_focused_button_does_nothing(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor],
                                                     isolated_module_dirs: Path, tmp_path: Path) -> None:
    """A reflex Enter (the person was typing into the page) must neither allow nor store a denial."""
    screen, agent, pool = desktop
    site = "https://two.example.uz"
    reply = pool.submit(agent.call, "list_disks", plugin="pfx", origin=site)
    window = screen.wait_window(DIALOG)
    assert screen.wait_focus(window), "the consent dialog did not take the keyboard focus"
    screen.key("Return")
    time.sleep(1.0)
    assert screen.find_windows(DIALOG) == [window], "Enter answered although no button had the focus"
    assert not reply.done()
    # Tab puts the focus on a button, and that shows: the window looks different afterwards.
    before = screen.screenshot(window, tmp_path / "no-focus.png").read_bytes()
    screen.key("Tab")
    time.sleep(0.3)
    assert screen.screenshot(window, tmp_path / "deny-focused.png").read_bytes() != before, "no visible focus"
    screen.key("Escape")
    screen.wait_gone(window, DIALOG)
    answer = reply.result(timeout=30)
    assert answer["status"] == -1022
    assert answer["reason"] == i18n.text("uz", "reasons", "consent_unanswered", site=site)
    listed = json.loads(module_cli(isolated_module_dirs, "sites", "--json").stdout)
    assert {"domain": site, "source": "denied"} not in listed


def test_tab_then_enter_denies_and_sites_lists_journals_and_forgets_it(
        desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor], isolated_module_dirs: Path) -> None:
    screen, agent, _ = desktop
    site = "https://deny.example.uz"
    answer = ask(desktop, site, "Tab", "Return")  # the first Tab lands on "deny", which then shows its focus
    # The page is told the person refused (in the person's language), not that an API key is invalid.
    assert answer == {"success": False, "status": -1022,
                      "reason": i18n.text("uz", "reasons", "consent_denied", site=site)}
    assert "API" not in answer["reason"]
    listed = json.loads(module_cli(isolated_module_dirs, "sites", "--json").stdout)
    assert {"domain": site, "source": "denied"} in listed
    journal = [json.loads(line) for line in module_cli(isolated_module_dirs, "journal", "--json").stdout.splitlines()]
    assert [(e["site"], e["operation"], e["result"]) for e in journal if e["site"] == site] == [
        (site, "consent", "denied")]
    # Asked again only after the refusal is forgotten (while the agent runs).
    assert agent.call("list_disks", plugin="pfx", origin=site)["status"] == -1022
    assert not screen.find_windows(DIALOG)
    forgot = module_cli(isolated_module_dirs, "sites", "forget", "deny.example.uz")
    assert forgot.returncode == 0, forgot.stderr
    assert module_cli(isolated_module_dirs, "sites", "forget", "deny.example.uz").returncode == 1
    assert ask(desktop, site, "Tab", "Tab", "Return")["success"] is True
    journal = [json.loads(line) for line in module_cli(isolated_module_dirs, "journal", "--json").stdout.splitlines()]
    assert [e["result"] for e in journal if e["site"] == site] == ["denied", "denial_forgotten"]


def test_allow_once_by_keyboard(desktop: tuple[XScreen, AgentProcess, ThreadPoolExecutor]) -> None:
    assert ask(desktop, "https://three.example.uz", "Tab", "Tab", "Return")["success"] is True
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
