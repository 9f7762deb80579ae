"""A token's own PIN count through the real agent: the last try is never spent without a warning.

SoftHSM never locks, so its tokens are used through tests/pkcs11_shim/pin_counter.c (compiled here), which counts
wrong PINs per token like a hardware token: COUNT_LOW after one, FINAL_TRY with one left, then LOCKED and
CKR_PIN_LOCKED. The askpass program answers from a queue and records what the agent told it, so each test sees
exactly which questions were asked and with which warning; pkcs11-tool, through the same module, plays "another
program using the token" and reads the token's flags independently of the agent.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, b64, start_agent
from softhsm import MODULE, PIN, PinCounter, make_pin_counter, make_softhsm, mint_pfx

from eimzo_agent import i18n

DOCUMENT = "Oxirgi urinish. Последняя попытка.".encode()
TOKENS = ("FINAL TRY", "LOCK ME", "COUNT LOW", "RACE", "SILENT")

ASKPASS = """#!{python}
# Test askpass: answers from answers.json (a queue; empty = Cancel), records its EIMZO_AGENT_* environment.
# An answer {{"before": [argv], "answer": "..."}} first runs argv: another program using the token meanwhile.
import json, os, subprocess, sys
from pathlib import Path

here = Path(__file__).parent
queue = json.loads((here / "answers.json").read_text())
answer = queue.pop(0) if queue else "CANCEL"
(here / "answers.json").write_text(json.dumps(queue))
with (here / "questions.jsonl").open("a") as log:
    log.write(json.dumps({{k: v for k, v in os.environ.items() if k.startswith("EIMZO_AGENT_")}}) + "\\n")
if isinstance(answer, dict):
    subprocess.run(answer["before"], capture_output=True, check=False)
    answer = answer["answer"]
if answer == "CANCEL":
    sys.exit(1)
