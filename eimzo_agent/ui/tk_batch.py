"""The batch-signing dialog (batch.create_pkcs7): the whole list, one password, then progress with a cancel.

The person sees which site asks, whose key it is and every document (name, size, fingerprint) in a scrollable list
before typing the password once. After OK the same window shows "12 of 100 signed" (also in its title, which
screen readers and window lists show) and a Cancel button that stops the batch between two documents; the
signatures made so far still reach the page. The window closes itself when the batch ends.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.ui.details import format_size, group_hex
from eimzo_agent.ui.prompter import Answer, BatchProgress, PromptRequest
from eimzo_agent.ui.tk_password import password_fields
from eimzo_agent.ui.tk_widgets import (
    button_row,
    details_grid,
    retry_banner,
    setup_style,
    site_banner,
    translator,
)

#: Rows visible at once; the rest scroll.
LIST_ROWS = 10
#: Hex digits of a fingerprint shown in the list (enough to compare by eye with what the portal shows).
FINGERPRINT_DIGITS = 16
POLL_MS = 50


def fingerprint_text(algorithm: str, value: str) -> str:
    return f"{algorithm}: {group_hex(value[:FINGERPRINT_DIGITS])} …"


def build_batch_dialog(root: tk.Tk, finish: Callable[[Answer | None], None], request: PromptRequest,
                       progress: BatchProgress, answer: Callable[[Answer | None], None]) -> tk.Widget:
    """`answer` hands the password over at OK (the window stays for the progress); `finish` closes the window."""
    t = translator(request)
    lang = request.language
    fonts = setup_style(root)
    heading = t("batch_heading", count=len(request.batch))
    title = f"{root.title()} — {heading}"
    root.title(title)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=heading, style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    details_grid(outer, request, fonts).pack(fill="x")
    ttk.Label(outer, text=t("batch_summary", count=len(request.batch),
                            size=format_size(request.batch_total_bytes(), lang)),
              font=fonts.strong).pack(anchor="w", pady=(10, 4))

    box = ttk.Frame(outer)
    box.pack(fill="both", expand=True)
    table = ttk.Treeview(box, columns=("name", "size", "fingerprint"), show="headings", selectmode="none",
                         height=min(LIST_ROWS, max(3, len(request.batch))))
    for column, width, stretch in (("name", 220, True), ("size", 75, False), ("fingerprint", 310, False)):
        table.heading(column, text=t(f"batch_{column}"), anchor="w")
        table.column(column, width=width, stretch=stretch)
    for document in request.batch:
        size = t("batch_hash_only") if document.size is None else format_size(document.size, lang)
        table.insert("", "end", values=(document.name, size, fingerprint_text(*document.fingerprint)))
    scroll = ttk.Scrollbar(box, orient="vertical", command=table.yview)
    table.configure(yscrollcommand=scroll.set)
    table.pack(side="left", fill="both", expand=True)
    scroll.pack(side="right", fill="y")
    ttk.Separator(outer).pack(fill="x", pady=12)

    # The password part, replaced by the progress part after OK.
    ask = ttk.Frame(outer)
    ask.pack(fill="x")
    banner = retry_banner(ask, request)
    if banner is not None:
        banner.pack(anchor="w", pady=(0, 8))
    fields = password_fields(root, ask, request, t, "label_password")
    secret = fields.secret

    status = tk.StringVar(root)
    working = ttk.Frame(outer)
    bar = ttk.Progressbar(working, maximum=max(1, progress.total), mode="determinate")
    bar.pack(fill="x")
    ttk.Label(working, textvariable=status).pack(anchor="w", pady=(6, 0))
    stop = ttk.Button(working, text=t("cancel"), command=lambda: cancel_midway())
    stop.pack(anchor="e", pady=(12, 0))

    def show_progress() -> None:
        text = t("batch_progress", done=progress.done, total=progress.total)
        if status.get() != text:
            status.set(text)
            bar.configure(value=progress.done)
            root.title(f"{title} — {text}")  # a window list (and a test's xdotool) sees how far it got
        if progress.finished.is_set():
            finish(None)
        else:
            root.after(POLL_MS, show_progress)

    def cancel_midway() -> None:
        progress.cancel.set()  # the worker stops before the next document; the window closes when it has
        stop.state(["disabled"])

    def accept(_event: object = None) -> None:
        answer(fields.answer())
        secret.clear()
        ask.pack_forget()
        buttons.pack_forget()
        working.pack(fill="x")
        for sequence in ("<Return>", "<KP_Enter>"):
            root.unbind(sequence)
        stop.focus_set()
        show_progress()

    buttons, _ = button_row(outer, t, t("batch_ok"), accept, lambda: finish(None))
    buttons.pack(fill="x", pady=(16, 0))
    root.bind("<Return>", accept)
    root.bind("<KP_Enter>", accept)
    return secret.entry
