"""Site consent: an unknown site is asked about once — allow once, always, or deny — and can be revoked.

Only an explicit "deny" is remembered; a question cancelled or left to time out refuses that request only.
Answers are bound to scheme and host; an opaque origin ("null") is asked about on every connection, never
remembered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, Askpass, make_askpass, start_agent
from websockets.sync.client import connect

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
                         "reason": f"Пользователь этого компьютера не разрешил сайту {PORTAL} использовать ключи "
                                   "подписи."}
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
    assert {"domain": PORTAL, "source": "consent"} in listed

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


def slow_askpass(askpass: Askpass, seconds: float) -> None:
    program = askpass.program.read_text()
    askpass.program.write_text(program.replace('answer=$(cat "$file")', f'answer=$(cat "$file"); sleep {seconds}'))


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_an_unanswered_question_is_not_a_stored_denial(tmp_path: Path, askpass: Askpass, how: str) -> None:
    if how == "cancel":
        askpass.answer("CANCEL", "consent")
        config = TEST_CONFIG
    else:
        slow_askpass(askpass, 5)
        askpass.answer("always", "consent")
        config = TEST_CONFIG + "[ui]\nprompt_timeout_seconds = 1\n"
    agent = run(tmp_path, askpass, config=config)
    try:
        reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
        assert reply == {"success": False, "status": -1022,
                         "reason": f"Сайт {PORTAL} не может использовать ключи подписи: вопрос закрыт без ответа. "
                                   "Повторите попытку."}
        askpass.program.write_text(askpass.program.read_text().replace("sleep 5", "sleep 0"))
        askpass.answer("once", "consent")
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True  # asked again, allowed
        assert len(consent_questions(askpass)) == 2
    finally:
        agent.stop()


def test_a_page_that_leaves_does_not_fail_the_other_pages_waiting_for_the_same_question(
        tmp_path: Path, askpass: Askpass) -> None:
    slow_askpass(askpass, 2)
    askpass.answer("once", "consent")
    agent = run(tmp_path, askpass)
    try:
        results: list[dict] = []
        staying = threading.Thread(target=lambda: results.append(agent.call("list_disks", plugin="pfx",
                                                                             origin=PORTAL)))
        with connect(agent.url, origin=PORTAL, compression=None, open_timeout=10) as leaving:
            leaving.send(json.dumps({"plugin": "pfx", "name": "list_disks", "arguments": []}))
            time.sleep(0.5)  # the question is on screen now
            staying.start()
            time.sleep(0.5)  # the second request waits for the same question
        # The first page went away while the question was still open.
        staying.join(30)
        assert results and results[0]["success"] is True, results
        assert len(consent_questions(askpass)) == 1
    finally:
        agent.stop()


def test_an_answer_for_https_is_not_an_answer_for_http(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("always", "consent")
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True
        askpass.answer("deny", "consent")
        plain = PORTAL.replace("https://", "http://")
        assert agent.call("list_disks", plugin="pfx", origin=plain)["status"] == -1022
        assert consent_questions(askpass) == [f"consent 1 {PORTAL}", f"consent 1 {plain}"]
    finally:
        agent.stop()


def test_an_opaque_origin_is_asked_on_every_connection_and_never_remembered(tmp_path: Path,
                                                                           askpass: Askpass) -> None:
    consented = tmp_path / "home" / "data" / "eimzo-agent" / "consented-sites.json"
    consented.parent.mkdir(parents=True, exist_ok=True)
    consented.write_text(json.dumps({"version": 1, "domains": ["null"]}))  # as an earlier version could write
    askpass.answer("always", "consent")  # "always" is not offered for "null": taken as "this time"
    agent = run(tmp_path, askpass)
    try:
        assert agent.call("list_disks", plugin="pfx", origin="null")["success"] is True
        assert agent.call("list_disks", plugin="pfx", origin="null")["success"] is True
        assert consent_questions(askpass) == ["consent 1 null", "consent 1 null"]
        askpass.answer("deny", "consent")
        assert agent.call("list_disks", plugin="pfx", origin="null")["status"] == -1022
        askpass.answer("once", "consent")
        assert agent.call("list_disks", plugin="pfx", origin="null")["success"] is True  # a denial is not kept
    finally:
        agent.stop()


def test_a_denial_outlives_a_restart_is_listed_and_forgotten_with_sites_forget(tmp_path: Path,
                                                                               askpass: Askpass) -> None:
    agent = run(tmp_path, askpass)  # the askpass answers "deny"
    try:
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
    finally:
        agent.stop()
    askpass.answer("once", "consent")
    agent = run(tmp_path, askpass)
    try:
        # Still refused after the restart, with the reason that the person refused, and not asked again.
        reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
        assert reply["status"] == -1022 and "не разрешил" in reply["reason"] and "API" not in reply["reason"]
        assert consent_questions(askpass) == [f"consent 1 {PORTAL}"]
        assert {"domain": PORTAL, "source": "denied"} in json.loads(cli("sites", "--json").stdout)
        forgot = cli("sites", "forget", "portal.example.uz")
        assert forgot.returncode == 0 and "portal.example.uz" in forgot.stdout
        # The running agent notices: the site is asked again (and allowed this time).
        assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["success"] is True
        assert consent_questions(askpass) == [f"consent 1 {PORTAL}", f"consent 1 {PORTAL}"]
    finally:
        agent.stop()
    assert {"domain": PORTAL, "source": "denied"} not in json.loads(cli("sites", "--json").stdout)
    journal = [json.loads(line) for line in cli("journal", "--json").stdout.splitlines()]
    assert [(e["site"], e["operation"], e["result"]) for e in journal] == [
        (PORTAL, "consent", "denied"), (PORTAL, "consent", "denial_forgotten")]
    text = cli("journal").stdout.splitlines()  # a consent answer names no key or document: no "serial ?"
    assert [line.split()[2:] for line in text] == [["denied", PORTAL, "consent"],
                                                   ["denial_forgotten", PORTAL, "consent"]]


def test_repeated_cancels_answer_wait_n_seconds_in_the_persons_language(tmp_path: Path, askpass: Askpass) -> None:
    askpass.answer("CANCEL", "consent")
    agent = run(tmp_path, askpass, config=TEST_CONFIG + '[ui]\nlanguage = "uz"\n')
    try:
        for _ in range(3):  # the prompt queue's default: three cancels within a minute
            assert agent.call("list_disks", plugin="pfx", origin=PORTAL)["status"] == -1022
        reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
        assert reply["success"] is False and reply["status"] == -5001
        assert reply["reason"].startswith("Amal bekor qilindi: ushbu sayt savollari bir necha marta bekor qilindi.")
        seconds = int(reply["reason"].split("bekor qilindi. ")[1].split(" soniya kuting")[0])
        assert 50 <= seconds <= 60
        assert len(consent_questions(askpass)) == 3  # refused without a question
    finally:
        agent.stop()
