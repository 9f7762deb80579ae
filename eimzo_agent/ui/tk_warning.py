"""The login-origin warning: a page asked to sign a login meant for another site, and nothing was signed.

A notice, not a question: one "Close" button, and Escape or the window's close do the same. Whatever the person
does, the answer is "closed" (None): nothing here can make the agent sign.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.ui.prompter import PromptRequest
from eimzo_agent.ui.tk_widgets import WRAP, setup_style, site_banner, translator


def build_warning_dialog(root: tk.Tk, finish: Callable[[str | None], None], request: PromptRequest) -> tk.Widget:
    t = translator(request)
    root.title(f"eimzo-agent — {t('origin_warning_heading')}")
    setup_style(root)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=t("origin_warning_heading"), style="Error.TLabel", wraplength=WRAP + 80,
              justify="left").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    lines = request.origin_warning_lines()
    ttk.Label(outer, text=lines[0], wraplength=WRAP + 80, justify="left").pack(anchor="w")
    for line in lines[1:]:
        ttk.Label(outer, text=line, style="Error.TLabel", wraplength=WRAP + 80, justify="left").pack(
            anchor="w", pady=(6, 0))
    row = ttk.Frame(outer)
    row.pack(fill="x", pady=(12, 0))
    close = ttk.Button(row, text=t("origin_warning_close"), command=lambda: finish(None))
    close.pack(side="right")
    for key in ("<Return>", "<KP_Enter>"):
        close.bind(key, lambda _e: finish(None))
    return close
