"""The token-key chooser dialog (several keys on tokens, create_pkcs7 with "ckc"/"baikey") on a virtual screen."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from xsession import require_gui_tools, xvfb

from eimzo_agent.ui.prompter import PromptRequest
from eimzo_agent.ui.tk_dialog import TkPrompter

CHOICES = ("ALIYEV VALI (PINFL 31234567890123) — RSA TOKEN", "KARIMOVA NODIRA (PINFL 41234567890123) — EC TOKEN")


@pytest.mark.parametrize(("keys", "answer"), [(("Return",), "1"), (("Down", "Return"), "2"), (("Escape",), None)])
def test_choose_key_by_keyboard(monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...], answer: str | None) -> None:
    require_gui_tools("xwininfo")
    with xvfb() as screen, ThreadPoolExecutor(max_workers=1) as pool:
        monkeypatch.setenv("DISPLAY", screen.display)
        request = PromptRequest(kind="choose_key", site="https://portal.example.uz", key_label="",
                                operation="sign", language="en", choices=CHOICES)
        future = pool.submit(asyncio.run, TkPrompter(timeout=30).ask(request))
        window = screen.wait_window("^eimzo-agent")
        assert screen.wait_focus(window), "the chooser did not take the keyboard focus"
        screen.key(*keys)
        assert future.result(timeout=30) == answer
