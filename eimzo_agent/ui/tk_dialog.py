"""A minimal Tk password dialog: on top, focused, showing the requesting site and the key owner.

Tk is not thread-safe, so every dialog gets its own interpreter in its own short-lived thread; the asyncio
loop only awaits the result. Prompts are serialised by `SerialPrompter`, so two dialogs never coexist.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from eimzo_agent import i18n
from eimzo_agent.ui.prompter import PromptRequest

log = logging.getLogger(__name__)


def run_dialog(request: PromptRequest, cancel: threading.Event) -> str | None:
    import tkinter as tk

    t = lambda name, **kw: i18n.text(request.language, "prompt", name, **kw)  # noqa: E731
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        log.error("cannot open the password dialog: %s", exc)
        return None
    result: list[str | None] = [None]
    root.title(t("title"))
    root.resizable(False, False)
    root.attributes("-topmost", True)  # E-IMZO's worst complaint: a dialog hidden behind the browser
    frame = tk.Frame(root, padx=16, pady=12)
    frame.pack(fill="both", expand=True)
    lines = request.text().split("\n")
    for line in lines[:-4]:  # the wrong-password warning, if any
        tk.Label(frame, text=line, fg="#b00020", anchor="w").pack(fill="x")
    tk.Label(frame, text=lines[-4], font=("TkDefaultFont", 11, "bold"), anchor="w").pack(fill="x", pady=(0, 6))
    for line in lines[-3:]:
        tk.Label(frame, text=line, anchor="w", justify="left", wraplength=420).pack(fill="x")
    entry = tk.Entry(frame, show="•", width=36)
    entry.pack(fill="x", pady=(10, 8))
    buttons = tk.Frame(frame)
    buttons.pack(fill="x")

    def accept(_event: object = None) -> None:
        result[0] = entry.get()
        root.destroy()

    def reject(_event: object = None) -> None:
        result[0] = None
        root.destroy()

    tk.Button(buttons, text=t("cancel"), command=reject).pack(side="right")
    tk.Button(buttons, text=t("ok"), command=accept, default="active").pack(side="right", padx=(0, 8))
    root.bind("<Return>", accept)
    root.bind("<KP_Enter>", accept)
    root.bind("<Escape>", reject)
    root.protocol("WM_DELETE_WINDOW", reject)

    def watch_cancel() -> None:
        if cancel.is_set():
            reject()
        else:
            root.after(100, watch_cancel)

    def take_focus() -> None:
        root.lift()
        root.focus_force()
        entry.focus_set()

    root.after(100, watch_cancel)
    root.after_idle(take_focus)
    root.mainloop()
    return result[0]


class TkPrompter:
    def __init__(self, timeout: float = 300.0) -> None:
        self.timeout = timeout

    async def ask(self, request: PromptRequest) -> str | None:
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()

        def worker() -> None:
            try:
                answer = run_dialog(request, cancel)
            except Exception:
                log.exception("password dialog failed")
                answer = None
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(answer))

        threading.Thread(target=worker, name="password-dialog", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            cancel.set()
            return None
        except asyncio.CancelledError:
            cancel.set()
            raise
