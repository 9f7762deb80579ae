"""The tray icon: shows that the agent runs and offers its menu (see `tray_menu.py`).

pystray picks the backend: AppIndicator or GTK where the desktop offers them (real menus), plain X11 otherwise.
Plain X11 has no menus and pystray's window ignores clicks (pystray issue #151), so there we enable button
events on the icon's window and show the same menu as a Tk pop-up on a left click.

Never fatal: `import pystray` raises Xlib's DisplayNameError (not ImportError) without a display, a backend may
fail to start, the desktop may have no tray at all — each case logs one line and the agent runs without an
icon. The icon runs in a daemon thread; `Icon.run_detached()` is avoided because on X11 it leaves a
non-daemon thread behind and the process never exits.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eimzo_agent.ui.tray_menu import SEPARATOR, Entry, TrayModel

if TYPE_CHECKING:
    from PIL import Image

    from eimzo_agent.ui.tray_menu import TraySubject

log = logging.getLogger(__name__)

APP_NAME = "eimzo-agent"
#: How often keys are looked for again (flash drives) and the menu rebuilt if anything changed.
REFRESH_SECONDS = 10.0


def load_pystray() -> ModuleType | None:
    if sys.platform == "darwin":
        # AppKit wants the main thread, which runs the agent's event loop.
        log.info("no tray icon on macOS yet")
        return None
    try:
        import pystray
    except Exception as exc:  # DisplayNameError without a display, ImportError without pystray, …
        log.info("no tray icon: %s: %s", type(exc).__name__, exc)
        return None
    return pystray


def icon_image(size: int = 64) -> Image.Image:
    """A white key on the blue of the dialog's site band, drawn here so no image file has to be shipped."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 64
    draw.rounded_rectangle((2 * s, 2 * s, 62 * s, 62 * s), radius=12 * s, fill=(11, 61, 145, 255))
    white = (255, 255, 255, 255)
    draw.ellipse((9 * s, 20 * s, 33 * s, 44 * s), outline=white, width=round(6 * s))
    draw.rectangle((31 * s, 29 * s, 56 * s, 35 * s), fill=white)
    draw.rectangle((44 * s, 35 * s, 49 * s, 44 * s), fill=white)
    draw.rectangle((51 * s, 35 * s, 56 * s, 41 * s), fill=white)
    return image


