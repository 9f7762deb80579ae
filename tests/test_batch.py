"""batch.create_pkcs7 (issue 14, item 1): many documents, ONE confirmation, through the real agent.

The agent runs as a subprocess; calls go over real WebSockets (tests/agent_harness.py). The askpass program here
logs every question with its operation, document count and full text, so "one question" and "the list is in it"
are checked on what the program really got. P-256 signatures are verified by `openssl cms -verify`, O'zDSt ones
(which OpenSSL cannot check) by our cms_verify against the dev O'zDSt CA. The dialog tests (the list shown, a
cancel midway) run the real Tk dialog on a private Xvfb screen.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tkinter as tk
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk
from typing import Any

import pytest
from agent_harness import PASSWORD, TEST_CONFIG, AgentProcess, b64, mint, start_agent
from asn1crypto import pem
from xsession import XScreen, require_gui_tools, xvfb

from eimzo_agent import i18n
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.ui.prompter import BatchDocument, BatchProgress, PromptRequest
from eimzo_agent.ui.tk_batch import build_batch_dialog

#: Small limits so "over the limits" needs no big data; 100 documents of 1 KB fit well under them.
LIMITS = "batch_max_documents = 150\nbatch_max_bytes = 1048576\n"
CONFIG = TEST_CONFIG.replace("[limits]\n", "[limits]\n" + LIMITS) + "[ui]\nlanguage = \"en\"\n"

ASKPASS = """#!/bin/sh
# Logs each question (kind, operation, document count, then the whole text); answers the "password" file.
d="$(dirname "$0")"
echo "=== $EIMZO_AGENT_PROMPT_KIND $EIMZO_AGENT_OPERATION $EIMZO_AGENT_DOCUMENT_COUNT" >> "$d/log"
echo "$EIMZO_AGENT_PROMPT" >> "$d/log"
answer=$(cat "$d/password")
[ "$answer" = CANCEL ] && exit 1
printf '%s\\n' "$answer"
"""


@dataclass
class Setup:
    tmp: Path
    ca: Path
    askpass: Path
    agent: AgentProcess
    keys: dict[str, Path]
    journal: Path

    def answer(self, password: str) -> None:
        (self.askpass / "password").write_text(password)

    def questions(self) -> list[str]:
        log = self.askpass / "log"
        return [q for q in log.read_text().split("=== ") if q] if log.exists() else []

    def load(self, key: str) -> str:
        certificates = self.agent.call("list_all_certificates", plugin="pfx")["certificates"]
        e = next(c for c in certificates if c["name"] == self.keys[key].stem)
        reply = self.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")
        assert reply["success"] is True, reply
        return str(reply["keyId"])

    def batch(self, documents: Any, key_id: str, detached: str = "no") -> dict[str, Any]:
        raw = documents if isinstance(documents, str) else json.dumps(documents)
        return self.agent.call("create_pkcs7", raw, key_id, detached, plugin="batch")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("batch")
    root, ca = tmp / "flash", tmp / "ca"
    keys = {
        "p256": mint(ca, root, "p256", "--cn", "TOSHMATOV ESHMAT", "--pinfl", "30101199012345"),
        "oz": mint(ca, root, "ozdst", "--cn", "RAHIMOV JASUR", "--pinfl", "31505901234567"),
    }
    askpass = tmp / "askpass"
    askpass.mkdir()
    (askpass / "askpass.sh").write_text(ASKPASS)
    (askpass / "askpass.sh").chmod(0o755)
    journal = Path(os.environ["XDG_DATA_HOME"]) / "eimzo-agent" / "journal.jsonl"
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass / "askpass.sh"),
                        config=CONFIG)
    try:
        yield Setup(tmp, ca, askpass, agent, keys, journal)
    finally:
        agent.stop()


@pytest.fixture(autouse=True)
def fresh_askpass(setup: Setup) -> None:
    setup.answer(PASSWORD)
    (setup.askpass / "log").unlink(missing_ok=True)


def documents(count: int, size: int = 1024) -> list[tuple[str, bytes]]:
    return [(f"faktura-{number:03d}.xml", os.urandom(size)) for number in range(1, count + 1)]


def as_data(docs: list[tuple[str, bytes]]) -> list[dict[str, str]]:
    return [{"name": name, "data_64": b64(content)} for name, content in docs]


def openssl_verify(setup: Setup, cms_der: bytes, content: bytes | None = None) -> bytes:
    folder = setup.tmp / "verify"
    folder.mkdir(exist_ok=True)
    (folder / "sig.p7s").write_bytes(cms_der)
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "sig.p7s"),
           "-CAfile", str(setup.ca / "ca.crt.pem"), "-out", str(folder / "out.bin")]
    if content is not None:
        (folder / "doc.bin").write_bytes(content)
        cmd += ["-content", str(folder / "doc.bin")]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    return (folder / "out.bin").read_bytes()


def ozdst_valid(setup: Setup, cms_der: bytes, content: bytes | None = None) -> bytes | None:
    anchor = pem.unarmor((setup.ca / "ozdst" / "ca.crt.pem").read_bytes())[2]
    checked = verify_cms(cms_der, content, trust_anchors=[anchor])
    assert checked.valid, [s.problems for s in checked.signers]
    return checked.content


def journal_results(setup: Setup) -> list[str]:
    lines = setup.journal.read_text().splitlines() if setup.journal.exists() else []
    return [e["result"] for e in map(json.loads, lines) if e["operation"] == "batch.create_pkcs7"]


def test_hundred_documents_one_question_p256(setup: Setup) -> None:
    key_id = setup.load("p256")
    docs = documents(100)
    before = len(journal_results(setup))
    reply = setup.batch(as_data(docs), key_id)
    assert reply["success"] is True, reply
    assert (reply["signed"], reply["cancelled"], len(reply["signatures"])) == (100, 0, 100)
    (question,) = setup.questions()
    assert question.startswith("password sign_batch 100\n")
    assert "faktura-001.xml" in question and "faktura-050.xml" in question and "faktura-051.xml" not in question
    assert i18n.text("en", "prompt", "batch_more", count=50) in question
    for (name, content), signature in zip(docs, reply["signatures"], strict=True):
        assert signature["name"] == name
        assert openssl_verify(setup, base64.b64decode(signature["pkcs7_64"])) == content
    assert journal_results(setup)[before:] == ["signed"] * 100  # the journal records each document


def test_hundred_documents_one_question_ozdst_and_detached_hashes(setup: Setup) -> None:
    key_id = setup.load("oz")
    docs = documents(100)
    reply = setup.batch(as_data(docs), key_id)
    assert reply["success"] is True and reply["signed"] == 100, reply
    for (_, content), signature in zip(docs, reply["signatures"], strict=True):
        assert ozdst_valid(setup, base64.b64decode(signature["pkcs7_64"])) == content
    # The page hashed the documents itself (O'zDSt 1106 for an O'zDSt key): detached signatures over them.
    hashed = [{"name": name, "digest_hex": gost94_digest(content).hex()} for name, content in docs[:5]]
    reply = setup.batch(hashed, key_id, "yes")
    assert reply["success"] is True and reply["signed"] == 5, reply
    for (_, content), signature in zip(docs, reply["signatures"], strict=False):
        assert ozdst_valid(setup, base64.b64decode(signature["pkcs7_64"]), content) is None
    assert len(setup.questions()) == 2  # one per batch


def test_detached_batch_with_sha256_hashes_verifies_with_openssl(setup: Setup) -> None:
    key_id = setup.load("p256")
    docs = documents(3)
    mixed = [{"name": "a", "digest_hex": hashlib.sha256(docs[0][1]).hexdigest()}, *as_data(docs[1:])]
    reply = setup.batch(mixed, key_id, "yes")
    assert reply["success"] is True and reply["signed"] == 3, reply
    for (_, content), signature in zip(docs, reply["signatures"], strict=True):
        openssl_verify(setup, base64.b64decode(signature["pkcs7_64"]), content)


@pytest.mark.parametrize(("docs", "reason"), [
    (as_data(documents(151, 1)), "Too many documents in one batch: 151; at most 150"),
    (as_data(documents(2, 600 * 1024)), "at most 1048576 bytes are allowed (limits.batch_max_bytes)"),
])
def test_over_the_limits_is_refused_before_any_question(setup: Setup, docs: list[dict[str, str]],
                                                         reason: str) -> None:
    reply = setup.batch(docs, setup.load("p256"))
    assert reply["success"] is False and reply["status"] == -9999 and reason in reply["reason"], reply
    assert setup.questions() == []


@pytest.mark.parametrize(("documents_arg", "reason"), [
    ("[{\"name\": ", "Argument `documents` must be a JSON array"),
    ("{\"name\": \"a\", \"data_64\": \"\"}", "expected a non-empty JSON array"),
    ("[]", "expected a non-empty JSON array"),
    ("[{\"data_64\": \"YQ==\"}]", "documents[0] needs a \"name\" text"),
    ("[{\"name\": \"a\"}]", "exactly one of \"data_64\" or \"digest_hex\""),
    ("[{\"name\": \"a\", \"data_64\": \"YQ==\", \"digest_hex\": \"00\"}]", "exactly one of"),
    ("[{\"name\": \"a\", \"data_64\": 5}]", "exactly one of"),
    ("[{\"name\": \"a\", \"data_64\": \"YQ==\"}, {\"name\": \"b\", \"data_64\": \"**\"}]",
     "Argument documents[1].data_64 is not valid Base64"),
    ("[{\"name\": \"a\", \"digest_hex\": \"zz\"}]", "digest_hex is not hexadecimal"),
    ("[{\"name\": \"a.pdf\", \"digest_hex\": \"" + "ab" * 20 + "\"}]",
     "Document a.pdf: digest_hex must be 32 bytes long (SHA-256 / O'zDSt 1106), not 20"),
])
def test_bad_documents_get_eimzo_shaped_errors_and_no_question(setup: Setup, documents_arg: str,
                                                               reason: str) -> None:
    reply = setup.batch(documents_arg, setup.load("p256"))
    assert reply["success"] is False and reply["status"] == -9999 and reason in reply["reason"], reply
    assert setup.questions() == []


def test_cancel_at_the_question_is_eimzo_password_cancel(setup: Setup) -> None:
    setup.answer("CANCEL")
    before = len(journal_results(setup))
    reply = setup.batch(as_data(documents(4)), setup.load("p256"))
    assert reply["success"] is False and reply["status"] == -5000, reply
    assert journal_results(setup)[before:] == ["cancelled"] * 4


def test_remember_from_a_batch_serves_later_calls_but_a_batch_always_asks(setup: Setup) -> None:
    key_id = setup.load("p256")
    setup.answer(f"{PASSWORD}\nremember=900")  # the person ticks "remember" in the batch question
    assert setup.batch(as_data(documents(2)), key_id)["signed"] == 2
    signed = setup.agent.call("create_pkcs7", b64(b"akt 7"), key_id, "no", plugin="pkcs7")
    assert signed["success"] is True and len(setup.questions()) == 1  # create_pkcs7 used the remembered key
    assert setup.batch(as_data(documents(2)), key_id)["signed"] == 2
    assert len(setup.questions()) == 2  # the next batch still shows its list and asks


def test_wrong_passwords_are_asked_again_and_journaled(setup: Setup) -> None:
    setup.answer("not-the-password")
    before = len(journal_results(setup))
    reply = setup.batch(as_data(documents(2)), setup.load("p256"))
    assert reply["success"] is False and reply["status"] == -5000 and "BadPaddingException" in reply["reason"]
    assert len(setup.questions()) == 3 and all(q.startswith("password sign_batch 2\n") for q in setup.questions())
    entries = [json.loads(line) for line in setup.journal.read_text().splitlines()]
    batch_entries = [e for e in entries if e["operation"] == "batch.create_pkcs7"][before:]
    assert [(e["result"], e["failed_attempts"]) for e in batch_entries] == [("wrong_password", 3),
                                                                             ("wrong_password", 0)]


def test_token_ids_and_unknown_keys_are_refused(setup: Setup) -> None:
    reply = setup.batch(as_data(documents(1)), "ckc")
    assert reply["success"] is False and "Batch signing works with key files only" in reply["reason"], reply
    reply = setup.batch(as_data(documents(1)), "0123456789abcdef")
    assert reply["success"] is False and reply["status"] == -1010, reply
    assert setup.questions() == []


# --- the real dialog ------------------------------------------------------------------------------------------


def _widgets(widget: tk.Misc) -> list[tk.Misc]:
    found = [widget]
    for child in widget.winfo_children():
        found += _widgets(child)
    return found


def test_dialog_shows_the_whole_list(tk_here: XScreen) -> None:
    batch = tuple(BatchDocument(f"akt-{n}.pdf", 2048, ("SHA-256", "ab" * 32)) for n in range(120))
    request = PromptRequest(kind="password", site="https://soliq.example.uz", key_label="ALIYEV VALI",
                            operation="sign_batch", language="en", batch=batch)
    root = tk.Tk()  # in-process Tk: conftest.tk_here
    try:
        build_batch_dialog(root, lambda _a: None, request, BatchProgress(120), lambda _a: None)
        root.update()
        widgets = _widgets(root)
        (table,) = [w for w in widgets if isinstance(w, ttk.Treeview)]
        rows = table.get_children()
        assert len(rows) == 120 and table.item(rows[0], "values")[0] == "akt-0.pdf"
        assert tuple(table.item(rows[119], "values")[:2]) == ("akt-119.pdf", "2.0 KB")
        labels = [str(w.cget("text")) for w in widgets if isinstance(w, ttk.Label)]
        assert "Sign 120 documents" in labels
        assert i18n.text("en", "prompt", "batch_summary", count=120, size="240.0 KB") in labels
        assert any(isinstance(w, ttk.Scrollbar) for w in widgets)
    finally:
        root.destroy()


def test_cancel_midway_returns_exactly_the_signatures_made(tmp_path: Path) -> None:
    require_gui_tools()
    root, ca = tmp_path / "flash", tmp_path / "ca"
    key = mint(ca, root, "p256", "--cn", "SAIDOVA MALIKA", "--tin", "498765432")
    docs = documents(20)
    with xvfb() as screen, ThreadPoolExecutor(1) as pool:
        # The agent holds after the 7th signature until the person cancels: the cancel lands midway on any machine.
        env = screen.env({**os.environ, "EIMZO_AGENT_TEST_BATCH_HOLD_AFTER": "7"})
        agent = start_agent(tmp_path / "agent", "--key-root", str(root), config=CONFIG, env=env)
        try:
            certificates = agent.call("list_all_certificates", plugin="pfx")["certificates"]
            e = next(c for c in certificates if c["name"] == key.stem)
            key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
            future = pool.submit(agent.call, "create_pkcs7", json.dumps(as_data(docs)), key_id, "no",
                                 plugin="batch")
            window = screen.wait_window("^eimzo-agent.*Sign 20 documents")
            assert screen.wait_focus(window), "the batch dialog did not take the keyboard focus"
            screen.type(PASSWORD)
            screen.key("Return")
            progress = i18n.text("en", "prompt", "batch_progress", done=7, total=20)
            screen.wait_window(f"^eimzo-agent.*{progress}")
            screen.key("space")  # the focused Cancel button
            reply = future.result(timeout=30)
            screen.wait_gone(window, "^eimzo-agent")
        finally:
            agent.stop()
    assert reply["success"] is True, reply
    assert (reply["signed"], reply["cancelled"]) == (7, 13)
    setup = Setup(tmp_path, ca, tmp_path, agent, {}, tmp_path)
    for (name, content), signature in zip(docs[:7], reply["signatures"], strict=False):
        assert signature["name"] == name
        assert openssl_verify(setup, base64.b64decode(signature["pkcs7_64"])) == content
    assert reply["signatures"][7:] == [{"name": name, "cancelled": True} for name, _ in docs[7:]]



@pytest.mark.parametrize(("text", "expected"), [
    ("[limits]\nbatch_max_documents = 0\n", "limits.batch_max_documents = 0: expected a whole number, at least 1"),
    ("[limits]\nbatch_max_bytes = -1\n", "limits.batch_max_bytes = -1: expected a whole number, at least 1"),
    ('[limits]\nbatch_max_bytes = "1G"\n', "limits.batch_max_bytes has the wrong type (str): expected a whole"),
])
def test_batch_limits_are_checked_like_every_setting(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "eimzo_agent", "config", "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and f"error: {config}: {expected}" in result.stderr, result.stderr
