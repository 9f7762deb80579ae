"""The real password dialog, driven through the real agent on a private virtual X screen (Xvfb + xdotool).

No askpass here: the agent shows its Tk dialog, and the tests type into whatever window has the keyboard
focus, so every typed password also proves the dialog took the focus by itself. Each test uses its own
Origin(s): remembered passwords and cancel cool-downs are per site and must not leak between tests.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import PASSWORD, TEST_CONFIG, AgentProcess, b64, mint, start_agent
from websockets.sync.client import ClientConnection, connect
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent import i18n

DIALOG = "^eimzo-agent"
PORTAL = "https://hujjat.example.uz"
DOCUMENT = ("Shartnoma № 17\nIjara to'lovi: 1 200 000 so'm, 2026-yil dekabr oyi uchun.\n"
            "Договор аренды № 17 от 01.12.2026.").encode()
NEW_PASSWORD = "Yangi-Parol-2026"


@dataclass
class Gui:
    screen: XScreen
    agent: AgentProcess
    keys: dict[str, Path]
    pool: ThreadPoolExecutor

    def load(self, key: str, origin: str) -> str:
        certificates = self.agent.call("list_all_certificates", plugin="pfx", origin=origin)["certificates"]
        entry = next(c for c in certificates if c["name"] == self.keys[key].stem)
        reply = self.agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                plugin="pfx", origin=origin)
        assert reply["success"] is True, reply
        return reply["keyId"]

    def sign(self, key_id: str, origin: str, data: bytes = DOCUMENT) -> Future[Any]:
        """create_pkcs7 on its own socket in the background: it waits for whoever answers the dialog."""
        return self.pool.submit(self.agent.call, "create_pkcs7", b64(data), key_id, "no", plugin="pkcs7",
                                origin=origin)

    def dialog(self, exclude: tuple[int, ...] = ()) -> int:
        window = self.screen.wait_window(DIALOG, exclude=exclude)
        assert self.screen.wait_focus(window), "the password dialog did not take the keyboard focus"
        return window

    def answer(self, password: str, *keys: str, exclude: tuple[int, ...] = ()) -> int:
        window = self.dialog(exclude)
        self.screen.type(password)
        self.screen.key(*keys, "Return")
        self.screen.wait_gone(window, DIALOG)
        return window

    def cancel(self, exclude: tuple[int, ...] = ()) -> int:
        window = self.dialog(exclude)
        self.screen.key("Escape")
        self.screen.wait_gone(window, DIALOG)
        return window

    def no_dialog_while(self, future: Future[Any], timeout: float = 15) -> Any:
        """The call's reply, checking that no dialog showed up while it ran."""
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            assert not self.screen.find_windows(DIALOG), "a dialog appeared"
            time.sleep(0.05)
        return future.result(timeout=1)


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    require_gui_tools("xwininfo")
    tmp = tmp_path_factory.mktemp("gui")
    root, ca = tmp / "flash", tmp / "ca"
    validity = ("--valid-from", "2025-06-01", "--valid-to", "2027-06-01")  # fixed: screenshots stay identical
    keys = {
        "vali": mint(ca, root / "DSKEYS", "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123",
                     "--tin", "512345678", *validity),
        "nodira": mint(ca, root / "DSKEYS", "p256", "--cn", "KARIMOVA NODIRA", "--pinfl", "41234567890123",
                       "--org", "Yangi Texnologiyalar MChJ", "--org-tin", "301234567", *validity),
    }
    config = TEST_CONFIG + '[sites]\nallowed_domains = ["hujjat.example.uz"]\n'
    with xvfb() as screen, ThreadPoolExecutor(max_workers=8) as pool:
        # The module's own home and XDG folders (conftest's isolated_module_dirs), plus the virtual screen.
        agent = start_agent(tmp / "agent", "--key-root", str(root), config=config, env=screen.env())
        try:
            yield Gui(screen, agent, keys, pool)
        finally:
            agent.stop()


@pytest.fixture(autouse=True)
def no_dialog_left(gui: Gui) -> Iterator[None]:
    """A dialog left open by a failed test would hold the queue and fail every later test: close it, and say so."""
    yield
    left = gui.screen.find_windows(DIALOG)
    for window in left:
        gui.screen.key("Escape")
        gui.screen.wait_gone(window, DIALOG)
    assert not left, "the test left a password dialog open"


