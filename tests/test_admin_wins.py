"""The admin's settings win over what the person chose earlier.

- `[sites] ask_unknown_sites = false`: a site the person once allowed "always" (but the admin did not list) is
  refused; its approval stays on disk, unused, and `eimzo-agent sites` says it is blocked by the admin.
- `[passwords] allow_remember = false`: no dialog offers "remember", and the plugin layer keeps no password even
  when a prompter answers "remember"; `remember_max_minutes` caps every offered and every kept duration.
- Bad `[passwords]` values are refused at start, naming the file, the key and the expected form.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tkinter as tk
from pathlib import Path
from tkinter import ttk
from typing import Any

import pytest
from agent_harness import TEST_CONFIG, make_askpass, start_agent
from test_config_policy import hive
from xsession import XScreen

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.config import REG_DWORD, ConfigError, load_config
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.keys.disks import Disk
from eimzo_agent.keys.sessions import KeySessions
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
from eimzo_agent.ui.tk_password import build_password_dialog

PORTAL = "https://portal.example.uz"
LISTED = "https://listed.example.uz"
PASSWORD = "Test-Passw0rd-1"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


# --- ask_unknown_sites = false beats the person's earlier "always" ----------------------------------------------


def test_admin_policy_blocks_sites_the_person_allowed_always(tmp_path: Path) -> None:
    askpass = make_askpass(tmp_path)
    askpass.answer("always", "consent")
    env = dict(os.environ)
    agent = start_agent(tmp_path / "before", "--askpass", str(askpass.program), env=env)
    try:  # the person allows both sites "always", as they would in the dialog
        for site in (PORTAL, LISTED):
            assert agent.call("list_disks", plugin="pfx", origin=site)["success"] is True
    finally:
        agent.stop()

    admin = tmp_path / "admin.toml"
    admin.write_text('[sites]\nask_unknown_sites = false\nallowed_domains = ["listed.example.uz"]\n')
    env["EIMZO_AGENT_SYSTEM_CONFIG"] = str(admin)
    agent = start_agent(tmp_path / "after", "--askpass", str(askpass.program), env=env)
    try:
        askpass.clear()
        reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
        assert reply == {"success": False, "status": -1022,
                         "reason": i18n.text("ru", "reasons", "domain_not_allowed", domain="portal.example.uz")}
        assert agent.call("list_disks", plugin="pfx", origin=LISTED)["success"] is True  # the admin listed it
        assert askpass.questions() == []  # nobody is asked: the admin said so
    finally:
        agent.stop()

    # Kept on disk (it comes back if the admin allows asking again), shown as blocked.
    stored = json.loads((Path(env["XDG_DATA_HOME"]) / "eimzo-agent" / "consented-sites.json").read_text())
    assert PORTAL in stored["domains"]
    config = tmp_path / "user.toml"
    config.write_text(TEST_CONFIG)
    listing = cli(env, "sites", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith(PORTAL))
    assert line.endswith("consent (blocked by the administrator's settings)")
    listed = next(line for line in listing.stdout.splitlines() if line.startswith(LISTED))
    assert "blocked" not in listed
    rows = json.loads(cli(env, "sites", "--json", "--config", str(config)).stdout)
    assert {"domain": PORTAL, "source": "consent", "blocked_by_admin": True} in rows

    env.pop("EIMZO_AGENT_SYSTEM_CONFIG")  # the admin allows asking again: the person's answer counts again
    agent = start_agent(tmp_path / "again", "--askpass", str(askpass.program), env=env)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True
        assert askpass.questions() == []
    finally:
        agent.stop()
    assert "blocked" not in cli(env, "sites", "--config", str(config)).stdout


# --- [passwords]: allow_remember and remember_max_minutes ------------------------------------------------------


class Scripted:
    """A prompter that always answers the password with "remember for `seconds`" (as a dialog or a custom
    prompter could), recording each question."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.asked: list[PromptRequest] = []

    async def ask(self, request: PromptRequest) -> str | None:
        self.asked.append(request)
        return Answer(PASSWORD, self.seconds)


class Signing:
    """The real pfx and pkcs7 plugins over a real key file, with the admin's remember cap."""

    def __init__(self, tmp_path: Path, prompter: Scripted, remember_max_seconds: int) -> None:
        self.now = 0.0
        root = tmp_path / "flash"
        mint_key(ensure_dev_ca(tmp_path / "ca"), root / "DSKEYS", password=PASSWORD, alg="p256",
                 subject=SubjectFields(cn="ALIYEV VALI", pinfl="31234567890123"))
        self.passwords = PasswordMemory(clock=lambda: self.now, timers=False)
        unlocker = KeyUnlocker(prompter, self.passwords, 3, remember_max_seconds=remember_max_seconds)
        sessions = KeySessions()
        registry = Registry()
        registry.add_all(PfxPlugin(disks=lambda: [Disk(f"{root}/", root)], sessions=sessions, unlocker=unlocker,
                                   prompter=prompter, passwords=self.passwords).functions())
        registry.add_all(Pkcs7Plugin(sessions=sessions, unlocker=unlocker, tokens=TokenService([], prompter, 3),
                                     journal=None).functions())
        self.dispatcher = Dispatcher(registry, AllowAll(), SiteLanguages("en").for_caller)

    def call(self, plugin: str, name: str, *args: str) -> dict[str, Any]:
        frame = json.dumps({"plugin": plugin, "name": name, "arguments": list(args)})
        return json.loads(asyncio.run(self.dispatcher.handle(frame, CallContext.from_origin(PORTAL, 1))))

    def sign(self) -> dict[str, Any]:
        entry = self.call("pfx", "list_all_certificates")["certificates"][0]
        key_id = self.call("pfx", "load_key", entry["disk"], entry["path"], entry["name"], entry["alias"])["keyId"]
        return self.call("pkcs7", "create_pkcs7", "ZG9j", key_id, "no")


