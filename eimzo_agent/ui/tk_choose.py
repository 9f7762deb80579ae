"""Choosing one of several token keys (or, "choose_disk", the disk for a new key): a list with the first entry
selected; Enter takes it, Escape cancels."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.ui.prompter import PromptRequest
from eimzo_agent.ui.tk_widgets import button_row, setup_style, site_banner, translator


def build_choose_dialog(root: tk.Tk, finish: Callable[[str | None], None], request: PromptRequest) -> tk.Widget:
    t = translator(request)
    setup_style(root)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    heading = t("choose_disk" if request.kind == "choose_disk" else "choose_key")
    ttk.Label(outer, text=heading, style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    keys = tk.Listbox(outer, height=min(8, len(request.choices)), width=60, activestyle="dotbox", exportselection=False)
    for label in request.choices:
        keys.insert("end", label)
    keys.selection_set(0)
    keys.activate(0)
    keys.pack(fill="x")

    def choose(_event: object = None) -> None:
        picked = keys.curselection()
        finish(str(picked[0] + 1) if picked else None)

    keys.bind("<Return>", choose)
    keys.bind("<Double-Button-1>", choose)
    row, _ = button_row(outer, t, t("ok"), choose, lambda: finish(None))
    row.pack(fill="x", pady=(12, 0))
    return keys