def test_right_password_signs(gui: Gui) -> None:
    origin = "http://localhost:7001"
    key_id = gui.load("vali", origin)
    reply = gui.sign(key_id, origin)
    gui.answer(PASSWORD)
    result = reply.result(timeout=30)
    assert result["success"] is True, result
    assert base64.b64decode(result["pkcs7_64"]).find(DOCUMENT) > 0  # attached signature holds the document
    assert PASSWORD not in gui.agent.log()


def test_dialog_takes_focus_from_another_window(gui: Gui, tmp_path: Path) -> None:
    """A "browser" window holds the focus; the dialog must still come up focused (E-IMZO's worst complaint)."""
    import subprocess
    import sys

    browser = subprocess.Popen(
        [sys.executable, "-c", "import tkinter as tk; r = tk.Tk(); r.title('Browser'); r.geometry('1200x850+0+0');"
         "r.after(100, r.focus_force); r.mainloop()"], env=gui.screen.env())
    try:
        browser_window = gui.screen.wait_window("^Browser$")
        assert gui.screen.wait_focus(browser_window, timeout=5)
        origin = "http://localhost:7002"
        reply = gui.sign(gui.load("vali", origin), origin)
        gui.answer(PASSWORD)  # checks the focus, then types blind into the focused window
        assert reply.result(timeout=30)["success"] is True
    finally:
        browser.terminate()
        browser.wait(5)


def _press_caps_lock(screen: XScreen) -> None:
    """Caps Lock through XTest (xdotool's `key Caps_Lock` restores the lock state afterwards)."""
    from Xlib import XK, X, display
    from Xlib.ext import xtest

    connection = display.Display(screen.display)
    try:
        keycode = connection.keysym_to_keycode(XK.string_to_keysym("Caps_Lock"))
        xtest.fake_input(connection, X.KeyPress, keycode)
        xtest.fake_input(connection, X.KeyRelease, keycode)
        connection.sync()
    finally:
        connection.close()


def _shows_colour(screen: XScreen, window: int, colour: tuple[int, int, int], path: Path) -> bool:
    from PIL import Image

    with Image.open(screen.screenshot(window, path)) as image:
        return colour in {c for _, c in image.convert("RGB").getcolors(1 << 20) or []}


def test_caps_lock_warning(gui: Gui, tmp_path: Path) -> None:
    warning = (0xFF, 0xF4, 0xE0)  # WARN_BG of ui/tk_widgets.py: only the Caps Lock label uses it here
    origin = "http://localhost:7014"
    key_id = gui.load("vali", origin)
    _press_caps_lock(gui.screen)
    try:
        reply = gui.sign(key_id, origin)
        window = gui.dialog()
        time.sleep(0.2)
        assert _shows_colour(gui.screen, window, warning, tmp_path / "on.png"), "no Caps Lock warning"
    finally:
        _press_caps_lock(gui.screen)  # off again, also for the tests after this one
    time.sleep(0.3)  # the dialog re-reads the lock state after the key
    assert not _shows_colour(gui.screen, window, warning, tmp_path / "off.png"), "warning still shown"
    gui.screen.type(PASSWORD)
    gui.screen.key("Return")
    gui.screen.wait_gone(window, DIALOG)
    assert reply.result(timeout=30)["success"] is True


def test_wrong_password_three_times_gives_5000(gui: Gui) -> None:
    origin = "http://localhost:7003"
    reply = gui.sign(gui.load("vali", origin), origin)
    seen: tuple[int, ...] = ()
    for _ in range(3):
        seen += (gui.answer("not-the-password", exclude=seen),)
    assert reply.result(timeout=30) == {"success": False, "status": -5000,
                                        "reason": i18n.text("ru", "reasons", "password_wrong", tries=3)}
    assert len(set(seen)) == 3  # a fresh dialog each time, each one focused


def test_wrong_then_right(gui: Gui) -> None:
    origin = "http://localhost:7004"
    reply = gui.sign(gui.load("vali", origin), origin)
    first = gui.answer("typo")
    gui.answer(PASSWORD, exclude=(first,))
    assert reply.result(timeout=30)["success"] is True


def test_cancel_gives_5000(gui: Gui) -> None:
    origin = "http://localhost:7005"
    reply = gui.sign(gui.load("vali", origin), origin)
    gui.cancel()
    assert reply.result(timeout=30) == {"success": False, "status": -5000, "reason": "Ввод пароля отменен"}


