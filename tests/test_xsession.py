"""The GUI tests' own focus check: it must not report a window as focused when the focus is elsewhere.

Every "the dialog took the focus" claim in the GUI tests rests on `XScreen.has_focus`. It once read the root
window's id in xwininfo's header as a child, so with the focus left on the root window (where X puts it when a
focused window closes) every window "had" the focus, and a test typed into whichever window took it later.
"""

from __future__ import annotations

import subprocess
import sys

from xsession import require_gui_tools, xvfb

WINDOW = ("import sys, tkinter as tk; r = tk.Tk(); r.title(sys.argv[1]); r.geometry('300x200+{x}+0');"
          "r.after(int(sys.argv[2]), r.focus_force); r.after(int(sys.argv[3]), r.destroy); r.mainloop();"
          "import time; time.sleep(30)")


def test_focus_is_reported_only_for_the_focused_window() -> None:
    require_gui_tools("xwininfo")
    with xvfb("800x600x24") as screen:
        # "Other" stays open and never takes the focus; "Gone" takes it and closes, its process staying alive,
        # which leaves the X focus on the root window.
        other = subprocess.Popen([sys.executable, "-c", WINDOW.format(x=400), "Other", "600000", "600000"],
                                 env=screen.env())
        gone = subprocess.Popen([sys.executable, "-c", WINDOW.format(x=0), "Gone", "100", "1500"], env=screen.env())
        try:
            other_window = screen.wait_window("^Other$")
            gone_window = screen.wait_window("^Gone$")
            assert screen.wait_focus(gone_window, timeout=10)
            assert not screen.has_focus(other_window)
            screen.wait_gone(gone_window, "^Gone$")
            assert screen.focused_window() == 0, "the focus should be back on the root window"
            assert not screen.has_focus(other_window)
        finally:
            for process in (other, gone):
                process.kill()
                process.wait(5)