class AllowAll:
    def is_allowed(self, caller: Caller) -> bool:
        return True


def test_forbidden_remember_keeps_no_password_whatever_the_prompter_says(tmp_path: Path) -> None:
    prompter = Scripted(3600)
    signing = Signing(tmp_path, prompter, remember_max_seconds=0)
    assert signing.sign()["success"] is True
    assert prompter.asked[0].can_remember is False  # not offered
    assert len(signing.passwords) == 0  # and not kept although the answer said "remember for an hour"
    assert signing.sign()["success"] is True
    assert len(prompter.asked) == 2  # asked again


def test_remember_cap_limits_how_long_a_password_is_kept(tmp_path: Path) -> None:
    prompter = Scripted(6 * 3600)
    signing = Signing(tmp_path, prompter, remember_max_seconds=30 * 60)
    assert signing.sign()["success"] is True
    assert prompter.asked[0].can_remember and prompter.asked[0].remember_max_seconds == 30 * 60
    signing.now = 29 * 60
    assert signing.sign()["success"] is True and len(prompter.asked) == 1  # still remembered
    signing.now = 30 * 60 + 1
    assert signing.sign()["success"] is True and len(prompter.asked) == 2  # the cap, not the 6 hours asked for


def test_group_policy_sets_the_password_settings_too() -> None:
    """HKLM\\...\\passwords is read like the admin file's [passwords] (Windows; the registry given as a hive)."""
    config = load_config(policy=hive(passwords={"allow_remember": (0, REG_DWORD),
                                                "remember_max_minutes": (30, REG_DWORD)}))
    assert (config.allow_remember, config.remember_max_minutes) == (False, 30)
    with pytest.raises(ConfigError, match=r"passwords.*remember_max_minutes must be a whole number of minutes"):
        load_config(policy=hive(passwords={"remember_max_minutes": (0, REG_DWORD)}))


@pytest.mark.parametrize(("value", "expected"), [
    ("0", "passwords.remember_max_minutes must be a whole number of minutes from 1 to 360"),
    ("361", "passwords.remember_max_minutes must be a whole number of minutes from 1 to 360"),
    ('"30"', "passwords.remember_max_minutes"),
    ("30.5", "passwords.remember_max_minutes"),
])
def test_bad_remember_cap_is_refused_at_start(tmp_path: Path, value: str, expected: str) -> None:
    admin = tmp_path / "admin.toml"
    admin.write_text(f"[passwords]\nremember_max_minutes = {value}\n")
    env = dict(os.environ, EIMZO_AGENT_SYSTEM_CONFIG=str(admin))
    done = subprocess.run([sys.executable, "-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0",
                           "--no-tray"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode != 0
    assert str(admin) in done.stderr and expected in done.stderr, done.stderr


def test_allow_remember_must_be_true_or_false(tmp_path: Path) -> None:
    admin = tmp_path / "admin.toml"
    admin.write_text('[passwords]\nallow_remember = "no"\n')
    env = dict(os.environ, EIMZO_AGENT_SYSTEM_CONFIG=str(admin))
    done = cli(env, "serve", "--ws-port", "0", "--wss-port", "0", "--no-tray")
    assert done.returncode != 0 and str(admin) in done.stderr and "passwords.allow_remember" in done.stderr


# --- the real dialog -----------------------------------------------------------------------------------------


def _widgets(widget: tk.Misc) -> list[tk.Misc]:
    found = [widget]
    for child in widget.winfo_children():
        found += _widgets(child)
    return found


def _remember_offer(request: PromptRequest) -> tuple[bool, list[str]]:
    """(is "remember" offered, the durations offered) in the real Tk password dialog."""
    root = tk.Tk()
    try:
        build_password_dialog(root, lambda _answer: None, request)
        root.update()
        widgets = _widgets(root)
        label = i18n.text("en", "prompt", "remember")
        ticked = any(isinstance(w, ttk.Checkbutton) and w.cget("text") == label for w in widgets)
        combos = [w for w in widgets if isinstance(w, ttk.Combobox)]
        return ticked, [str(v) for v in combos[0].cget("values")] if combos else []
    finally:
        root.destroy()


def test_dialog_offers_only_what_the_admin_allows(tk_here: XScreen) -> None:
    t = lambda key, **kw: i18n.text("en", "prompt", key, **kw)  # noqa: E731
    base = dict(kind="password", site=PORTAL, key_label="ALIYEV VALI", operation="sign", language="en",
                can_remember=True)
    # in-process Tk: conftest.tk_here
    assert _remember_offer(PromptRequest(**base)) == (True, [t("remember_15m"), t("remember_1h"),
                                                             t("remember_6h")])
    assert _remember_offer(PromptRequest(**base, remember_max_seconds=30 * 60)) == (
        True, [t("remember_15m"), t("remember_minutes", count=30)])
    assert _remember_offer(PromptRequest(**base, remember_max_seconds=3600)) == (
        True, [t("remember_15m"), t("remember_1h")])
    # allow_remember = false: the plugin layer asks with can_remember False; nothing is offered.
    assert _remember_offer(PromptRequest(**{**base, "can_remember": False})) == (False, [])