def test_remember_for_this_site_and_key_only(gui: Gui) -> None:
    site, other_site = "http://localhost:7006", "http://localhost:7007"
    vali, nodira = gui.load("vali", site), gui.load("nodira", site)
    first = gui.sign(vali, site)
    # Keyboard only: password, Tab to "show", Tab to "remember", Space ticks it, Enter answers.
    gui.answer(PASSWORD, "Tab", "Tab", "space")
    assert first.result(timeout=30)["success"] is True

    again = gui.no_dialog_while(gui.sign(vali, site))
    assert again["success"] is True  # same site, same key: not asked again

    elsewhere = gui.sign(gui.load("vali", other_site), other_site)
    gui.cancel()  # another site is asked
    assert elsewhere.result(timeout=30)["status"] == -5000

    other_key = gui.sign(nodira, site)
    gui.cancel()  # another key on the same site is asked
    assert other_key.result(timeout=30)["status"] == -5000
    assert PASSWORD not in gui.agent.log()


def test_verify_password_always_asks(gui: Gui) -> None:
    site = "http://localhost:7008"
    key_id = gui.load("vali", site)
    first = gui.sign(key_id, site)
    gui.answer(PASSWORD, "Tab", "Tab", "space")
    assert first.result(timeout=30)["success"] is True
    verify = gui.pool.submit(gui.agent.call, "verify_password", key_id, plugin="pfx", origin=site)
    gui.cancel()
    assert verify.result(timeout=30)["status"] == -5000


@contextmanager
def _sign_socket(gui: Gui, key_id: str, origin: str) -> Iterator[ClientConnection]:
    """A create_pkcs7 request on a socket the test closes itself (the page going away)."""
    with connect(gui.agent.url, origin=origin, compression=None, open_timeout=10, close_timeout=2) as ws:
        ws.send(json.dumps({"plugin": "pkcs7", "name": "create_pkcs7", "arguments": [b64(DOCUMENT), key_id, "no"]}))
        yield ws


def test_dialog_closes_when_the_page_goes_away(gui: Gui) -> None:
    origin = "http://localhost:7009"
    key_id = gui.load("vali", origin)
    with _sign_socket(gui, key_id, origin):
        window = gui.dialog()
    gui.screen.wait_gone(window, DIALOG, timeout=5)
    reply = gui.sign(key_id, origin)  # the queue is free again
    gui.answer(PASSWORD, exclude=(window,))
    assert reply.result(timeout=30)["success"] is True


def test_queued_prompt_of_a_closed_page_is_dropped(gui: Gui) -> None:
    origin = "http://localhost:7010"
    key_id = gui.load("vali", origin)
    shown = gui.sign(key_id, origin)
    window = gui.dialog()
    with _sign_socket(gui, key_id, origin):
        time.sleep(0.5)  # let the agent queue it behind the open dialog
    gui.screen.type(PASSWORD)
    gui.screen.key("Return")
    gui.screen.wait_gone(window, DIALOG)
    assert shown.result(timeout=30)["success"] is True
    time.sleep(1.0)
    assert not gui.screen.find_windows(DIALOG), "the closed page's question was still shown"


def test_flooding_site_is_limited_and_other_sites_get_their_turn(gui: Gui) -> None:
    flood, other = "http://localhost:7011", "http://localhost:7012"
    flood_key, other_key = gui.load("vali", flood), gui.load("vali", other)
    first = gui.sign(flood_key, flood)
    window = gui.dialog()
    more = [gui.sign(flood_key, flood) for _ in range(4)]
    # At most 3 questions per site: two of the four extra ones are refused at once with -5001.
    deadline = time.monotonic() + 10
    while sum(f.done() for f in more) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = [f.result() for f in more if f.done()]
    busy = i18n.text("ru", "reasons", "prompt_busy")  # E-IMZO's -5001, saying why
    assert refused == [{"success": False, "status": -5001, "reason": busy}] * 2
    waiting = [f for f in more if not f.done()]
    fair = gui.sign(other_key, other)
    time.sleep(0.5)  # queued behind the flooding site's two waiting questions
    gui.screen.key("Escape")
    gui.screen.wait_gone(window, DIALOG)
    assert first.result(timeout=30)["status"] == -5000
    # The other site's question comes next, before the flooding site's queued ones.
    gui.answer(PASSWORD, exclude=(window,))
    assert fair.result(timeout=30)["success"] is True
    assert not any(f.done() for f in waiting)
    for _ in waiting:
        gui.cancel()
    assert [f.result(timeout=30)["status"] for f in waiting] == [-5000, -5000]
    # Three cancels within a minute: the site is refused without a dialog for a while.
    cooled = gui.no_dialog_while(gui.sign(flood_key, flood))
    waits = [i18n.text("ru", "reasons", "prompt_cooldown", seconds=n) for n in (58, 59, 60)]
    assert cooled["status"] == -5001 and cooled["reason"] in waits, cooled  # says how long to wait


