"""The key password (or token PIN) dialog: site, key owner, document, then the password.

Keyboard only works throughout: the entry has the focus, Enter answers, Escape cancels, Tab reaches "show",
"remember" and the buttons. "Remember for this site" is off by default and only offered for signing, and only
when the admin allows it; the durations offered stop at the admin's cap (`[passwords]`, see ui/remember.py).
A token PIN question shows the token's own warning (its last try, or earlier wrong PINs) right above the entry.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk

from eimzo_agent.ui.prompter import Answer, PromptRequest
from eimzo_agent.ui.remember import REMEMBER_CHOICES, remember_choices
from eimzo_agent.ui.tk_widgets import (
    CapsLockWatch,
    SecretEntry,
    button_row,
    details_grid,
    pin_state_banner,
    retry_banner,
    setup_style,
    site_banner,
    translator,
)

#: Catalogue keys naming REMEMBER_CHOICES, in the same order.
REMEMBER_LABELS = ("remember_15m", "remember_1h", "remember_6h")


def remember_label(t: Callable[..., str], seconds: int) -> str:
    """"1 hour" for the usual durations, "{n} minutes" for an admin's cap between them."""
    if seconds in REMEMBER_CHOICES:
        return t(REMEMBER_LABELS[REMEMBER_CHOICES.index(seconds)])
    return t("remember_minutes", count=seconds // 60)


@dataclass
class PasswordFields:
    """The password entry (with "show" and the Caps Lock warning) and, where offered, "remember for …"."""

    secret: SecretEntry
    remember: tk.BooleanVar
    duration: tk.StringVar
    choices: tuple[int, ...]
    labels: list[str]

    def answer(self) -> Answer:
        chosen = self.remember.get() and self.choices
        return Answer(self.secret.get(), self.choices[self.labels.index(self.duration.get())] if chosen else 0)


def password_fields(root: tk.Tk, parent: tk.Widget, request: PromptRequest, t: Callable[..., str],
                    label: str) -> PasswordFields:
    """Packs the entry row and the "remember" row into `parent` (the password and the batch dialogs share them)."""
    form = ttk.Frame(parent)
    form.pack(fill="x")
    form.columnconfigure(1, weight=1)
    ttk.Label(form, text=t(label)).grid(row=0, column=0, sticky="w", padx=(0, 10))
    shown = tk.BooleanVar(root, value=False)
    caps_label = ttk.Label(form, text="⇪ " + t("caps_lock"), style="Warn.TLabel", padding=(6, 2))
    caps = CapsLockWatch(root, caps_label)
    secret = SecretEntry(form, shown, caps.on_key)
    secret.entry.grid(row=0, column=1, sticky="we")
    ttk.Checkbutton(form, text=t("show"), variable=shown).grid(row=0, column=2, sticky="w", padx=(10, 0))
    caps_label.grid(row=1, column=1, sticky="w", pady=(4, 0))
    caps.refresh()

    remember = tk.BooleanVar(root, value=False)
    choices = remember_choices(request.remember_max_seconds) if request.can_remember else ()
    labels = [remember_label(t, seconds) for seconds in choices]
    duration = tk.StringVar(root, value=labels[0] if labels else "")
    if choices:
        row = ttk.Frame(parent)
        row.pack(fill="x", pady=(10, 0))
        ttk.Checkbutton(row, text=t("remember"), variable=remember).pack(side="left")
        combo = ttk.Combobox(row, textvariable=duration, values=labels, state="readonly", width=10)
        combo.pack(side="left", padx=(6, 0))
        # Picking a duration means "yes, remember": one action instead of two.
        combo.bind("<<ComboboxSelected>>", lambda _e: remember.set(True))
    return PasswordFields(secret, remember, duration, choices, labels)


def build_password_dialog(root: tk.Tk, finish: Callable[[Answer | None], None], request: PromptRequest) -> tk.Widget:
    t = translator(request)
    fonts = setup_style(root)
    pin = request.kind == "pin"
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=t("enter_pin" if pin else "enter_password"), style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    details_grid(outer, request, fonts).pack(fill="x")
    ttk.Separator(outer).pack(fill="x", pady=12)
    banner = retry_banner(outer, request)
    if banner is not None:
        banner.pack(anchor="w", pady=(0, 8))
    warning = pin_state_banner(outer, request)  # right above the entry: read before the PIN is typed
    if warning is not None:
        warning.pack(fill="x", pady=(0, 10))

    fields = password_fields(root, outer, request, t, "label_pin" if pin else "label_password")
    secret = fields.secret

    def accept(_event: object = None) -> None:
        finish(fields.answer())

    def reject(_event: object = None) -> None:
        finish(None)

    buttons, _ = button_row(outer, t, t("ok"), accept, reject)
    buttons.pack(fill="x", pady=(16, 0))
    root.bind("<Return>", accept)
    root.bind("<KP_Enter>", accept)
    return secret.entry
