"""A private virtual X screen for GUI tests: Xvfb on a display number it picks itself, driven with xdotool.

Works as root in CI with no display at all. Xvfb chooses a free display (`-displayfd`), so parallel runs and a
developer's own X server are never touched. `windowactivate` needs a window manager; without one we only use
`windowfocus`-free checks (`getwindowfocus`) because the agent must take the focus by itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

GUI_TOOLS = ("Xvfb", "xdotool", "import")


def require_gui_tools(*extra: str) -> None:
    """Fail (in CI) or skip (on a developer's machine without them) when the X tools are missing."""
    missing = [tool for tool in (*GUI_TOOLS, *extra) if shutil.which(tool) is None]
    if not missing:
        return
    message = f"missing {', '.join(missing)}: run scripts/bootstrap.sh --test"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class XScreen:
    display: str
    process: subprocess.Popen[bytes]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(base if base is not None else os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def run(self, *args: str, timeout: float = 10, check: bool = True) -> str:
        result = subprocess.run(list(args), env=self.env(), capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result.stdout.strip()

    def xdotool(self, *args: str, check: bool = True) -> str:
        return self.run("xdotool", *args, check=check)

    def find_windows(self, name: str) -> list[int]:
        out = self.xdotool("search", "--onlyvisible", "--name", name, check=False)
        return [int(w) for w in out.split()]

    def wait_window(self, name: str, timeout: float = 15, exclude: tuple[int, ...] = ()) -> int:
        """The id of a visible window whose title matches `name` (a regex), waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [w for w in self.find_windows(name) if w not in exclude]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no window {name!r} appeared within {timeout} s")

    def wait_gone(self, window: int, name: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if window not in self.find_windows(name):
                return
            time.sleep(0.05)
        raise AssertionError(f"window {window} ({name!r}) still shown after {timeout} s; screen: {self.grab()}")

    def grab(self) -> Path:
        """The whole screen into a temporary PNG, for failure messages."""
        path = Path(tempfile.mkdtemp(prefix="xscreen-")) / "screen.png"
        self.run("import", "-window", "root", str(path), timeout=20, check=False)
        return path

    def window_name(self, window: int) -> str:
        """The window's title, as the window manager would show it."""
        return self.xdotool("getwindowname", str(window))

    def focused_window(self) -> int:
        """The focus window's id; 0 when the focus is on no client window: PointerRoot/None (before any client)
        or the root window itself (where X puts it back when a focused window closes)."""
        out = self.xdotool("getwindowfocus", check=False)
        if not out.isdigit():
            return 0
        focus = int(out)
        return 0 if focus == self.root_window() else focus

    def root_window(self) -> int:
        match = re.search(r"Window id: (0x[0-9a-f]+)", self.run("xwininfo", "-root", check=False))
        return int(match.group(1), 16) if match else -1

    def has_focus(self, window: int) -> bool:
        """True when the keyboard focus is on `window` or a window inside it (Tk focuses an inner window).

        Only the listed descendants count: xwininfo's header names the root and parent windows too, and the
        focus sits on the root window after any focused window has closed."""
        focus = self.focused_window()
        if focus == 0:
            return False
        if focus == window:
            return True
        tree = self.run("xwininfo", "-tree", "-id", str(window), check=False)
        return focus in {int(found, 16) for found in re.findall(r"^\s*(0x[0-9a-f]+) ", tree, re.MULTILINE)}

    def wait_focus(self, window: int, timeout: float = 10.0) -> bool:
        """True once `window` has the focus; a dialog gets a moment after it is mapped to take it (generous: a
        loaded 2-core CI machine maps windows slowly; this waits, it does not time anything)."""
        deadline = time.monotonic() + timeout
        while not self.has_focus(window):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "5", text)

    def key(self, *keys: str) -> None:
        self.xdotool("key", *keys)

    def screenshot(self, window: int, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        # -strip drops ImageMagick's date chunks: the same dialog gives the same bytes, so git sees no change.
        self.run("import", "-window", str(window), "-strip", str(path), timeout=20)
        return path


@contextmanager
def xvfb(size: str = "1280x900x24") -> Iterator[XScreen]:
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + 15
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_end, 16)
            if not chunk:
                break
            number += chunk
        if not number.strip().isdigit():
            raise AssertionError(f"Xvfb did not start (exit status {process.poll()})")
        yield XScreen(f":{number.decode().strip()}", process)
    finally:
        os.close(read_end)
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