def test_change_password_in_one_dialog(gui: Gui, tmp_path: Path) -> None:
    origin = "http://localhost:7013"
    copy = gui.keys["vali"].with_name("DSCHANGE0001.pfx")
    copy.write_bytes(gui.keys["vali"].read_bytes())
    try:
        gui.keys["change"] = copy
        key_id = gui.load("change", origin)
        reply = gui.pool.submit(gui.agent.call, "change_password", key_id, plugin="pfx", origin=origin)
        window = gui.dialog()
        gui.screen.type(PASSWORD)
        gui.screen.key("Tab")
        gui.screen.type("short")
        gui.screen.key("Tab")
        gui.screen.type("short")
        gui.screen.key("Return")  # refused by the dialog itself: the rules are not met
        time.sleep(0.3)
        assert window in gui.screen.find_windows(DIALOG)
        gui.screen.key("shift+Tab", "End", "shift+Home", "BackSpace")  # select the entry's text and delete it
        gui.screen.type(NEW_PASSWORD)
        gui.screen.key("Tab", "End", "shift+Home", "BackSpace")
        gui.screen.type(NEW_PASSWORD)
        gui.screen.key("Return")
        gui.screen.wait_gone(window, DIALOG)
        assert reply.result(timeout=30)["success"] is True, reply.result()
        signed = gui.sign(key_id, origin)
        gui.answer(NEW_PASSWORD, exclude=(window,))
        assert signed.result(timeout=30)["success"] is True
    finally:
        gui.keys.pop("change", None)
        copy.unlink(missing_ok=True)


@pytest.mark.parametrize("lang", ["uz", "kaa", "ru", "en"])
def test_screenshot_in_each_language(gui: Gui, lang: str, screenshot_dir: Path) -> None:
    """password-dialog-<lang>.png (see docs/screenshots/): site, key owner and document preview in every language."""
    # The portal's own choice (which, in E-IMZO, switches the whole agent).
    assert gui.agent.call("change_ui_lang", lang, plugin="app", origin=PORTAL)["success"] is True
    try:
        key_id = gui.load("nodira", PORTAL)
        reply = gui.sign(key_id, PORTAL)
        window = gui.dialog()
        time.sleep(0.2)  # the entry's focus ring is drawn
        shot = gui.screen.screenshot(window, screenshot_dir / f"password-dialog-{lang}.png")
        shown = gui.screen.window_name(window)
        gui.screen.type(PASSWORD)
        gui.screen.key("Return")
        gui.screen.wait_gone(window, DIALOG)
        assert reply.result(timeout=30)["success"] is True
    finally:
        gui.agent.call("change_ui_lang", "ru", plugin="app", origin=PORTAL)
    assert shown == i18n.text(lang, "prompt", "title"), "the dialog is not in the chosen language"
    _check_screenshot(shot)


def test_change_password_screenshot(gui: Gui, screenshot_dir: Path) -> None:
    assert gui.agent.call("change_ui_lang", "uz", plugin="app", origin=PORTAL)["success"] is True
    try:
        key_id = gui.load("nodira", PORTAL)
        reply = gui.pool.submit(gui.agent.call, "change_password", key_id, plugin="pfx", origin=PORTAL)
        window = gui.dialog()
        gui.screen.type("eski-parol")
        gui.screen.key("Tab")
        gui.screen.type("YangiParol")
        time.sleep(0.2)
        shot = gui.screen.screenshot(window, screenshot_dir / "change-password-dialog-uz.png")
        shown = gui.screen.window_name(window)
        gui.screen.key("Escape")
        gui.screen.wait_gone(window, DIALOG)
        assert reply.result(timeout=30)["status"] == -5000
    finally:
        gui.agent.call("change_ui_lang", "ru", plugin="app", origin=PORTAL)
    assert shown == i18n.text("uz", "prompt", "title"), "the dialog is not in Uzbek"
    _check_screenshot(shot)


def _check_screenshot(path: Path) -> None:
    """A real dialog picture: sensible size, and the site band's colour is there (not a blank or black grab)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 400 < width < 1000 and 300 < height < 900, image.size
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert (0xE8, 0xF0, 0xFE) in colours  # SITE_BG of ui/tk_widgets.py
