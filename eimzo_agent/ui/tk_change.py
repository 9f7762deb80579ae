"""The change-password dialog: current, new and repeated password in one window, with E-IMZO's rules live.

The rules are ticked off while the person types, the button stays disabled until they all hold and both new
entries match, and a warning says plainly that a forgotten password cannot be recovered. The key file is
replaced only after the new file was written and opened with the new password (plugins/pfx.py).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.keys import password_rules
from eimzo_agent.ui.prompter import PasswordChange, PromptRequest
from eimzo_agent.ui.tk_widgets import (
    WRAP,
    CapsLockWatch,
    SecretEntry,
    button_row,
    details_grid,
    retry_banner,
    setup_style,
    site_banner,
    translator,
)


def build_change_dialog(root: tk.Tk, finish: Callable[[PasswordChange | None], None],
                        request: PromptRequest) -> tk.Widget:
    t = translator(request)
    fonts = setup_style(root)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=t("change_heading"), style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    details_grid(outer, request, fonts).pack(fill="x")

    warning = ttk.Frame(outer, style="Warn.TFrame", padding=(10, 6))
    warning.pack(fill="x", pady=(12, 0))
    ttk.Label(warning, text="⚠ " + t("change_warning"), style="Warn.TLabel", wraplength=WRAP + 60).pack(anchor="w")
    ttk.Separator(outer).pack(fill="x", pady=12)
    banner = retry_banner(outer, request)
    if banner is not None:
        banner.pack(anchor="w", pady=(0, 8))

    entries, show_rules = new_password_form(root, outer, t, ("label_current", "label_new", "label_repeat"))
    current, new, repeat = entries

    def ready() -> bool:
        return bool(current.get()) and password_rules.acceptable(new.get()) and new.get() == repeat.get()

    def accept(_event: object = None) -> None:
        if ready():
            finish(PasswordChange(current.get(), new.get()))
        else:
            root.bell()

    def reject(_event: object = None) -> None:
        finish(None)

    buttons, ok = button_row(outer, t, t("change_ok"), accept, reject)
    buttons.pack(fill="x", pady=(16, 0))

    def update(_event: object = None) -> None:
        show_rules(new.get(), repeat.get())
        ok.state(["!disabled"] if ready() else ["disabled"])

    for secret in entries:
        secret.var.trace_add("write", lambda *_: update())
    update()
    root.bind("<Return>", accept)
    root.bind("<KP_Enter>", accept)
    return current.entry


def new_password_form(root: tk.Tk, parent: ttk.Frame, t: Callable[..., str], labels: tuple[str, ...],
                      top: int = 0) -> tuple[list[SecretEntry], Callable[[str, str], None]]:
    """Packs the password entries (one per catalogue key in `labels`), "show", the Caps Lock warning and E-IMZO's
    rules into `parent`: the change-password and the enrollment dialogs share them. Returns the entries and the
    function that re-ticks the rules for the new password and its repetition."""
    form = ttk.Frame(parent)
    form.pack(fill="x", pady=(top, 0))
    form.columnconfigure(1, weight=1)
    shown = tk.BooleanVar(root, value=False)
    caps_label = ttk.Label(form, text="⇪ " + t("caps_lock"), style="Warn.TLabel", padding=(6, 2))
    caps = CapsLockWatch(root, caps_label)
    entries = []
    for row, key in enumerate(labels):
        ttk.Label(form, text=t(key)).grid(row=row, column=0, sticky="w", padx=(0, 10), pady=2)
        secret = SecretEntry(form, shown, caps.on_key)
        secret.entry.grid(row=row, column=1, sticky="we", pady=2)
        entries.append(secret)
    # After the entries, so Tab goes through them, then to "show".
    ttk.Checkbutton(form, text=t("show"), variable=shown).grid(row=0, column=2, sticky="w", padx=(10, 0))
    caps_label.grid(row=len(labels), column=1, sticky="w", pady=(4, 0))
    caps.refresh()
    rules_box = ttk.Frame(parent)
    rules_box.pack(fill="x", pady=(10, 0))
    return entries, rules_panel(rules_box, t)


def rules_panel(parent: ttk.Frame, t: Callable[..., str]) -> Callable[[str, str], None]:
    """E-IMZO's new-password rules and "both entries match" as a ticked list in `parent`; returns the function that
    re-ticks it for the new password and its repetition (the enrollment dialog shows the same list)."""
    ttk.Label(parent, text=t("rules_heading"), style="Small.TLabel").pack(anchor="w")
    rule_labels = {key: ttk.Label(parent, style="RuleBad.TLabel") for key, _ in password_rules.RULES}
    for label in rule_labels.values():
        label.pack(anchor="w", padx=(8, 0))
    match_label = ttk.Label(parent, style="RuleBad.TLabel")
    match_label.pack(anchor="w", padx=(8, 0))

    def show(new: str, repeat: str) -> None:
        for key, met in password_rules.check(new):
            rule_labels[key].configure(text=("✔ " if met else "✖ ") + t(key),
                                       style="RuleOk.TLabel" if met else "RuleBad.TLabel")
        matches = bool(new) and new == repeat
        match_label.configure(text=("✔ " if matches else "✖ ") + t("rule_match"),
                              style="RuleOk.TLabel" if matches else "RuleBad.TLabel")

    return show
