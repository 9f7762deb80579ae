"""Site consent: an unknown site is asked about once — allow once, always, or deny — and can be revoked."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, Askpass, make_askpass, start_agent

PORTAL = "https://portal.example.uz"


@pytest.fixture
def askpass(tmp_path: Path) -> Askpass:
    return make_askpass(tmp_path)


def run(tmp_path: Path, askpass: Askpass, config: str = TEST_CONFIG) -> AgentProcess:
    return start_agent(tmp_path / "agent", "--askpass", str(askpass.program), config=config)


def consent_questions(askpass: Askpass) -> list[str]:
    return [q for q in askpass.questions() if q.startswith("consent ")]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_denied_site_gets_1022_and_is_not_asked_again(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("deny", "consent")
    agent = run(tmp_path, askpass)
    try:
        reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
        assert reply == {"success": False, "status": -1022,
                         "reason": "API-key для домена portal.example.uz недействителен."}
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
        assert consent_questions(askpass) == [f"consent 1 {PORTAL}"]
    finally:
        agent.stop()


def test_allow_once_lasts_until_restart(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("once", "consent")
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL + ":8443")["success"] is True  # same domain
        assert len(consent_questions(askpass)) == 1
    finally:
        agent.stop()
    askpass.answer("deny", "consent")
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
    finally:
        agent.stop()


def test_always_is_remembered_listed_and_revocable(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("always", "consent")
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True
    finally:
        agent.stop()
    listed = json.loads(cli("sites", "--json").stdout)
    assert {"domain": "portal.example.uz", "source": "consent"} in listed

    askpass.clear()
    askpass.answer("deny", "consent")
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True  # remembered
        assert consent_questions(askpass) == []
        revoked = cli("sites", "revoke", "portal.example.uz")
        assert revoked.returncode == 0 and "revoked portal.example.uz" in revoked.stdout
        # The running agent notices the revocation: asked again, denied this time.
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
        assert consent_questions(askpass) == [f"consent 1 {PORTAL}"]
    finally:
        agent.stop()
    assert cli("sites", "revoke", "portal.example.uz").returncode == 1


def test_admin_can_turn_the_question_off(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("always", "consent")
    agent = run(tmp_path, askpass, config=TEST_CONFIG + "[sites]\nask_unknown_sites = false\n")
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
        assert consent_questions(askpass) == []
    finally:
        agent.stop()


def test_concurrent_requests_of_one_site_share_one_question(tmp_path: Path, askpass: Askpass) -> None:
    program = askpass.program.read_text()
    askpass.program.write_text(program.replace('answer=$(cat "$file")', 'answer=$(cat "$file"); sleep 0.5'))
    askpass.answer("once", "consent")
    agent = run(tmp_path, askpass)
    results: list[dict] = []
    try:
        threads = [threading.Thread(target=lambda: results.append(agent.call("list_disks", plugin="pfx",
                                                                                origin=PORTAL)))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [r["success"] for r in results] == [True] * 4
        assert len(consent_questions(askpass)) == 1
    finally:
        agent.stop()
