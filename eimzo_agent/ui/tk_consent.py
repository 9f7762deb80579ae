"""The site-consent dialog: "<site> asks to use your signing keys" — allow once, always allow, or deny.

The keyboard focus starts on no button, so Enter does nothing until the person has moved the focus (Tab) onto a
button, which then shows its focus ring: a person typing into a page when the question pops up must neither grant
(Enter on "allow") nor store a lasting denial (Enter on "deny") by a reflex keystroke. Escape and closing the
window refuse this one request without remembering anything, so dismissing an unexpected question never grants.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from eimzo_agent.ui.prompter import PromptRequest
from eimzo_agent.ui.tk_widgets import WRAP, setup_style, site_banner, translator


def build_consent_dialog(root: tk.Tk, finish: Callable[[str | None], None], request: PromptRequest) -> tk.Widget:
    t = translator(request)
    root.title(f"eimzo-agent — {t('consent_heading')}")
    setup_style(root)
    outer = ttk.Frame(root, padding=(20, 16, 20, 16))
    outer.pack(fill="both", expand=True)
    ttk.Label(outer, text=t("consent_heading"), style="Heading.TLabel").pack(anchor="w")
    site_banner(outer, request).pack(fill="x", pady=(10, 12))
    if request.opaque_site:
        # A file:// page or a sandboxed frame of any site: say that nobody can tell who it is, offer no "always".
        ttk.Label(outer, text=t("consent_opaque_question"), wraplength=WRAP + 80, justify="left").pack(anchor="w")
        ttk.Label(outer, text=t("consent_opaque_warning"), style="Error.TLabel", wraplength=WRAP + 80,
                  justify="left").pack(anchor="w", pady=(6, 0))
    else:
        ttk.Label(outer, text=t("consent_question", site=request.site), wraplength=WRAP + 80,
                  justify="left").pack(anchor="w")
    ttk.Label(outer, text=t("consent_explain"), style="Muted.TLabel", wraplength=WRAP + 80, justify="left").pack(
        anchor="w", pady=(6, 12)
    )
    row = ttk.Frame(outer)
    row.pack(fill="x")
    # Tab order: deny, once, always (the first Tab lands on the answer that grants nothing); packed right to left
    # so "deny" sits at the far right as "cancel" does. No button is the default one (no default="active"):
    # a default button reads as "Enter does this".
    deny = ttk.Button(row, text=t("consent_deny"), command=lambda: finish("deny"))
    once = ttk.Button(row, text=t("consent_once"), command=lambda: finish("once"))
    buttons = [(deny, "deny"), (once, "once")]
    deny.pack(side="right")
    once.pack(side="right", padx=(0, 8))
    if not request.opaque_site:
        always = ttk.Button(row, text=t("consent_always"), command=lambda: finish("always"))
        always.pack(side="right", padx=(0, 8))
        buttons.append((always, "always"))
    for button, answer in buttons:
        # Enter answers only on the button that visibly has the focus (ttk's clam theme draws its focus ring).
        button.bind("<Return>", lambda _e, a=answer: finish(a))
        button.bind("<KP_Enter>", lambda _e, a=answer: finish(a))
    # The window itself takes the focus (so keys reach the dialog, not the browser) but no button does.
    return outer
