"""Is Caps Lock on right now? Key events tell only after a key is pressed; the dialog wants to warn at once.

Tk has no call for the keyboard's lock state, so we ask the window system: X11 through python-xlib (already
installed as pystray's dependency), Windows through GetKeyState. None = cannot tell; the dialog then relies on
the state bits of key events alone.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

#: The Lock bit in X11 and Tk event states.
LOCK_MASK = 0x2


def caps_lock_on(display_name: str | None = None) -> bool | None:
    if sys.platform == "win32":
        import ctypes

        return bool(ctypes.windll.user32.GetKeyState(0x14) & 1)  # type: ignore[attr-defined]  # VK_CAPITAL
    if sys.platform == "darwin":
        return None
    try:
        from Xlib import display as xdisplay
    except ImportError:
        return None
    try:
        connection = xdisplay.Display(display_name)
    except Exception as exc:  # Xlib raises its own error classes (bad name, refused connection, …)
        log.debug("cannot read the Caps Lock state: %s", exc)
        return None
    try:
        return bool(connection.screen().root.query_pointer().mask & LOCK_MASK)
    finally:
        connection.close()
