"""The login-origin warning on a virtual X screen: a page relays another site's login challenge, and the real agent
shows its Tk warning (no password dialog), in front and focused; it stays until closed even when the page goes
away, a second relay while it is up adds no window, and the page gets -1022 once the person has seen it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import DEFAULT_ORIGIN, TEST_CONFIG, AgentProcess, b64, mint, start_agent
from websockets.sync.client import connect
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent import i18n, login_challenge

PORTAL = "https://portal.example.uz"
#: The page relaying the challenge: the machine's own pages need no consent question, so only the warning shows.
PAGE = DEFAULT_ORIGIN
ANY_DIALOG = "^eimzo-agent"
TITLE = "eimzo-agent — " + i18n.text("en", "prompt", "origin_warning_heading")


@dataclass
class Gui:
    screen: XScreen
    agent: AgentProcess
    pool: ThreadPoolExecutor
    key_id: str

    def relay(self) -> str:
        """create_pkcs7 of a fresh PORTAL challenge from PAGE, as a raw frame."""
        return json.dumps({"plugin": "pkcs7", "name": "create_pkcs7",
                           "arguments": [b64(login_challenge.new_challenge(PORTAL).text.encode()), self.key_id,
                                         "no"]})


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    require_gui_tools("xwininfo")
    tmp = tmp_path_factory.mktemp("origin-gui")
    mint(tmp / "ca", tmp / "flash", "p256", "--cn", "TOSHMATOV ESHMAT")
    with xvfb() as screen, ThreadPoolExecutor(max_workers=4) as pool:
        agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"),
                            config=TEST_CONFIG + '[ui]\nlanguage = "en"\n', env=screen.env())
        try:
            entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
            key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                plugin="pfx")["keyId"]
            yield Gui(screen, agent, pool, key_id)
        finally:
            agent.stop()


def test_warning_window_instead_of_a_password_dialog(gui: Gui, screenshot_dir: Path) -> None:
    reply = gui.pool.submit(gui.agent.call, "create_pkcs7", b64(login_challenge.new_challenge(PORTAL).text.encode()),
                            gui.key_id, "no", plugin="pkcs7")
    window = gui.screen.wait_window(ANY_DIALOG)
    assert gui.screen.window_name(window) == TITLE
    assert gui.screen.wait_focus(window), "the warning did not come to the front with the keyboard focus"
    gui.screen.screenshot(window, screenshot_dir / "origin-warning.png")
    # A second relay from the same page while the warning is up: refused at once, no second window.
    second = gui.agent.call("create_pkcs7", b64(login_challenge.new_challenge(PORTAL).text.encode()), gui.key_id,
                            "no", plugin="pkcs7")
    assert second["status"] == -1022
    assert gui.screen.find_windows(ANY_DIALOG) == [window]
    time.sleep(0.3)
    assert not reply.done(), "the page was answered before the person saw the warning"
    gui.screen.key("Return")  # "Close" has the focus
    gui.screen.wait_gone(window, ANY_DIALOG)
    assert reply.result(timeout=30) == {
        "success": False, "status": -1022,
        "reason": i18n.text("en", "reasons", "login_origin_mismatch", login_site=PORTAL, site=PAGE)}
    assert not gui.screen.find_windows(ANY_DIALOG)


def test_the_warning_stays_when_the_page_goes_away(gui: Gui) -> None:
    with connect(gui.agent.url, origin=PAGE, compression=None) as ws:
        ws.send(gui.relay())
        window = gui.screen.wait_window(ANY_DIALOG)
        assert gui.screen.window_name(window) == TITLE
    time.sleep(1.0)  # the agent has seen the socket close (it cancels the call's other questions within 0.1 s)
    assert gui.screen.find_windows(ANY_DIALOG) == [window]
    gui.screen.key("Escape")
    gui.screen.wait_gone(window, ANY_DIALOG)
