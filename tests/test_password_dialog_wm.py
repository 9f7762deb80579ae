"""The dialog under a real window manager (openbox): above a maximised, focused "browser", active and focused.

This is the situation behind E-IMZO's most common complaint (a password window hidden behind the browser).
With a window manager the checks are its own view: `_NET_ACTIVE_WINDOW` and `_NET_CLIENT_LIST_STACKING`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent_harness import PASSWORD, b64, mint, start_agent
from xsession import XScreen, require_gui_tools, xvfb

DIALOG = "^eimzo-agent"


def _stacking(screen: XScreen) -> list[int]:
    """Client windows bottom to top, as the window manager stacks them."""
    out = screen.run("xprop", "-root", "_NET_CLIENT_LIST_STACKING")
    return [int(w, 16) for w in out.split("#", 1)[1].replace(",", " ").split()] if "#" in out else []


def test_dialog_comes_above_a_focused_browser_under_openbox(tmp_path: Path) -> None:
    require_gui_tools("openbox", "xprop")
    root = tmp_path / "flash"
    mint(tmp_path / "ca", root, "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    with xvfb("1280x900x24") as screen, ThreadPoolExecutor(max_workers=2) as pool:
        wm = subprocess.Popen(["openbox", "--sm-disable"], env=screen.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        browser = None
        agent = None
        try:
            deadline = time.monotonic() + 10
            while "_NET_SUPPORTING_WM_CHECK(WINDOW)" not in screen.run("xprop", "-root", check=False):
                assert time.monotonic() < deadline, "openbox did not start"
                time.sleep(0.1)
            browser = subprocess.Popen(
                [sys.executable, "-c", "import tkinter as tk; r = tk.Tk(); r.title('Browser');"
                 "r.attributes('-zoomed', True); r.after(300, r.focus_force); r.mainloop()"], env=screen.env())
            window = screen.wait_window("^Browser$")
            deadline = time.monotonic() + 5
            while screen.xdotool("getactivewindow", check=False) != str(window):
                assert time.monotonic() < deadline, "the browser never became the active window"
                time.sleep(0.05)

            agent = start_agent(tmp_path / "agent", "--key-root", str(root), env=screen.env())
            certificates = agent.call("list_all_certificates", plugin="pfx")["certificates"]
            e = certificates[0]
            key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
            reply = pool.submit(agent.call, "create_pkcs7", b64(b"hujjat"), key_id, "no", plugin="pkcs7")

            dialog = screen.wait_window(DIALOG)
            deadline = time.monotonic() + 3
            while screen.xdotool("getactivewindow", check=False) != str(dialog):
                assert time.monotonic() < deadline, "the window manager did not make the dialog active"
                time.sleep(0.05)
            assert screen.wait_focus(dialog)
            stacking = _stacking(screen)
            assert stacking.index(dialog) > stacking.index(window), "the dialog is below the browser"
            # The person clicks into the browser (after the dialog's own focus re-checks are over): the browser
            # gets the focus, but must not cover the dialog, which stays on top while it is open.
            time.sleep(1.5)
            screen.xdotool("mousemove", "20", "400", "click", "1")
            deadline = time.monotonic() + 3
            while screen.xdotool("getactivewindow", check=False) != str(window):
                assert time.monotonic() < deadline, "clicking the browser did not activate it"
                time.sleep(0.05)
            stacking = _stacking(screen)
            assert stacking.index(dialog) > stacking.index(window), "the browser covered the open dialog"
            screen.xdotool("windowactivate", "--sync", str(dialog))
            assert screen.wait_focus(dialog)
            screen.type(PASSWORD)
            screen.key("Return")
            assert reply.result(timeout=30)["success"] is True
        finally:
            if agent is not None:
                agent.stop()
            if browser is not None:
                browser.terminate()
                browser.wait(5)
            wm.terminate()
            wm.wait(5)