print(answer)
"""


@dataclass
class Askpass:
    directory: Path

    @property
    def program(self) -> Path:
        return self.directory / "askpass.py"

    def will_answer(self, *answers: Any) -> None:
        (self.directory / "answers.json").write_text(json.dumps(list(answers)))
        (self.directory / "questions.jsonl").unlink(missing_ok=True)

    def questions(self) -> list[dict[str, str]]:
        log = self.directory / "questions.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def states(self) -> list[str]:
        """EIMZO_AGENT_PIN_STATE of every question asked ("" when the question carried no warning)."""
        questions = self.questions()
        assert all(q["EIMZO_AGENT_PROMPT_KIND"] == "pin" for q in questions), questions
        return [q.get("EIMZO_AGENT_PIN_STATE", "") for q in questions]


def make_askpass(directory: Path) -> Askpass:
    directory.mkdir(parents=True)
    askpass = Askpass(directory)
    askpass.program.write_text(ASKPASS.format(python=sys.executable))
    askpass.program.chmod(0o755)
    askpass.will_answer()
    return askpass


@dataclass
class Setup:
    tmp: Path
    counter: PinCounter
    askpass: Askpass
    agent: AgentProcess

    def load(self, token: str, agent: AgentProcess | None = None) -> str:
        agent = agent or self.agent
        keys = {k["tokenLabel"]: k for k in agent.call("list_keys", plugin="token")["keys"]}
        reply = agent.call("load_key", keys[token]["tokenId"], keys[token]["alias"], plugin="token")
        assert reply["success"] is True, reply
        return reply["keyId"]

    def sign(self, key_id: str, agent: AgentProcess | None = None) -> dict[str, Any]:
        return (agent or self.agent).call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")

    def verify(self, reply: dict[str, Any]) -> None:
        assert reply["success"] is True, reply
        (self.tmp / "sig.p7s").write_bytes(base64.b64decode(reply["pkcs7_64"]))
        result = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                                 str(self.tmp / "sig.p7s"), "-CAfile", str(self.tmp / "ca" / "ca.crt.pem"),
                                 "-out", str(self.tmp / "out.bin")], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
        assert (self.tmp / "out.bin").read_bytes() == DOCUMENT


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    assert Path(MODULE).is_file(), "softhsm2 is not installed (scripts/bootstrap.sh --test installs it)"
    tmp = tmp_path_factory.mktemp("pin-tries")
    hsm = make_softhsm(tmp / "hsm")
    for number, token in enumerate(TOKENS, 1):
        hsm.add_token(token)
        pfx = mint_pfx(tmp / "ca", tmp / "pfx", "p256", f"URINISH {token}", f"3555555555555{number}")
        hsm.import_key(token, pfx, "Token-Passw0rd", f"0{number}", token.lower())
    counter = make_pin_counter(tmp / "shim", hsm)
    askpass = make_askpass(tmp / "askpass")
    agent = start_agent(tmp / "agent", "--askpass", str(askpass.program), "--pkcs11-module", str(counter.module),
                        env=counter.env())
    try:
        yield Setup(tmp, counter, askpass, agent)
    finally:
        agent.stop()


def reason(key: str) -> str:
    return i18n.text("ru", "reasons", key)


CANCELLED = {"success": False, "status": -5000, "reason": "Ввод пароля отменен"}


def test_last_try_is_asked_with_a_warning_and_a_cancel_spends_nothing(setup: Setup) -> None:
    key_id = setup.load("FINAL TRY")
    # Two wrong PINs, then the token's last try: the third question says so, and the person cancels.
    setup.askpass.will_answer("0000", "0000", "CANCEL")
    assert setup.sign(key_id) == CANCELLED
    assert setup.askpass.states() == ["", "count_low", "final_try"]
    last = setup.askpass.questions()[-1]
    warning = i18n.text(last["EIMZO_AGENT_LANGUAGE"], "prompt", "pin_final_try")
    assert warning in last["EIMZO_AGENT_PROMPT"]
    assert i18n.text(last["EIMZO_AGENT_LANGUAGE"], "prompt", "attempts_left", count=1) in last["EIMZO_AGENT_PROMPT"]
    assert "final user PIN try" in setup.counter.flags("FINAL TRY")

    # The next request starts on the last try: asked with the warning at once; a cancel spends nothing.
    setup.askpass.will_answer("CANCEL")
    assert setup.sign(key_id) == CANCELLED
    assert setup.askpass.states() == ["final_try"]
    assert warning in setup.askpass.questions()[0]["EIMZO_AGENT_PROMPT"]
    flags = setup.counter.flags("FINAL TRY")
    assert "final user PIN try" in flags and "locked" not in flags

    # The right PIN on the last try signs, and the token's count starts again.
    setup.askpass.will_answer(PIN)
    setup.verify(setup.sign(key_id))
    assert setup.askpass.states() == ["final_try"]
    assert "PIN try" not in setup.counter.flags("FINAL TRY")
    setup.askpass.will_answer(PIN)
    setup.verify(setup.sign(key_id))
    assert setup.askpass.states() == [""]


def test_wrong_pin_on_the_last_try_locks_and_later_requests_are_refused_at_once(setup: Setup) -> None:
    key_id = setup.load("LOCK ME")
    setup.askpass.will_answer("0000", "0000", "0000")
    assert setup.sign(key_id) == {"success": False, "status": -9999, "reason": reason("pin_locked")}
    assert setup.askpass.states() == ["", "count_low", "final_try"]
    assert "user PIN locked" in setup.counter.flags("LOCK ME")
    setup.askpass.will_answer(PIN)
    assert setup.sign(key_id) == {"success": False, "status": -9999, "reason": reason("pin_locked")}
    assert setup.askpass.questions() == []  # no question for a locked PIN, and the right PIN was never tried
    assert setup.agent.call("version")["success"] is True


def test_earlier_wrong_pin_gives_the_milder_warning(setup: Setup) -> None:
    key_id = setup.load("COUNT LOW")
    setup.counter.spend_wrong_pin("COUNT LOW")  # another program, earlier
    setup.askpass.will_answer(PIN)
    setup.verify(setup.sign(key_id))
    assert setup.askpass.states() == ["count_low"]
    question = setup.askpass.questions()[0]
    language = question["EIMZO_AGENT_LANGUAGE"]
    assert i18n.text(language, "prompt", "pin_count_low") in question["EIMZO_AGENT_PROMPT"]
    assert i18n.text(language, "prompt", "pin_final_try") not in question["EIMZO_AGENT_PROMPT"]
    assert "count low" not in setup.counter.flags("COUNT LOW")  # the right PIN reset it


def test_token_reaching_its_last_try_while_asked_is_asked_again_with_the_warning(setup: Setup) -> None:
    key_id = setup.load("RACE")
    setup.counter.spend_wrong_pin("RACE")
    # While the first question is open another program spends a try: the token is now on its last one. The
    # answer (even the right PIN) must not be used for a login the person was not warned about.
    setup.askpass.will_answer({"before": setup.counter.wrong_login_command("RACE"), "answer": PIN}, PIN)
    setup.verify(setup.sign(key_id))
    assert setup.askpass.states() == ["count_low", "final_try"]
    assert [q["EIMZO_AGENT_ATTEMPT"] for q in setup.askpass.questions()] == ["1", "1"]  # not counted as a try
    assert "PIN try" not in setup.counter.flags("RACE")


def test_token_that_does_not_tell_its_state_is_asked_normally_and_its_lock_is_reported(setup: Setup) -> None:
    # A token reporting no PIN flags at all, which locks after two wrong PINs: C_Login's CKR_PIN_LOCKED is
    # the only sign, and the page must get "PIN locked", not "cancelled" or a generic error.
    agent = start_agent(setup.tmp / "silent-agent", "--askpass", str(setup.askpass.program), "--pkcs11-module",
                        str(setup.counter.module),
                        env=setup.counter.env(PIN_SHIM_REPORT_FLAGS="0", PIN_SHIM_MAX_TRIES="2"))
    try:
        key_id = setup.load("SILENT", agent)
        setup.askpass.will_answer("0000", "0000", PIN)
        assert setup.sign(key_id, agent) == {"success": False, "status": -9999, "reason": reason("pin_locked")}
        assert setup.askpass.states() == ["", "", ""]
        assert agent.call("version")["success"] is True
    finally:
        agent.stop()
