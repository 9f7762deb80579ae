"""Plugins built from their narrow services alone — no composition root, no sockets: a real key file, real key
sessions and password memory, and a prompter the test scripts. This is where the business rules live, so they
are checked here whatever prompter (dialog or askpass program) asks the person.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.keys.disks import Disk
from eimzo_agent.keys.pkcs12 import open_pfx
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.plugins.app import AppPlugin
from eimzo_agent.plugins.hardware import TokenService
from eimzo_agent.plugins.keyuse import KeyUnlocker
from eimzo_agent.plugins.pfx import PfxPlugin
from eimzo_agent.plugins.pkcs7 import Pkcs7Plugin
from eimzo_agent.policy.languages import SiteLanguages
from eimzo_agent.protocol.calls import CallContext
from eimzo_agent.protocol.dispatcher import Dispatcher
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.ui.prompter import Answer, PromptRequest
from eimzo_agent.ui.remember import PasswordMemory

PASSWORD = "Old-Passw0rd-1"


class Scripted:
    """Answers questions from a list, in order; records each question."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.asked: list[PromptRequest] = []

    async def ask(self, request: PromptRequest) -> str | None:
        self.asked.append(request)
        return self.answers.pop(0) if self.answers else None


class Plugins:
    def __init__(self, tmp_path: Path, prompter: Scripted) -> None:
        ca = ensure_dev_ca(tmp_path / "ca")
        self.root = tmp_path / "flash"
        self.file = mint_key(ca, self.root / "DSKEYS", password=PASSWORD, alg="p256",
                             subject=SubjectFields(cn="ALIYEV VALI", pinfl="31234567890123"))
        self.prompter = prompter
        self.passwords = PasswordMemory(timers=False)
        self.sessions = KeySessions()
        self.languages = SiteLanguages("en")
        unlocker = KeyUnlocker(prompter, self.passwords, tries=3)
        tokens = TokenService([], prompter, 3)
        registry = Registry()
        for plugin in (
            PfxPlugin(disks=lambda: [Disk(f"{self.root}/", self.root)], sessions=self.sessions, unlocker=unlocker,
                      prompter=prompter, passwords=self.passwords),
            Pkcs7Plugin(sessions=self.sessions, unlocker=unlocker, tokens=tokens, journal=None),
            AppPlugin(self.languages),
        ):
            registry.add_all(plugin.functions())
        # Every caller allowed: the gate is not what these tests are about.
        self.dispatcher = Dispatcher(registry, AllowAll(), self.languages.for_caller)

    def call(self, origin: str, plugin: str, name: str, *args: str, connection: int = 1) -> dict[str, Any]:
        frame = json.dumps({"plugin": plugin, "name": name, "arguments": list(args)})
        return json.loads(asyncio.run(self.dispatcher.handle(frame, CallContext.from_origin(origin, connection))))

    def load(self, origin: str) -> str:
        entry = self.call(origin, "pfx", "list_all_certificates")["certificates"][0]
        reply = self.call(origin, "pfx", "load_key", entry["disk"], entry["path"], entry["name"], entry["alias"])
        return reply["keyId"]


class AllowAll:
    def is_allowed(self, caller: Caller) -> bool:
        return True


def test_a_remember_ticked_on_an_opaque_page_is_never_kept(tmp_path: Path) -> None:
    """"null" is every sandboxed frame on the Internet: a remembered password for it would let any site sign."""
    prompter = Scripted(Answer(PASSWORD, 3600), Answer(PASSWORD, 3600))
    plugins = Plugins(tmp_path, prompter)
    key_id = plugins.load("null")
    assert plugins.call("null", "pkcs7", "create_pkcs7", "ZG9j", key_id, "no")["success"] is True
    assert prompter.asked[0].can_remember is False and prompter.asked[0].opaque_site
    assert len(plugins.passwords) == 0
    assert plugins.call("null", "pkcs7", "create_pkcs7", "ZG9j", key_id, "no")["success"] is True
    assert len(prompter.asked) == 2, "the second signature must ask again"


def test_a_remember_ticked_on_a_real_site_is_kept_for_that_origin_only(tmp_path: Path) -> None:
    prompter = Scripted(Answer(PASSWORD, 3600), None)
    plugins = Plugins(tmp_path, prompter)
    site = "https://hujjat.example.uz"
    key_id = plugins.load(site)
    assert plugins.call(site, "pkcs7", "create_pkcs7", "ZG9j", key_id, "no")["success"] is True
    assert plugins.call(site, "pkcs7", "create_pkcs7", "ZG9j", key_id, "no")["success"] is True
    assert len(prompter.asked) == 1  # remembered
    plain = "http://hujjat.example.uz"
    other_key = plugins.load(plain)
    assert plugins.call(plain, "pkcs7", "create_pkcs7", "ZG9j", other_key, "no")["status"] == -5000
    assert len(prompter.asked) == 2  # the http page is asked (and cancels)


@pytest.mark.parametrize(("new", "broken"), [
    ("short1Aab", ["rule_length", "rule_upper"]),
    ("nouppercase-123", ["rule_upper"]),
    ("Кириллица-AAbb-12", ["rule_ascii"]),
])
def test_new_password_rules_hold_for_an_askpass_style_prompter(tmp_path: Path, new: str,
                                                                broken: list[str]) -> None:
    """The dialog shows E-IMZO's rules; a prompter without a dialog (askpass) is held to them here."""
    prompter = Scripted(PASSWORD, new, new)
    plugins = Plugins(tmp_path, prompter)
    before = plugins.file.read_bytes()
    key_id = plugins.load("http://localhost:1")
    reply = plugins.call("http://localhost:1", "pfx", "change_password", key_id)
    rules = "; ".join(i18n.text("en", "prompt", rule) for rule in broken)
    assert reply == {"success": False, "status": -9999,
                     "reason": f"The new password does not meet the requirements: {rules}."}
    assert plugins.file.read_bytes() == before
    assert [q.kind for q in prompter.asked] == ["password", "new_password", "repeat_new_password"]


def test_a_good_new_password_is_accepted(tmp_path: Path) -> None:
    prompter = Scripted(PASSWORD, "New-Passw0rd-22", "New-Passw0rd-22")
    plugins = Plugins(tmp_path, prompter)
    key_id = plugins.load("http://localhost:1")
    assert plugins.call("http://localhost:1", "pfx", "change_password", key_id)["success"] is True
    open_pfx(plugins.file.read_bytes(), "New-Passw0rd-22")


def test_a_sites_language_choice_changes_only_its_own_replies_and_dialogs(tmp_path: Path) -> None:
    prompter = Scripted(None, None)
    plugins = Plugins(tmp_path, prompter)
    uz_site, other = "https://uz.example.uz", "https://other.example.uz"
    assert plugins.call(uz_site, "app", "change_ui_lang", "uz") == {"success": True, "status": 1, "message": "uz_UZ"}
    uz_key, other_key = plugins.load(uz_site), plugins.load(other)
    uz_reply = plugins.call(uz_site, "pkcs7", "create_pkcs7", "ZG9j", uz_key, "no")
    other_reply = plugins.call(other, "pkcs7", "create_pkcs7", "ZG9j", other_key, "no")
    assert uz_reply["reason"] == i18n.text("uz", "reasons", "password_cancelled")
    assert other_reply["reason"] == i18n.text("en", "reasons", "password_cancelled")
    assert [q.language for q in prompter.asked] == ["uz", "en"]
    assert plugins.languages.default == "en"  # the person's own choice is untouched
