"""Three wrong passwords are not "cancelled": E-IMZO's -5000 stays, the reason says "wrong password" in the words the
vendor's e-imzo-init.js maps to "Пароль неверный.", and the journal tells a wrong password from a cancel.

A real agent answers real WebSocket calls; the askpass program types the wrong password (or cancels).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, Askpass, b64, make_askpass, mint, start_agent

DOCUMENT = b"wrong-password test document"
#: The agent, its askpass, the loaded key's id and the module's home (where the agent keeps its journal).
Setup = tuple[AgentProcess, Askpass, str, Path]


def vendor_message(reply: dict) -> str:
    """What the vendor's e-imzo-init.js shows for a failed call (shared/reference/eimzo-protocol.md, status codes:
    a `reason` containing "BadPaddingException" is shown as "Пароль неверный.", any other reason as it is)."""
    reason = reply.get("reason") or ""
    return "Пароль неверный." if "BadPaddingException" in reason else reason


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, isolated_module_dirs: Path) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("wrong-password")
    root = tmp / "flash"
    mint(tmp / "ca", root / "DSKEYS", "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    askpass = make_askpass(tmp)
    # The askpass cancels at the attempt named in the file "cancel_at", types the right password at the one in
    # "right_at", else the "password" file.
    askpass.program.write_text(askpass.program.read_text().replace(
        'echo "$EIMZO_AGENT_PROMPT_KIND',
        '[ "$EIMZO_AGENT_ATTEMPT" = "$(cat "$ASKPASS_DIR/cancel_at" 2>/dev/null)" ] && exit 1\n'
        'echo "$EIMZO_AGENT_PROMPT_KIND').replace(
        'answer=$(cat "$file")',
        f'answer=$(cat "$file"); [ "$EIMZO_AGENT_ATTEMPT" = "$(cat "$ASKPASS_DIR/right_at")" ] && answer={PASSWORD}'))
    agent = start_agent(tmp / "agent", "--askpass", str(askpass.program), "--key-root", str(root))
    try:
        entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
        loaded = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"], plugin="pfx")
        assert loaded["success"] is True, loaded
        yield agent, askpass, loaded["keyId"], isolated_module_dirs
    finally:
        agent.stop()


def journal(home: Path) -> list[dict]:
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache")}
    result = subprocess.run([sys.executable, "-m", "eimzo_agent", "journal", "--json"], capture_output=True,
                            text=True, timeout=60, check=True, env=dict(os.environ, **env))
    return [json.loads(line) for line in result.stdout.splitlines()]


def sign(setup: Setup, password: str, cancel_at: int | None = None, right_at: int | None = None) -> dict:
    agent, askpass, key_id, _ = setup
    askpass.clear()
    askpass.answer(password)
    (askpass.directory / "cancel_at").write_text(str(cancel_at or ""))
    (askpass.directory / "right_at").write_text(str(right_at or ""))
    return agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")


def test_three_wrong_passwords_read_as_wrong_password_not_cancel(setup: Setup) -> None:
    reply = sign(setup, "Wrong-Passw0rd")
    assert reply["success"] is False and reply["status"] == -5000  # E-IMZO's status, which pages already handle
    assert vendor_message(reply) == "Пароль неверный."
    assert reply["reason"].startswith("Пароль неверный")  # readable as it is, too
    assert [q.split()[:2] for q in setup[1].questions()] == [["password", "1"], ["password", "2"],
                                                             ["password", "3"]]
    last = journal(setup[3])[-1]
    assert (last["operation"], last["result"], last["failed_attempts"]) == ("pkcs7.create_pkcs7", "wrong_password", 3)


def test_a_cancel_after_a_wrong_password_stays_a_cancel(setup: Setup) -> None:
    reply = sign(setup, "Wrong-Passw0rd", cancel_at=2)
    assert reply == {"success": False, "status": -5000, "reason": "Ввод пароля отменен"}
    assert vendor_message(reply) == "Ввод пароля отменен"  # not "wrong password": the person gave up
    last = journal(setup[3])[-1]
    assert (last["result"], last["failed_attempts"]) == ("cancelled", 1)


def test_the_right_password_still_signs(setup: Setup) -> None:
    reply = sign(setup, PASSWORD)
    assert reply["success"] is True and reply["pkcs7_64"]
    assert (journal(setup[3])[-1]["result"], journal(setup[3])[-1]["failed_attempts"]) == ("signed", 0)


def test_wrong_passwords_before_a_signature_are_journaled(setup: Setup) -> None:
    reply = sign(setup, "Wrong-Passw0rd", right_at=3)
    assert reply["success"] is True
    last = journal(setup[3])[-1]
    assert (last["result"], last["failed_attempts"]) == ("signed", 2)
