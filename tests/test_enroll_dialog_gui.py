"""The enrollment dialog (disk + new password twice) and the "choose_disk" chooser, on a virtual screen."""

from __future__ import annotations

import asyncio
import time
import tkinter as tk
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from tkinter import ttk

import pytest
from xsession import XScreen

from eimzo_agent import i18n
from eimzo_agent.ui.prompter import EnrollChoice, PromptRequest
from eimzo_agent.ui.tk_dialog import TkPrompter
from eimzo_agent.ui.tk_enroll import build_enroll_dialog

DISKS = ("/media/vali/FLASH1/", "/media/vali/FLASH2/")
NEW_PASSWORD = "NewPassw0rdXY"
DIALOG = "^eimzo-agent"


def enroll_request(choices: tuple[str, ...] = DISKS, kind: str = "enroll") -> PromptRequest:
    return PromptRequest(kind=kind, site="https://e-imzo.example.uz", key_label="TOSHMATOV ESHMAT",  # type: ignore[arg-type]
                         operation="enroll", language="en", choices=choices)


@pytest.fixture
def screen(tk_here: XScreen) -> XScreen:
    """The dialogs run inside this process: on the session's one screen (conftest.tk_here)."""
    return tk_here


def test_choose_disk_type_passwords_ok(screen) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, TkPrompter(timeout=30).ask_enroll(enroll_request()))
        window = screen.wait_window(DIALOG)
        assert screen.wait_focus(window), "the dialog did not take the keyboard focus"
        screen.key("Tab", "space")  # focus starts on the first disk: move to the second and choose it
        screen.key("Tab")
        screen.type(NEW_PASSWORD)
        screen.key("Tab")
        screen.type(NEW_PASSWORD)
        screen.key("Return")
        assert future.result(timeout=30) == EnrollChoice(DISKS[1], NEW_PASSWORD)


def test_mismatch_is_not_confirmed_by_enter_and_escape_cancels(screen) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, TkPrompter(timeout=30).ask_enroll(enroll_request(DISKS[:1])))
        window = screen.wait_window(DIALOG)
        assert screen.wait_focus(window)
        # One disk: it is chosen already and the focus is on the new password.
        screen.type(NEW_PASSWORD)
        screen.key("Tab")
        screen.type(NEW_PASSWORD + "x")
        screen.key("Return")  # half-filled: the dialog refuses it
        time.sleep(0.3)
        assert window in screen.find_windows(DIALOG) and not future.done()
        screen.key("Escape")
        assert future.result(timeout=30) is None


def test_choose_disk_question(screen) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, TkPrompter(timeout=30).ask(enroll_request(kind="choose_disk")))
        window = screen.wait_window(DIALOG)
        assert screen.wait_focus(window)
        assert screen.xdotool("getwindowname", str(window))
        screen.key("Down", "Return")
        assert future.result(timeout=30) == "2"


def _widgets(widget: tk.Misc) -> Iterator[tk.Misc]:
    for child in widget.winfo_children():
        yield child
        yield from _widgets(child)


def test_ok_is_enabled_only_for_a_complete_form(screen) -> None:
    """The button's own state, read from the real widgets: disk, rules and match all needed."""
    root = tk.Tk()
    answers: list[EnrollChoice | None] = []
    try:
        build_enroll_dialog(root, answers.append, enroll_request())
        widgets = list(_widgets(root))
        ok_text = i18n.text("en", "prompt", "enroll_ok")
        ok = next(w for w in widgets if isinstance(w, ttk.Button) and w.cget("text") == ok_text)
        radios = [w for w in widgets if isinstance(w, ttk.Radiobutton)]
        new, repeat = [w for w in widgets if isinstance(w, ttk.Entry)]
        labels = [str(w.cget("text")) for w in widgets if isinstance(w, ttk.Label)]
        assert [r.cget("text") for r in radios] == list(DISKS)
        assert i18n.text("en", "prompt", "enroll_pick_disk") in labels

        def disabled() -> bool:
            root.update()
            return ok.instate(["disabled"])

        assert disabled()
        new.insert(0, NEW_PASSWORD)
        repeat.insert(0, NEW_PASSWORD)
        assert disabled()  # no disk chosen yet
        radios[0].invoke()
        assert not disabled()
        labels = [str(w.cget("text")) for w in _widgets(root) if isinstance(w, ttk.Label)]
        assert i18n.text("en", "prompt", "enroll_target", path="/media/vali/FLASH1/DSKEYS") in labels
        repeat.insert("end", "x")
        assert disabled()  # entries differ
        new.delete(0, "end")
        new.insert(0, "short")
        repeat.delete(0, "end")
        repeat.insert(0, "short")
        assert disabled()  # rules not met
        for entry in (new, repeat):
            entry.delete(0, "end")
            entry.insert(0, NEW_PASSWORD)
        assert not disabled()
        ok.invoke()
        assert answers == [EnrollChoice(DISKS[0], NEW_PASSWORD)]
    finally:
        root.destroy()
