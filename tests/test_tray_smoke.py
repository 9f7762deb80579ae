"""Smoke test of the real tray icon: the agent docks into a system tray (trayer) on a virtual X screen.

Plain X11 is the backend there (no GTK in the venv): the icon must be reparented into the tray, drawn in the
agent's colours, open its menu on a left click, and "Quit" must stop the agent.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from xsession import XScreen, require_gui_tools, xvfb

ICON_CLASS = "eimzo-agentSystemTrayIcon"
ICON_BLUE = (11, 61, 145)  # ui/tray.py icon_image()


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _tray_manager_running(screen: XScreen) -> bool:
    """Whether a system tray owns the _NET_SYSTEM_TRAY_S0 selection (trayer's window exists a moment earlier)."""
    from Xlib import display

    connection = display.Display(screen.display)
    try:
        return connection.get_selection_owner(connection.intern_atom("_NET_SYSTEM_TRAY_S0")) != 0
    finally:
        connection.close()


def _docked(screen: XScreen, window: int) -> bool:
    """True once the window is reparented away from the root (into the tray's socket)."""
    info = {k.strip(): v.split()[0] for k, _, v in
            (line.partition(":") for line in screen.run("xwininfo", "-children", "-id", str(window)).splitlines())
            if v.strip()}
    return info["Parent window id"] != info["Root window id"]


def test_tray_icon_docks_draws_and_quits(tmp_path: Path) -> None:
    require_gui_tools("trayer", "xwininfo")
    from PIL import Image

    with xvfb("1024x600x24") as screen:
        trayer = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
             "--SetDockType", "false", "--transparent", "false"],
            env=screen.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: _tray_manager_running(screen), 10, "trayer to own the system tray selection")
            config = tmp_path / "config.toml"
            config.write_text("[keys]\nscan_system_locations = false\n")
            log = (tmp_path / "agent.log").open("w")
            agent = subprocess.Popen(
                [sys.executable, "-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0",
                 "--config", str(config)], env=screen.env(), stdout=subprocess.DEVNULL, stderr=log)
            try:
                icon = int(_wait(lambda: screen.xdotool("search", "--classname", ICON_CLASS, check=False), 20,
                                 "the tray icon window").split()[0])
                # Docked = reparented into trayer's panel (an undocked pystray icon stays a child of the root).
                _wait(lambda: _docked(screen, icon), 10, "the icon to dock into trayer")
                def drawn() -> bool:  # the first Expose may take a moment on a busy machine
                    with Image.open(screen.screenshot(icon, tmp_path / "icon.png")) as image:
                        return ICON_BLUE in {c for _, c in image.convert("RGB").getcolors(1 << 16) or []}

                _wait(drawn, 10, "the icon to be drawn in its colours")

                screen.xdotool("mousemove", "--window", str(icon), "10", "10", "click", "1")
                menu = int(_wait(lambda: screen.xdotool("search", "--onlyvisible", "--class", "^Menu$",
                                                        check=False), 10, "the tray menu").split()[0])
                geometry = dict(line.strip().split(": ", 1) for line in
                                screen.xdotool("getwindowgeometry", str(menu)).splitlines()[1:])
                x, y = (int(v) for v in geometry["Position"].split()[0].split(","))
                width, height = (int(v) for v in geometry["Geometry"].split("x"))
                screen.xdotool("mousemove", str(x + width // 3), str(y + height - 10), "click", "1")  # "Quit"
                assert agent.wait(15) == 0
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait()
                log.close()
            text = (tmp_path / "agent.log").read_text()
            assert "tray icon shown (xorg backend, menu on left click)" in text, text
            assert "Traceback" not in text
        finally:
            trayer.terminate()
            trayer.wait(5)