class Tray:
    def __init__(self, model: TrayModel, pystray: ModuleType) -> None:
        self.model = model
        self.pystray = pystray
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._shown_state: tuple[object, ...] | None = None
        # The X11 backend writes the title as a Latin-1 WM_NAME: start with a plain ASCII one.
        self.icon: Any = pystray.Icon(APP_NAME, icon_image(), title=APP_NAME, menu=pystray.Menu(self._menu_items))
        self.has_menu = bool(getattr(self.icon, "HAS_MENU", True))

    def start(self) -> None:
        if not self.has_menu:
            self._enable_clicks()
            # Filters apply only to the logger a record is made on: pystray logs on "pystray._base".
            logging.getLogger("pystray._base").addFilter(_UndockedFilter())
        threading.Thread(target=self._run_icon, name="tray-icon", daemon=True).start()
        threading.Thread(target=self._refresh_loop, name="tray-refresh", daemon=True).start()
        self.model.agent.passwords.on_change = self._wake.set
        self.model.agent.menu.show = self.show_menu

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self.model.agent.passwords.on_change == self._wake.set:
            self.model.agent.passwords.on_change = None
        if self.model.agent.menu.show == self.show_menu:
            self.model.agent.menu.show = None
        try:
            self.icon.stop()
        except Exception as exc:  # a backend that never started
            log.debug("tray icon stop: %s", exc)

    def show_menu(self) -> None:
        """The menu at the mouse pointer, for `app.show_menu`. Always our Tk pop-up (the same entries): no tray
        library can open its native menu from a program."""
        self._popup()

    # --- pystray glue --------------------------------------------------------------------------------------

    def _run_icon(self) -> None:
        # pystray starts its setup thread from here, so it is a daemon too and never holds the process at exit.
        try:
            self.icon.run(setup=self._setup)
        except Exception:
            log.exception("the tray icon stopped working")

    def _setup(self, icon: Any) -> None:
        try:
            icon.visible = True
        except Exception:
            log.exception("cannot show the tray icon")

    def _menu_items(self) -> list[Any]:
        entries = self.model.entries()
        if not self.has_menu:
            # Only the default item is ever used here (a left click): it opens our own pop-up menu.
            return [self.pystray.MenuItem(entries[0].text, self._popup, default=True)]
        return [self._item(entry) for entry in entries]

    def _item(self, entry: Entry) -> Any:
        if entry is SEPARATOR:
            return self.pystray.Menu.SEPARATOR
        pystray = self.pystray
        if entry.children is not None:
            return pystray.MenuItem(entry.text, pystray.Menu(*(self._item(c) for c in entry.children)),
                                    enabled=entry.enabled)
        action = _guarded(entry.action) if entry.action is not None else None
        checked = None
        if entry.checked is not None:
            state = entry.checked
            checked = lambda _item: state  # noqa: E731 - pystray wants a callable
        return pystray.MenuItem(entry.text, action, enabled=entry.enabled, checked=checked,
                                radio=entry.checked is not None, default=entry.default)

    def _refresh_loop(self) -> None:
        while not self._stopping.is_set():
            self._dock_if_tray_appeared()
            self.model.refresh_keys()
            state = self.model.state()
            if state != self._shown_state:
                self._shown_state = state
                try:
                    if self.has_menu:  # GTK/AppIndicator/Windows show the title as a tooltip, in any script
                        self.icon.title = self.model.tooltip()
                    self.icon.update_menu()
                except Exception as exc:  # the backend may not be running (yet, or any more)
                    log.debug("tray menu update: %s", exc)
            # Until docked, look for a tray every second (a panel starting after the agent, or a lost race).
            self._wake.wait(REFRESH_SECONDS if self.docked() else 1.0)
            self._wake.clear()

    # --- plain X11: docking late, clicks and a Tk pop-up menu ----------------------------------------------

    def _dock_if_tray_appeared(self) -> None:
        """An agent started at login may come up before the desktop's panel: dock once a tray exists."""
        if self.has_menu:
            return
        try:
            if self._embedded():
                return
            if _system_tray_exists():
                log.info("a system tray exists but holds no icon of ours: asking it to dock the icon")
                # pystray runs this in its own X thread and docks when the icon is (re)drawn. Never touch
                # pystray's X connection from here: Xlib connections are not thread-safe, and a request
                # interleaved with pystray's own corrupted the docking (seen as an icon that never docked).
                self.icon.icon = icon_image()
        except Exception as exc:
            log.debug("tray docking: %s", exc)

    def docked(self) -> bool:
        return self.has_menu or self._embedded()

    def _embedded(self) -> bool:
        """Whether the tray really took the icon (reparented its window), asked on our own X connection.

        pystray only remembers that it *sent* the dock request; a tray that was still starting may have
        missed it, and then only a new request helps.
        """
        if self.has_menu:
            return True
        window = getattr(self.icon, "_window", None)
        if window is None:
            return False
        from Xlib import display

        connection = display.Display()
        try:
            tree = connection.create_resource_object("window", window.id).query_tree()
            return tree.parent.id != tree.root.id
        except Exception:  # the window is gone (icon stopped)
            return False
        finally:
            connection.close()

    def _enable_clicks(self) -> None:
        """pystray's X11 window selects no button events (pystray #151): add them so a left click arrives."""
        try:
            from Xlib import X

            window, display = self.icon._window, self.icon._display
            window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
            display.flush()
        except Exception as exc:
            log.info("tray icon: clicks not enabled (%s): the menu is not reachable", exc)

    def _popup(self, _icon: object = None, _item: object = None) -> None:
        threading.Thread(target=popup_menu, args=(self.model.entries(),), name="tray-menu", daemon=True).start()


