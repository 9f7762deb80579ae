"""Rules that hold whichever prompter asks and whichever site calls, checked through the real agent (a subprocess
speaking E-IMZO's protocol, an askpass program answering): new-password rules for askpass programs too, and a
site's language choice staying with that site."""

from __future__ import annotations

from pathlib import Path

from agent_harness import PASSWORD, b64, make_askpass, mint, start_agent

from eimzo_agent import i18n
from eimzo_agent.keys.pkcs12 import open_pfx


def test_an_askpass_program_cannot_set_a_new_password_that_breaks_the_rules(tmp_path: Path) -> None:
    root = tmp_path / "flash"
    pfx = mint(tmp_path / "ca", root, "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    before = pfx.read_bytes()
    askpass = make_askpass(tmp_path)
    askpass.answer("weak", "new_password")
    askpass.answer("weak", "repeat_new_password")
    agent = start_agent(tmp_path / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    try:
        entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
        key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                            plugin="pfx")["keyId"]
        reply = agent.call("change_password", key_id, plugin="pfx")
        assert reply["success"] is False and reply["status"] == -9999
        assert reply["reason"].startswith("Новый пароль не соответствует требованиям: ")
        assert i18n.text("ru", "prompt", "rule_length") in reply["reason"]
        assert pfx.read_bytes() == before
        open_pfx(pfx.read_bytes(), PASSWORD)  # the old password still opens it
        strong = "Yangi-Parol-2026"
        askpass.answer(strong, "new_password")
        askpass.answer(strong, "repeat_new_password")
        assert agent.call("change_password", key_id, plugin="pfx")["success"] is True
        open_pfx(pfx.read_bytes(), strong)
    finally:
        agent.stop()


def test_a_sites_language_choice_does_not_change_other_sites(tmp_path: Path) -> None:
    root = tmp_path / "flash"
    mint(tmp_path / "ca", root, "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    askpass = make_askpass(tmp_path)
    askpass.answer("CANCEL")
    agent = start_agent(tmp_path / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    uzbek, other = "http://localhost:7101", "http://localhost:7102"
    try:
        assert agent.call("change_ui_lang", "uz", plugin="app", origin=uzbek)["message"] == "uz_UZ"
        for origin, lang in ((uzbek, "uz"), (other, "ru")):
            entry = agent.call("list_all_certificates", plugin="pfx", origin=origin)["certificates"][0]
            key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                plugin="pfx", origin=origin)["keyId"]
            reply = agent.call("create_pkcs7", b64(b"doc"), key_id, "no", plugin="pkcs7", origin=origin)
            assert reply["reason"] == i18n.text(lang, "reasons", "password_cancelled"), origin
    finally:
        agent.stop()
