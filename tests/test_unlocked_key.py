"""The decrypted key kept within the person's "remember for this site" window (issue 14, item 2).

E-IMZO keeps a loaded key for hours and signs silently; we keep nothing unless the person ticks "remember", and then
keep the opened key beside the remembered password so a portal's create_pkcs7 loop signs at key speed. These tests
check the lifetime, not the speed (bench/ measures that): the key is kept only with a remembered password, is used
only while the file has the same bytes, and is let go at expiry, on the page's unload_key and on "forget".
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agent_harness import PASSWORD, b64, make_askpass, mint, start_agent

from eimzo_agent.caller import Caller
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.keys.disks import Disk
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.plugins.hardware import TokenService
from eimzo_agent.plugins.keyuse import KeyUnlocker
from eimzo_agent.plugins.pfx import PfxPlugin
from eimzo_agent.plugins.pkcs7 import Pkcs7Plugin
from eimzo_agent.policy.languages import SiteLanguages
from eimzo_agent.protocol.dispatcher import CallContext, Dispatcher
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.ui.prompter import Answer, PromptRequest
from eimzo_agent.ui.remember import PasswordMemory

PORTAL = "https://soliq.example.uz"
OTHER = "https://other.example.uz"


class Remembering:
    """Answers every password question with "remember for `seconds`", as the dialog's checkbox does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.asked: list[PromptRequest] = []

    async def ask(self, request: PromptRequest) -> str | None:
        self.asked.append(request)
        return Answer(PASSWORD, self.seconds)


class AllowAll:
    def is_allowed(self, caller: Caller) -> bool:
        return True


