"""The Tk password dialogs: in front, focused, and clear about who asks for what.

E-IMZO's most common complaint is a password window that opens *behind* the browser, so people cancel without
ever seeing it. Our dialog is always-on-top while open, raises itself and forces keyboard focus when it
appears, and checks again a moment later (a window manager may hand focus back to the browser); this works
with a window manager and without one (kiosks, Xvfb).

Tk is not thread-safe, so every dialog gets its own interpreter in its own short-lived thread; the asyncio
loop only awaits the result. The queue in front (`prompt_queue.SerialPrompter`) guarantees that two dialogs
never coexist. When the page goes away, the request is cancelled and the dialog closes within 0.1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from eimzo_agent import i18n
from eimzo_agent.ui.prompter import BatchProgress, EnrollChoice, PasswordChange, PromptRequest

if TYPE_CHECKING:
    import tkinter as tk

log = logging.getLogger(__name__)

T = TypeVar("T")
#: build(root, finish) lays out the dialog and returns the widget that gets the keyboard focus.
Builder = Callable[["tk.Tk", Callable[[T | None], None]], "tk.Widget"]
#: The questions `ask` shows: a secret typed into a masked entry.
SECRET_KINDS = frozenset({"password", "pin", "new_password", "repeat_new_password"})
#: Re-take the focus at these moments (ms after creation, and again after mapping) if X never gave it to us or a
#: window manager handed it back to the browser.
FOCUS_RECHECK_MS = (150, 500, 1200, 2500)


def run_dialog(request: PromptRequest, build: Builder[T], cancel: threading.Event) -> T | None:
    """Show one dialog in the calling thread until it is answered, closed or `cancel` is set."""
    try:
        return _show(request, build, cancel)
    finally:
        # Tk objects must die in the thread that made them: a Tcl interpreter collected by another thread's
        # garbage collection aborts the process ("Tcl_AsyncDelete: async handler deleted by the wrong thread").
        gc.collect()


def _show(request: PromptRequest, build: Builder[T], cancel: threading.Event) -> T | None:
    import tkinter as tk

    try:
        root = tk.Tk(className="eimzo-agent")
    except tk.TclError as exc:
        log.error("cannot open the password dialog: %s", exc)
        return None
    result: list[T | None] = [None]

    def finish(value: T | None) -> None:
        result[0] = value
        root.destroy()

    try:
        root.withdraw()  # laid out first, then shown centred in one go
        root.title(i18n.text(request.language, "prompt", "title"))
        root.resizable(False, False)
        with contextlib.suppress(tk.TclError):  # X11 only: window managers place and decorate it as a dialog
            root.attributes("-type", "dialog")
        focus = build(root, finish)
        root.protocol("WM_DELETE_WINDOW", lambda: finish(None))
        root.bind("<Escape>", lambda _e: finish(None))

        def watch_cancel() -> None:
            if cancel.is_set():
                finish(None)
            else:
                root.after(100, watch_cancel)

        root.after(100, watch_cancel)
        _place(root)
        bring_to_front(root, focus)
        root.mainloop()
    finally:
        with contextlib.suppress(tk.TclError):  # already destroyed by finish()
            root.destroy()
    return result[0]


def _place(root: tk.Tk) -> None:
    """Centred horizontally, in the upper third: where the eye is when the page says "enter your password"."""
    root.update_idletasks()
    width, height = root.winfo_reqwidth(), root.winfo_reqheight()
    x = max(0, (root.winfo_screenwidth() - width) // 2)
    y = max(0, (root.winfo_screenheight() - height) // 3)
    root.geometry(f"+{x}+{y}")


def bring_to_front(root: tk.Tk, focus: tk.Widget) -> None:
    """Raise and focus the dialog, and again once X has really mapped it.

    On a busy machine the first focus_force can run before the window is viewable, and X then ignores it while
    Tk may still believe it holds the focus; so the checks count only a real FocusIn from X, and they are
    counted from the moment the window is mapped, not from when it was created."""
    root.attributes("-topmost", True)
    root.deiconify()
    focused = [False]

    def take_focus() -> None:
        root.lift()
        root.focus_force()
        focus.focus_set()

    def recheck() -> None:
        if not focused[0] or root.focus_displayof() is None:
            log.debug("password dialog does not hold the focus a moment after it appeared; taking it")
            take_focus()

    def on_map(event: tk.Event) -> None:
        if event.widget is root:
            root.after_idle(take_focus)
            for delay in FOCUS_RECHECK_MS:
                root.after(delay, recheck)

    def on_focus_in(_event: tk.Event) -> None:
        focused[0] = True

    def on_focus_out(_event: tk.Event) -> None:
        focused[0] = False  # a move between our own widgets sends FocusIn right after

    root.bind("<Map>", on_map, add="+")
    root.bind("<FocusIn>", on_focus_in, add="+")
    root.bind("<FocusOut>", on_focus_out, add="+")
    root.after_idle(take_focus)
    for delay in FOCUS_RECHECK_MS:
        root.after(delay, recheck)


class TkPrompter:
    """Prompter with the Tk dialogs: `ask` (password, PIN, choices), `ask_change` (current + new + repeat) and
    `ask_enroll` (disk + new password twice)."""

    supports_change = True
    supports_enroll = True
    supports_batch = True

    def __init__(self, timeout: float = 300.0) -> None:
        self.timeout = timeout

    async def ask(self, request: PromptRequest) -> str | None:
        from eimzo_agent.ui.tk_password import build_password_dialog

        if request.kind in ("choose_key", "choose_disk"):
            from eimzo_agent.ui.tk_choose import build_choose_dialog

            return await self._show(request, lambda root, finish: build_choose_dialog(root, finish, request))
        if request.kind == "consent":
            from eimzo_agent.ui.tk_consent import build_consent_dialog

            return await self._show(request, lambda root, finish: build_consent_dialog(root, finish, request))
        if request.kind == "origin_warning":
            from eimzo_agent.ui.tk_warning import build_warning_dialog

            return await self._show(request, lambda root, finish: build_warning_dialog(root, finish, request))
        if request.kind not in SECRET_KINDS:
            # A question this dialog cannot put (e.g. a yes/no one): a password entry would only confuse; the
            # safe answer is "cancelled".
            log.error("no Tk dialog for %r questions: answered as cancelled", request.kind)
            return None
        return await self._show(request, lambda root, finish: build_password_dialog(root, finish, request))

    async def ask_change(self, request: PromptRequest) -> PasswordChange | None:
        from eimzo_agent.ui.tk_change import build_change_dialog

        return await self._show(request, lambda root, finish: build_change_dialog(root, finish, request))

    async def ask_enroll(self, request: PromptRequest) -> EnrollChoice | None:
        from eimzo_agent.ui.tk_enroll import build_enroll_dialog

        return await self._show(request, lambda root, finish: build_enroll_dialog(root, finish, request))

    async def ask_batch(self, request: PromptRequest, progress: BatchProgress) -> str | None:
        """The batch dialog: answers at OK, then shows `progress` in the same window until it is finished."""
        from eimzo_agent.ui.tk_batch import build_batch_dialog

        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[str | None] = loop.create_future()

        def answer(value: str | None) -> None:  # from the dialog's thread, at OK: the window stays for progress
            loop.call_soon_threadsafe(lambda: answered.done() or answered.set_result(value))

        def worker() -> None:
            try:
                run_dialog(request, lambda root, finish: build_batch_dialog(root, finish, request, progress, answer),
                           cancel)
            except Exception:
                log.exception("batch dialog failed")
            finally:
                answer(None)
                progress.cancel.set()  # closed before the batch ended (window closed): sign no more

        threading.Thread(target=worker, name="batch-dialog", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(answered), self.timeout)
        except TimeoutError:
            log.info("batch dialog not answered within %.0f s: treated as cancel", self.timeout)
            cancel.set()
            return None
        except asyncio.CancelledError:
            cancel.set()  # the page went away: take its question off the screen
            raise

    async def _show(self, request: PromptRequest, build: Builder[T]) -> T | None:
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T | None] = loop.create_future()

        def worker() -> None:
            try:
                answer = run_dialog(request, build, cancel)
            except Exception:
                log.exception("password dialog failed")
                answer = None
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(answer))

        threading.Thread(target=worker, name="password-dialog", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            log.info("password dialog not answered within %.0f s: treated as cancel", self.timeout)
            cancel.set()
            await _closed(future)
            return None
        except asyncio.CancelledError:
            cancel.set()  # the page went away: take its question off the screen
            await _closed(future)
            raise


async def _closed(future: asyncio.Future[T | None]) -> None:
    """Wait (briefly) until the dialog is really gone, so the next one in the queue never overlaps it."""
    await asyncio.wait({future}, timeout=2.0)
