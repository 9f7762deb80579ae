"""Pieces both Tk dialogs share: look, the "who asks, whose key, what document" header, a password entry.

The header is the point of the dialog: people must see *which site* asks (the handshake's Origin, set apart in
a coloured band), *whose key* it is and *what* they are signing before they type a password.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import font as tkfont
from tkinter import ttk

from eimzo_agent import i18n
from eimzo_agent.ui.capslock import LOCK_MASK, caps_lock_on
from eimzo_agent.ui.details import group_hex
from eimzo_agent.ui.prompter import PromptRequest

BG = "#ffffff"
MUTED = "#5b6675"
SITE_BG = "#e8f0fe"
SITE_FG = "#0b3d91"
ERROR = "#b00020"
#: Background of the token's "last PIN try" warning: no other part of any dialog uses it.
DANGER_BG = "#fde3e6"
WARN_BG = "#fff4e0"
WARN_FG = "#7a4100"
OK_FG = "#1b7f3b"
PREVIEW_BG = "#f4f5f7"
#: Width of the value column: long names and sites wrap instead of widening the dialog.
WRAP = 400


@dataclass
class Fonts:
    base: tkfont.Font
    small: tkfont.Font
    strong: tkfont.Font
    heading: tkfont.Font
    site: tkfont.Font
    mono: tkfont.Font


def setup_style(root: tk.Tk) -> Fonts:
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")
    base = tkfont.nametofont("TkDefaultFont", root)
    base.configure(size=10)
    small = base.copy()
    small.configure(size=9)
    strong = base.copy()
    strong.configure(weight="bold")
    heading = base.copy()
    heading.configure(size=13, weight="bold")
    site = base.copy()
    site.configure(size=12, weight="bold")
    mono = tkfont.nametofont("TkFixedFont", root).copy()
    mono.configure(size=9)
    root.configure(background=BG)
    style.configure(".", background=BG, font=base)
    style.configure("TLabel", background=BG)
    style.configure("Muted.TLabel", foreground=MUTED)
    style.configure("Small.TLabel", foreground=MUTED, font=small)
    style.configure("Heading.TLabel", font=heading)
    style.configure("Site.TFrame", background=SITE_BG)
    style.configure("Site.TLabel", background=SITE_BG, foreground=SITE_FG, font=site)
    style.configure("SiteCaption.TLabel", background=SITE_BG, foreground=MUTED, font=small)
    style.configure("SiteOp.TLabel", background=SITE_BG, foreground="#1f2933")
    style.configure("Error.TLabel", foreground=ERROR, font=strong)
    style.configure("Danger.TLabel", background=DANGER_BG, foreground=ERROR, font=strong)
    style.configure("Warn.TFrame", background=WARN_BG)
    style.configure("Warn.TLabel", background=WARN_BG, foreground=WARN_FG)
    style.configure("Rule.TLabel", font=small)
    style.configure("RuleOk.TLabel", foreground=OK_FG, font=small)
    style.configure("RuleBad.TLabel", foreground=MUTED, font=small)
    style.configure("TCheckbutton", background=BG)
    style.map("TCheckbutton", background=[("active", BG)])
    style.configure("Accent.TButton", font=strong)
    return Fonts(base, small, strong, heading, site, mono)


def translator(request: PromptRequest) -> Callable[..., str]:
    return lambda key, **kw: i18n.text(request.language, "prompt", key, **kw)


def site_banner(parent: ttk.Frame, request: PromptRequest) -> ttk.Frame:
    """The requesting site in a coloured band, with the operation under it."""
    t = translator(request)
    band = ttk.Frame(parent, style="Site.TFrame", padding=(12, 8))
    ttk.Label(band, text=t("label_site"), style="SiteCaption.TLabel").pack(anchor="w")
    shown = t("consent_opaque_site") if request.opaque_site else (request.site or "?")
    ttk.Label(band, text=shown, style="Site.TLabel", wraplength=WRAP + 80).pack(anchor="w")
    ttk.Label(band, text=t("operation", operation=t(f"op_{request.operation}")), style="SiteOp.TLabel",
              wraplength=WRAP + 80).pack(anchor="w", pady=(2, 0))
    return band


def details_grid(parent: ttk.Frame, request: PromptRequest, fonts: Fonts) -> ttk.Frame:
    """Key owner (and key validity warning) and, when signing, the document."""
    t = translator(request)
    lang = request.language
    grid = ttk.Frame(parent)
    grid.columnconfigure(1, weight=1)
    row = 0

    def caption(text: str) -> None:
        ttk.Label(grid, text=text, style="Muted.TLabel").grid(row=row, column=0, sticky="nw", padx=(0, 12))

    caption(t("label_owner"))
    owner_box = ttk.Frame(grid)
    owner_box.grid(row=row, column=1, sticky="we")
    owner = request.owner
    if owner is None:
        ttk.Label(owner_box, text=request.key_label, font=fonts.strong, wraplength=WRAP).pack(anchor="w")
    else:
        ttk.Label(owner_box, text=owner.name, font=fonts.strong, wraplength=WRAP).pack(anchor="w")
        for line in (owner.id_line(lang), owner.org_line(lang), owner.validity_line(lang)):
            if line:
                ttk.Label(owner_box, text=line, wraplength=WRAP).pack(anchor="w")
        if owner.warning(lang):
            ttk.Label(owner_box, text="⚠ " + owner.warning(lang), style="Error.TLabel",
                      wraplength=WRAP).pack(anchor="w", pady=(2, 0))
    row += 1
    document = request.document
    if document is not None:
        ttk.Frame(grid, height=8).grid(row=row, column=0)
        row += 1
        caption(t("label_document"))
        doc_box = ttk.Frame(grid)
        doc_box.grid(row=row, column=1, sticky="we")
        if document.kind == "text":
            lines = max(document.text.count("\n") + 1, len(document.text) // 52 + 1)
            preview = tk.Text(doc_box, height=min(5, lines), width=52, wrap="word", font=fonts.base,
                              background=PREVIEW_BG, relief="flat", borderwidth=0, highlightthickness=1,
                              highlightbackground="#d8dce2", padx=6, pady=4,
                              takefocus=0, cursor="arrow")
            preview.insert("1.0", document.text)
            preview.configure(state="disabled")
            preview.pack(anchor="w", fill="x")
            more = t("doc_more", count=document.more_chars) if document.more_chars else ""
            ttk.Label(doc_box, text=" · ".join(p for p in (document.summary(lang), more) if p),
                      style="Small.TLabel").pack(anchor="w", pady=(2, 0))
        else:
            ttk.Label(doc_box, text=document.summary(lang), wraplength=WRAP).pack(anchor="w")
            for algorithm, digest in document.fingerprints:
                ttk.Label(doc_box, text=t("fingerprint", algorithm=algorithm), style="Small.TLabel").pack(anchor="w")
                grouped = group_hex(digest)
                half = len(grouped) // 2 + 1
                ttk.Label(doc_box, text=grouped[:half].strip() + "\n" + grouped[half:].strip(),
                          font=fonts.mono).pack(anchor="w")
    return grid


def retry_banner(parent: ttk.Frame, request: PromptRequest) -> ttk.Label | None:
    if not request.retry:
        return None
    t = translator(request)
    wrong = t("wrong_pin" if request.kind == "pin" else "wrong_password")
    left = t("attempts_left", count=request.max_attempts - request.attempt + 1)
    return ttk.Label(parent, text=f"✖ {wrong}. {left}", style="Error.TLabel", wraplength=WRAP + 80)


def pin_state_banner(parent: ttk.Frame, request: PromptRequest) -> ttk.Label | None:
    """The token's own warning for a PIN: its last try (red, bold) or earlier wrong PINs (the milder colours)."""
    if request.kind != "pin" or not (request.pin_final_try or request.pin_count_low):
        return None
    t = translator(request)
    if request.pin_final_try:
        return ttk.Label(parent, text="⚠ " + t("pin_final_try"), style="Danger.TLabel", wraplength=WRAP + 60,
                         padding=(10, 8))
    return ttk.Label(parent, text="⚠ " + t("pin_count_low"), style="Warn.TLabel", wraplength=WRAP + 60,
                     padding=(8, 4))


