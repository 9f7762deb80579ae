"""The enrollment dialog (pki.enroll_pfx_step1, pfx.save_pfx): which disk gets the new key, and its new password.

One window: which site asks and for whom the key is made, the disks to choose from, where exactly the file will go,
the new password typed twice with E-IMZO's rules ticked off live (the same list as the change-password dialog), and
the warning that a forgotten password cannot be recovered. The button stays disabled, and Enter only rings the bell,
until a disk is chosen, the rules hold and both entries match.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.keys import password_rules
from eimzo_agent.ui.prompter import EnrollChoice, PromptRequest
from eimzo_agent.ui.tk_change import new_password_form
from eimzo_agent.ui.tk_widgets import (
    WRAP,
    button_row,
    details_grid,
    setup_style,
    site_banner,
    translator,
)

KEY_FOLDER = "DSKEYS"


def target_path(disk: str) -> str:
    """Where E-IMZO writes new keys on `disk`: its DSKEYS folder (the disk texts end with a separator)."""
    return disk + KEY_FOLDER if disk.endswith(("/", "\\")) else f"{disk}/{KEY_FOLDER}"


def build_enroll_dialog(root: tk.Tk, finish: Callable[[EnrollChoice | None], None],
                        request: PromptRequest) -> tk.Widget:
    t = translator(request)
    fonts = setup_style(root)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=t("enroll_heading"), style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    details_grid(outer, request, fonts).pack(fill="x")
    ttk.Separator(outer).pack(fill="x", pady=12)

    # The disks: none is pre-chosen when there are several, so a key never lands on a disk nobody picked.
    disks = ttk.Frame(outer)
    disks.pack(fill="x")
    ttk.Label(disks, text=t("label_disk"), style="Muted.TLabel").pack(anchor="w")
    disk = tk.StringVar(root, value=request.choices[0] if len(request.choices) == 1 else "")
    radios = [ttk.Radiobutton(disks, text=choice, value=choice, variable=disk) for choice in request.choices]
    for radio in radios:
        radio.pack(anchor="w", padx=(8, 0))
    target = ttk.Label(disks, wraplength=WRAP + 60, font=fonts.strong)
    target.pack(anchor="w", pady=(6, 0))

    warning = ttk.Frame(outer, style="Warn.TFrame", padding=(10, 6))
    warning.pack(fill="x", pady=(12, 0))
    ttk.Label(warning, text="⚠ " + t("change_warning"), style="Warn.TLabel", wraplength=WRAP + 60).pack(anchor="w")

    # After the disks, so Tab goes disk → new → repeat → Show → OK.
    (new, repeat), show_rules = new_password_form(root, outer, t, ("label_new", "label_repeat"), top=12)

    def ready() -> bool:
        return bool(disk.get()) and password_rules.acceptable(new.get()) and new.get() == repeat.get()

    def accept(_event: object = None) -> None:
        if ready():
            finish(EnrollChoice(disk.get(), new.get()))
        else:
            root.bell()

    buttons, ok = button_row(outer, t, t("enroll_ok"), accept, lambda: finish(None))
    buttons.pack(fill="x", pady=(16, 0))

    def update(_event: object = None) -> None:
        chosen = disk.get()
        target.configure(text=t("enroll_target", path=target_path(chosen)) if chosen else t("enroll_pick_disk"),
                         style="TLabel" if chosen else "Error.TLabel")
        show_rules(new.get(), repeat.get())
        ok.state(["!disabled"] if ready() else ["disabled"])

    for variable in (disk, new.var, repeat.var):
        variable.trace_add("write", lambda *_: update())
    update()
    root.bind("<Return>", accept)
    root.bind("<KP_Enter>", accept)
    return new.entry if disk.get() or not radios else radios[0]