class Plugins:
    """The real pfx and pkcs7 plugins over a real key file, a clock the test moves."""

    def __init__(self, tmp_path: Path, seconds: float = 900) -> None:
        self.now = 0.0
        self.root = tmp_path / "flash"
        self.file = mint_key(ensure_dev_ca(tmp_path / "ca"), self.root / "DSKEYS", password=PASSWORD, alg="p256",
                             subject=SubjectFields(cn="ALIYEV VALI", pinfl="31234567890123"))
        self.prompter = Remembering(seconds)
        self.passwords = PasswordMemory(clock=lambda: self.now, timers=False)
        unlocker = KeyUnlocker(self.prompter, self.passwords, 3)
        sessions = KeySessions()
        registry = Registry()
        registry.add_all(PfxPlugin(disks=lambda: [Disk(f"{self.root}/", self.root)], sessions=sessions,
                                   unlocker=unlocker, prompter=self.prompter, passwords=self.passwords).functions())
        registry.add_all(Pkcs7Plugin(sessions=sessions, unlocker=unlocker, tokens=TokenService([], self.prompter, 3),
                                     journal=None).functions())
        self.dispatcher = Dispatcher(registry, AllowAll(), SiteLanguages("en").for_caller)

    def call(self, plugin: str, name: str, *args: str, origin: str = PORTAL) -> dict[str, Any]:
        frame = json.dumps({"plugin": plugin, "name": name, "arguments": list(args)})
        return json.loads(asyncio.run(self.dispatcher.handle(frame, CallContext.from_origin(origin, 1))))

    def load(self, origin: str = PORTAL) -> str:
        entry = self.call("pfx", "list_all_certificates", origin=origin)["certificates"][0]
        return self.call("pfx", "load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                         origin=origin)["keyId"]

    def sign(self, key_id: str, origin: str = PORTAL) -> dict[str, Any]:
        return self.call("pkcs7", "create_pkcs7", b64(b"invoice 42"), key_id, "no", origin=origin)


def test_the_opened_key_is_kept_only_with_a_remembered_password(tmp_path: Path) -> None:
    plugins = Plugins(tmp_path, seconds=0)  # the person did not tick "remember"
    key_id = plugins.load()
    assert plugins.sign(key_id)["success"] is True
    assert plugins.passwords.holds_unlocked() == 0 and len(plugins.passwords) == 0
    assert plugins.sign(key_id)["success"] is True and len(plugins.prompter.asked) == 2


def test_kept_key_signs_the_loop_and_goes_at_expiry(tmp_path: Path) -> None:
    plugins = Plugins(tmp_path, seconds=900)
    key_id = plugins.load()
    first = plugins.sign(key_id)
    assert first["success"] is True and plugins.passwords.holds_unlocked() == 1
    for _ in range(5):
        again = plugins.sign(key_id)
        assert again["success"] is True and again["signer_serial_number"] == first["signer_serial_number"]
    assert len(plugins.prompter.asked) == 1
    other = plugins.load(OTHER)  # another site gets neither the password nor the key
    assert plugins.sign(other, OTHER)["success"] is True and len(plugins.prompter.asked) == 2
    assert plugins.passwords.holds_unlocked() == 2
    plugins.now = 901  # both windows are over: both keys are let go, the next signature asks
    assert plugins.passwords.holds_unlocked() == 0
    assert plugins.sign(key_id)["success"] is True and len(plugins.prompter.asked) == 3


def test_unload_key_lets_go_of_the_key_but_not_of_the_remembered_password(tmp_path: Path) -> None:
    plugins = Plugins(tmp_path)
    key_id = plugins.load()
    assert plugins.sign(key_id)["success"] is True and plugins.passwords.holds_unlocked() == 1
    assert plugins.call("pfx", "unload_key", key_id)["success"] is True
    assert plugins.passwords.holds_unlocked() == 0 and len(plugins.passwords) == 1
    again = plugins.load()  # the person's "remember" still holds: no question, the key is opened and kept again
    assert plugins.sign(again)["success"] is True and len(plugins.prompter.asked) == 1
    assert plugins.passwords.holds_unlocked() == 1


def test_forget_all_lets_go_of_every_kept_key(tmp_path: Path) -> None:
    plugins = Plugins(tmp_path)
    key_id = plugins.load()
    assert plugins.sign(key_id)["success"] is True and plugins.passwords.holds_unlocked() == 1
    assert plugins.passwords.forget_all() == 1  # the tray's "forget remembered passwords", and the agent's exit
    assert plugins.passwords.holds_unlocked() == 0
    assert plugins.sign(key_id)["success"] is True and len(plugins.prompter.asked) == 2


def test_a_key_file_changed_meanwhile_is_opened_afresh(tmp_path: Path) -> None:
    plugins = Plugins(tmp_path)
    key_id = plugins.load()
    assert plugins.sign(key_id)["success"] is True
    # Another program gives the file a new password; the kept key and the remembered password are both stale.
    from eimzo_agent.keys.key_file_writer import change_key_file_password
    alias = plugins.call("pfx", "list_all_certificates")["certificates"][0]["alias"]
    change_key_file_password(plugins.file, alias, PASSWORD, "New-Passw0rd-22")
    plugins.prompter.asked.clear()
    reply = plugins.sign(key_id)  # asks (the kept key is not used for a file with other bytes) and fails the
    assert reply["success"] is False and reply["status"] == -5000  # old password three times
    assert len(plugins.prompter.asked) == 3


def test_askpass_may_ask_to_remember_and_the_agent_then_signs_without_asking(tmp_path: Path) -> None:
    """Over a real WebSocket: an askpass program answers `remember=SECONDS` on a second line where offered."""
    keys = tmp_path / "keys"
    mint(tmp_path / "ca", keys / "DSKEYS", "p256", "--cn", "ALIYEV VALI")
    askpass = make_askpass(tmp_path)
    program = askpass.program
    program.write_text(program.read_text().replace(
        'echo "$EIMZO_AGENT_PROMPT_KIND', 'echo "max=$EIMZO_AGENT_REMEMBER_MAX $EIMZO_AGENT_PROMPT_KIND'))
    askpass.answer(f"{PASSWORD}\nremember=600")
    agent = start_agent(tmp_path / "agent", "--askpass", str(program), "--key-root", str(keys))
    try:
        entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
        key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                            plugin="pfx")["keyId"]
        replies = [agent.call("create_pkcs7", b64(b"act %d" % n), key_id, "no", plugin="pkcs7") for n in range(4)]
        assert all(r["success"] for r in replies), replies
        questions = [q for q in askpass.questions() if " password " in q]
        assert len(questions) == 1 and questions[0].startswith("max=21600 password"), askpass.questions()
        # verify_password always asks, and is never offered "remember"
        assert agent.call("verify_password", key_id, plugin="pfx")["success"] is True
        assert askpass.questions()[-1].startswith("max= password")
    finally:
        agent.stop()