class SecretEntry:
    """A masked entry. Several may share one "show" switch; a Caps Lock warning is shown by the owner."""

    def __init__(self, parent: ttk.Frame, shown: tk.BooleanVar, on_key: Callable[[tk.Event], None]) -> None:
        self.shown = shown
        #: Traced by the change dialog: a StringVar also sees pasted text, which key events would miss.
        self.var = tk.StringVar(parent)
        self.entry = ttk.Entry(parent, textvariable=self.var, show="•", width=34, font=("TkDefaultFont", 11))
        self.entry.bind("<KeyPress>", on_key, add="+")
        self.entry.bind("<KeyRelease>", on_key, add="+")
        shown.trace_add("write", lambda *_: self.entry.configure(show="" if shown.get() else "•"))

    def get(self) -> str:
        return self.entry.get()

    def clear(self) -> None:
        self.entry.delete(0, "end")


class CapsLockWatch:
    """Keeps a warning label in step with Caps Lock: from the window system at first, then from key events.

    Grid the label where it belongs, then call `refresh()`: the label hides itself (keeping its place in the grid)
    while Caps Lock is off.
    """

    def __init__(self, root: tk.Tk, label: ttk.Label) -> None:
        self.root = root
        self.label = label
        self.on = bool(caps_lock_on())

    def on_key(self, event: tk.Event) -> None:
        if event.keysym == "Caps_Lock":
            # An event's state is the state *before* it; ask again once the key has done its work.
            self.root.after(60, self._recheck)
            return
        self.on = bool(int(event.state) & LOCK_MASK)
        self.refresh()

    def _recheck(self) -> None:
        state = caps_lock_on()
        if state is not None:
            self.on = state
            self.refresh()

    def refresh(self) -> None:
        if self.on:
            self.label.grid()
        else:
            self.label.grid_remove()


def button_row(parent: ttk.Frame, t: Callable[..., str], ok_text: str, on_ok: Callable[[], None],
               on_cancel: Callable[[], None]) -> tuple[ttk.Frame, ttk.Button]:
    row = ttk.Frame(parent)
    # Created in Tab order (OK, then Cancel), packed right to left so Cancel sits at the far right.
    ok = ttk.Button(row, text=ok_text, command=on_ok, style="Accent.TButton", default="active")
    cancel = ttk.Button(row, text=t("cancel"), command=on_cancel)
    cancel.pack(side="right")
    ok.pack(side="right", padx=(0, 8))
    return row, ok