def _system_tray_exists() -> bool:
    """Whether an X system tray owns _NET_SYSTEM_TRAY_S0, asked on a short-lived connection of our own."""
    from Xlib import X, display

    connection = display.Display()
    try:
        return connection.get_selection_owner(connection.intern_atom("_NET_SYSTEM_TRAY_S0")) != X.NONE
    finally:
        connection.close()


class _UndockedFilter(logging.Filter):
    """pystray logs a traceback whenever there is no system tray to dock into; one line at INFO is enough."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != "Failed to dock icon":
            return True
        if not self.said:
            self.said = True
            log.info("no system tray on this desktop (yet): the icon will dock when one appears")
        return False


def _guarded(action: Callable[[], None]) -> Callable[..., None]:
    def run(*_args: object) -> None:
        try:
            action()
        except Exception:
            log.exception("tray menu action failed")

    return run


def popup_menu(entries: list[Entry]) -> None:
    """The menu as a Tk pop-up at the mouse pointer, in its own thread and interpreter (like the dialogs)."""
    chosen = _popup(entries)
    gc.collect()  # Tk objects must be collected in the thread that made them
    for action in chosen:  # outside Tk: an action may open the about window, quit the agent, …
        _guarded(action)()


def _popup(entries: list[Entry]) -> list[Callable[[], None]]:
    import tkinter as tk

    try:
        root = tk.Tk(className="eimzo-agent-menu")
    except tk.TclError as exc:
        log.info("tray menu: %s", exc)
        return []
    root.withdraw()
    chosen: list[Callable[[], None]] = []

    def fill(menu: tk.Menu, items: tuple[Entry, ...] | list[Entry]) -> None:
        for entry in items:
            if entry is SEPARATOR:
                menu.add_separator()
            elif entry.children is not None:
                sub = tk.Menu(menu, tearoff=False)
                fill(sub, entry.children)
                menu.add_cascade(label=entry.text, menu=sub, state="normal" if entry.enabled else "disabled")
            else:
                action = entry.action
                label = ("● " if entry.checked else "○ ") + entry.text if entry.checked is not None else entry.text
                menu.add_command(label=label, state="normal" if action else "disabled",
                                 command=(lambda a=action: chosen.append(a)) if action else None)

    menu = tk.Menu(root, tearoff=False)
    fill(menu, entries)
    menu.bind("<Unmap>", lambda _e: root.after(50, root.quit))
    x, y = root.winfo_pointerxy()
    root.after(10, lambda: menu.tk_popup(x, y))
    root.mainloop()
    root.destroy()
    return chosen


def show_about(title: str, text: str) -> None:
    threading.Thread(target=_about_window, args=(title, text), name="tray-about", daemon=True).start()


def _about_window(title: str, text: str) -> None:
    _about(title, text)
    gc.collect()


def _about(title: str, text: str) -> None:
    import tkinter as tk
    from tkinter import ttk

    try:
        root = tk.Tk(className="eimzo-agent")
    except tk.TclError as exc:
        log.info("about window: %s", exc)
        return
    root.title(title)
    root.resizable(False, False)
    frame = ttk.Frame(root, padding=16)
    frame.pack()
    ttk.Label(frame, text=text, justify="left").pack(anchor="w")
    ttk.Button(frame, text="OK", command=root.destroy).pack(anchor="e", pady=(12, 0))
    root.bind("<Escape>", lambda _e: root.destroy())
    root.bind("<Return>", lambda _e: root.destroy())
    root.attributes("-topmost", True)
    root.mainloop()


def start_tray(agent: TraySubject, port: int, on_quit: Callable[[], None]) -> Tray | None:
    """The running tray icon, or None (logged) when this desktop cannot show one."""
    pystray = load_pystray()
    if pystray is None:
        return None
    try:
        tray = Tray(TrayModel(agent, port, on_quit, show_about=show_about), pystray)
        tray.start()
    except Exception as exc:
        log.warning("no tray icon: %s", exc)
        return None
    log.info("tray icon shown (%s backend%s)", type(tray.icon).__module__.rsplit("._", 1)[-1],
             "" if tray.has_menu else ", menu on left click")
    return tray
