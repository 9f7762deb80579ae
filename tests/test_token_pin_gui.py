"""The Tk PIN dialog shows the token's own warning: its last try in red, earlier wrong PINs in the milder colours.

The real agent on a private virtual X screen (see test_password_dialog_gui.py), with SoftHSM tokens behind the
PIN-counting module (tests/pkcs11_shim/pin_counter.c); pkcs11-tool spends the wrong PINs beforehand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, b64, start_agent
from PIL import Image
from softhsm import MODULE, PIN, PinCounter, make_pin_counter, make_softhsm, mint_pfx
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent.ui.tk_widgets import DANGER_BG, WARN_BG

DIALOG = "^eimzo-agent"
ORIGIN = "http://localhost:7101"


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@dataclass
class Gui:
    screen: XScreen
    agent: AgentProcess
    counter: PinCounter
    pool: ThreadPoolExecutor

    def sign(self, token: str) -> Future[Any]:
        keys = {k["tokenLabel"]: k for k in self.agent.call("list_keys", plugin="token", origin=ORIGIN)["keys"]}
        reply = self.agent.call("load_key", keys[token]["tokenId"], keys[token]["alias"], plugin="token",
                                origin=ORIGIN)
        assert reply["success"] is True, reply
        return self.pool.submit(self.agent.call, "create_pkcs7", b64(b"PIN"), reply["keyId"], "no",
                                plugin="pkcs7", origin=ORIGIN)

    def colours(self, window: int, path: Path) -> set[tuple[int, int, int]]:
        with Image.open(self.screen.screenshot(window, path)) as image:
            width, height = image.size
            assert 400 < width < 1000 and 200 < height < 900, image.size  # a real dialog, not a blank grab
            return {colour for _, colour in image.convert("RGB").getcolors(1 << 20) or []}


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    require_gui_tools()
    assert Path(MODULE).is_file(), "softhsm2 is not installed (scripts/bootstrap.sh --test installs it)"
    tmp = tmp_path_factory.mktemp("pin-gui")
    hsm = make_softhsm(tmp / "hsm")
    for number, token in enumerate(("GUI FINAL", "GUI LOW"), 1):
        hsm.add_token(token)
        pfx = mint_pfx(tmp / "ca", tmp / "pfx", "p256", f"OYNA {number}", f"3666666666666{number}")
        hsm.import_key(token, pfx, "Token-Passw0rd", f"0{number}", token.lower())
    counter = make_pin_counter(tmp / "shim", hsm)
    with xvfb() as screen, ThreadPoolExecutor(max_workers=2) as pool:
        agent = start_agent(tmp / "agent", "--pkcs11-module", str(counter.module), env=screen.env(counter.env()))
        try:
            yield Gui(screen, agent, counter, pool)
        finally:
            agent.stop()


def test_last_try_warning_is_shown_in_red_and_cancel_spends_nothing(gui: Gui, screenshot_dir: Path) -> None:
    gui.counter.spend_wrong_pin("GUI FINAL", times=2)
    reply = gui.sign("GUI FINAL")
    window = gui.screen.wait_window(DIALOG)
    assert gui.screen.wait_focus(window), "the PIN dialog did not take the keyboard focus"
    time.sleep(0.2)
    colours = gui.colours(window, screenshot_dir / "pin-dialog-final-try-ru.png")
    assert rgb(DANGER_BG) in colours, "no last-try warning in the PIN dialog"
    gui.screen.key("Escape")
    gui.screen.wait_gone(window, DIALOG)
    assert reply.result(timeout=30)["status"] == -5000
    flags = gui.counter.flags("GUI FINAL")
    assert "final user PIN try" in flags and "locked" not in flags


def test_earlier_wrong_pin_warning_is_the_milder_one(gui: Gui, tmp_path: Path) -> None:
    gui.counter.spend_wrong_pin("GUI LOW")
    reply = gui.sign("GUI LOW")
    window = gui.screen.wait_window(DIALOG)
    assert gui.screen.wait_focus(window), "the PIN dialog did not take the keyboard focus"
    time.sleep(0.2)
    colours = gui.colours(window, tmp_path / "count-low.png")
    assert rgb(WARN_BG) in colours and rgb(DANGER_BG) not in colours  # Caps Lock is off: WARN_BG is ours
    gui.screen.type(PIN)
    gui.screen.key("Return")
    gui.screen.wait_gone(window, DIALOG)
    assert reply.result(timeout=30)["success"] is True
    assert "count low" not in gui.counter.flags("GUI LOW")
