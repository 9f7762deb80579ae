"""The parts behind the password dialog that need no display: queue and flood limits, remembered passwords,
password rules, what the dialog shows about key and document, the askpass environment, the catalogues."""

from __future__ import annotations

import asyncio
import datetime
import gc
import hashlib
import os
import re
import sys
import time
import warnings
from pathlib import Path

import pytest

from eimzo_agent import i18n
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.keys import password_rules
from eimzo_agent.plugins.prompt_info import (
    document_preview,
    key_family,
    looks_like_login_challenge,
    owner_details,
    visible_text,
)
from eimzo_agent.ui.prompt_queue import PromptRefused, QueueLimits, SerialPrompter
from eimzo_agent.ui.prompter import Answer, AskpassPrompter, PromptRequest, details_env
from eimzo_agent.ui.remember import PasswordMemory

# --- the queue ------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedPrompter:
    """Each question waits until the test answers it; `shown` records which site's question is on screen."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.answers: asyncio.Queue[str | None] = asyncio.Queue()
        self.open = 0
        self.most_open = 0

    async def ask(self, request: PromptRequest) -> str | None:
        self.shown.append(request.site)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            return await self.answers.get()
        finally:
            self.open -= 1


def request(site: str) -> PromptRequest:
    return PromptRequest(kind="password", site=site, key_label="K", operation="sign")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_one_question_at_a_time_and_flood_limit_per_site() -> None:
    async def scenario() -> None:
        inner = ScriptedPrompter()
        queue = SerialPrompter(inner, QueueLimits(max_pending_per_origin=3))
        a = [asyncio.create_task(queue.ask(request("https://a.uz"))) for _ in range(5)]
        await settle()
        assert inner.shown == ["https://a.uz"] and queue.pending("https://a.uz") == 3
        refused = [t for t in a if t.done()]
        assert len(refused) == 2
        for task in refused:
            error = task.exception()
            assert isinstance(error, PromptRefused) and error.why == "origin"
        b = asyncio.create_task(queue.ask(request("https://b.uz")))  # another site is not limited by a's flood
        await settle()
        assert not b.done()
        await inner.answers.put("first")
        await settle()
        assert inner.shown == ["https://a.uz", "https://b.uz"]  # b jumps ahead of a's queued questions
        for answer in ("b", "second", "third"):
            await inner.answers.put(answer)
            await settle()
        assert await b == "b"
        assert sorted([t.result() for t in a if not t.exception()]) == ["first", "second", "third"]
        assert inner.most_open == 1
        assert queue.pending("https://a.uz") == 0

    asyncio.run(scenario())


def test_cancel_cool_down() -> None:
    async def scenario() -> None:
        inner = ScriptedPrompter()
        clock = FakeClock()
        queue = SerialPrompter(inner, QueueLimits(cancels_for_cooldown=3, cancel_window=60, cooldown=60), clock)
        for _ in range(3):
            task = asyncio.create_task(queue.ask(request("https://a.uz")))
            await settle()
            await inner.answers.put(None)  # the person cancels
            assert await task is None
            clock.now += 10
        with pytest.raises(PromptRefused) as refused:
            await queue.ask(request("https://a.uz"))
        # Blocked at t=20 for 60 s; now t=30.
        assert refused.value.why == "cooldown" and refused.value.retry_after_seconds == 50
        with pytest.raises(PromptRefused):  # the cool-down covers the whole registrable domain
            await queue.ask(request("https://other.a.uz"))
        other = asyncio.create_task(queue.ask(request("https://b.uz")))
        await settle()
        await inner.answers.put("ok")
        assert await other == "ok"  # other sites are still asked
        clock.now += 61
        again = asyncio.create_task(queue.ask(request("https://a.uz")))
        await settle()
        await inner.answers.put("later")
        assert await again == "later"

    asyncio.run(scenario())


def test_sub_domains_share_one_cap_and_all_sites_one_global_cap() -> None:
    """A site cannot multiply its share of questions by using many sub-domains; all sites together are capped."""

    async def scenario() -> None:
        inner = ScriptedPrompter()
        queue = SerialPrompter(inner, QueueLimits(max_pending_per_origin=3, max_pending_per_domain=4,
                                                  max_pending_total=6))
        flood = [asyncio.create_task(queue.ask(request(f"https://s{i}.flood.uz"))) for i in range(50)]
        await settle()
        waiting = [t for t in flood if not t.done()]
        assert len(waiting) == 4
        assert all(t.exception().why == "domain" for t in flood if t.done())
        others = [asyncio.create_task(queue.ask(request(f"https://site{i}.uz"))) for i in range(5)]
        await settle()
        assert sum(not t.done() for t in others) == 2  # 4 + 2 = the global cap of 6
        assert all(t.exception().why == "total" for t in others if t.done())
        for task in waiting + [t for t in others if not t.done()]:
            task.cancel()
        await asyncio.gather(*flood, *others, return_exceptions=True)
        assert queue.pending("https://s0.flood.uz") == 0

    asyncio.run(scenario())


def test_counters_of_sites_not_seen_for_a_while_are_forgotten() -> None:
    async def scenario() -> None:
        inner = ScriptedPrompter()
        clock = FakeClock()
        queue = SerialPrompter(inner, QueueLimits(cancel_window=60, cooldown=60), clock)
        for i in range(200):  # one cancel each from 200 different sites
            task = asyncio.create_task(queue.ask(request(f"https://site{i}.uz")))
            await settle()
            await inner.answers.put(None)
            assert await task is None
        assert queue.tracked_domains() == 200
        clock.now += 61
        task = asyncio.create_task(queue.ask(request("https://fresh.uz")))
        await settle()
        await inner.answers.put("ok")
        assert await task == "ok"
        assert queue.tracked_domains() == 0

    asyncio.run(scenario())


def test_questions_cancelled_all_at_once_do_not_jam_the_queue() -> None:
    """Several tabs closed in the same moment: the question on screen and those waiting are cancelled together.
    The queue used to hand the turn to a cancelled waiter and stay busy for ever: no dialog would appear again."""

    async def scenario() -> None:
        inner = ScriptedPrompter()
        queue = SerialPrompter(inner, QueueLimits(), FakeClock())
        tasks = [asyncio.create_task(queue.ask(request(f"https://s{i}.uz"))) for i in range(4)]
        await settle()
        assert inner.shown == ["https://s0.uz"]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        later = asyncio.create_task(queue.ask(request("https://later.uz")))
        await settle()
        assert inner.shown[-1] == "https://later.uz", "the queue is stuck"
        await inner.answers.put("ok")
        assert await later == "ok"

    asyncio.run(scenario())


def test_cancels_spread_out_do_not_cool_down() -> None:
    async def scenario() -> None:
        inner = ScriptedPrompter()
        clock = FakeClock()
        queue = SerialPrompter(inner, QueueLimits(), clock)
        for _ in range(5):
            task = asyncio.create_task(queue.ask(request("https://a.uz")))
            await settle()
            await inner.answers.put(None)
            assert await task is None
            clock.now += 31  # at most two cancels in any 60 s
        task = asyncio.create_task(queue.ask(request("https://a.uz")))
        await settle()
        await inner.answers.put("yes")
        assert await task == "yes"

    asyncio.run(scenario())


def test_a_waiting_question_whose_page_went_away_leaves_the_queue() -> None:
    async def scenario() -> None:
        inner = ScriptedPrompter()
        queue = SerialPrompter(inner)
        first = asyncio.create_task(queue.ask(request("https://a.uz")))
        gone = asyncio.create_task(queue.ask(request("https://a.uz")))
        last = asyncio.create_task(queue.ask(request("https://b.uz")))
        await settle()
        gone.cancel()
        await settle()
        assert queue.pending("https://a.uz") == 1
        await inner.answers.put("1")
        await inner.answers.put("2")
        assert (await first, await last) == ("1", "2")
        assert inner.shown == ["https://a.uz", "https://b.uz"]  # the cancelled one was never shown

    asyncio.run(scenario())


# --- remembered passwords ------------------------------------------------------------------------------------


def test_remembered_password_scope_expiry_and_wipe() -> None:
    clock = FakeClock()
    memory = PasswordMemory(clock, timers=False)
    memory.remember("https://a.uz", "key1", "Secret-123", 900)
    assert memory.recall("https://a.uz", "key1") == "Secret-123"
    assert memory.recall("https://b.uz", "key1") is None
    assert memory.recall("https://a.uz", "key2") is None
    entry = memory._entries[("https://a.uz", "key1")]
    secret = entry.secret
    clock.now += 901
    assert memory.recall("https://a.uz", "key1") is None
    assert secret == bytearray()  # wiped, not just dropped
    memory.remember("https://a.uz", "key1", "x", 10 * 3600)
    assert memory._entries[("https://a.uz", "key1")].expires == clock.now + 6 * 3600  # E-IMZO's maximum
    memory.remember("https://b.uz", "key1", "x", 60)
    memory.forget_key("key1")
    assert len(memory) == 0
    assert "x" not in repr(memory) and "Secret" not in repr(memory)


def test_remembered_password_expires_by_timer() -> None:
    memory = PasswordMemory()
    changes: list[int] = []
    memory.on_change = lambda: changes.append(len(memory._entries))
    memory.remember("https://a.uz", "k", "pw", 0.2)
    time.sleep(0.8)
    assert memory._entries == {}  # the timer wiped it without anyone asking
    assert changes == [1, 0]


def test_answer_carries_the_remember_choice_and_hides_the_password() -> None:
    answer = Answer("Secret-123", 3600)
    assert answer == "Secret-123" and answer.remember_seconds == 3600
    assert "Secret" not in repr(answer)


# --- password rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "ok"), [
    ("Yangi-Parol-2026", True),
    ("abCD123456", True),
    ("abCD12345", False),  # 9 characters
    ("abCDEFGHIJ", False),  # no digit
    ("aBCDEFGH12", False),  # one lower-case letter
    ("abcdefGh12", False),  # one upper-case letter
    ("abCDпароль12", False),  # Cyrillic: wrong keyboard layout
])
def test_new_password_rules(password: str, ok: bool) -> None:
    assert password_rules.acceptable(password) is ok


# --- what the dialog shows -----------------------------------------------------------------------------------

ALIAS = ("cn=karimova nodira,1.2.860.3.16.1.2=41234567890123,o=yangi texnologiyalar mchj,"
         "1.2.860.3.16.1.1=301234567,t=direktor,serialnumber=1a,validfrom=2025.06.01 00:00:00,"
         "validto=2027.06.01 00:00:00")


def test_owner_details_and_validity() -> None:
    owner = owner_details(ALIAS, now=datetime.datetime(2026, 1, 1))
    assert (owner.name, owner.pinfl, owner.org, owner.org_tin) == (
        "KARIMOVA NODIRA", "41234567890123", "YANGI TEXNOLOGIYALAR MCHJ", "301234567")
    assert owner.validity == "valid" and owner.warning("uz") == ""
    assert owner.id_line("uz") == "JShShIR 41234567890123"
    assert owner.org_line("ru") == "direktor, YANGI TEXNOLOGIYALAR MCHJ (ИНН 301234567)"
    expired = owner_details(ALIAS, now=datetime.datetime(2028, 1, 1))
    assert expired.validity == "expired"
    assert expired.warning("ru") == ("Срок действия сертификата ключа истёк 01.06.2027: "
                                     "подпись этим ключом недействительна")
    early = owner_details(ALIAS, now=datetime.datetime(2024, 1, 1))
    assert early.validity == "not_yet_valid" and "01.06.2025" in early.warning("en")


def test_document_preview_text_binary_and_fingerprints() -> None:
    text = document_preview("Договор № 17\r\nIjara to'lovi".encode(), "other")
    assert (text.kind, text.text, text.more_chars) == ("text", "Договор № 17\nIjara to'lovi", 0)
    assert text.fingerprints == (("SHA-256", hashlib.sha256("Договор № 17\r\nIjara to'lovi".encode()).hexdigest()),)
    long = document_preview(b"a" * 5000, "other")
    assert len(long.text) == 1500 and long.more_chars == 3500
    binary = bytes(range(256)) * 4
    preview = document_preview(binary, "ozdst")
    assert preview.kind == "binary" and preview.size == 1024 and preview.text == ""
    assert preview.fingerprints == (("O'zDSt 1106", gost94_digest(binary).hex()),)  # the key's own hash
    unknown = document_preview(binary, None)
    assert [name for name, _ in unknown.fingerprints] == ["O'zDSt 1106", "SHA-256"]
    assert document_preview(b"", None).kind == "empty"
    assert document_preview(b"%PDF-1.7\n\x00\x01\x02\x03" * 20, "other").kind == "binary"


def test_bidi_and_control_characters_are_made_visible() -> None:
    assert visible_text("pay \u202e001\u202c now\x07") == "pay <U+202E>001<U+202C> now\ufffd"


@pytest.mark.parametrize(("content", "login"), [
    (b"6d3f2a1b-8c9e-4f00-a1b2-3c4d5e6f7a8b", True),
    (b"Q2hhbGxlbmdlOjEyMzQ1Njc4OTA=", True),
    (b"Shartnoma 17", False),
    (b"abcdefghij", False),  # no digit: a word, not a code
    ("Договор1234".encode(), False),
])
def test_login_challenge_guess(content: bytes, login: bool) -> None:
    assert looks_like_login_challenge(content) is login


def _pfx_with_plain_certificate(cert: object) -> bytes:
    """A PKCS#12 whose certificate bag is not encrypted (as some writers do): readable without the password."""
    from asn1crypto import cms, pkcs12

    bag = pkcs12.SafeBag({"bag_id": "cert_bag", "bag_value": pkcs12.CertBag({"cert_id": "x509", "cert_value": cert})})
    contents = pkcs12.SafeContents([bag]).dump()
    safe = pkcs12.AuthenticatedSafe([cms.ContentInfo({"content_type": "data", "content": contents})]).dump()
    return pkcs12.Pfx({"version": "v3", "auth_safe": cms.ContentInfo({"content_type": "data", "content": safe})}).dump()


def test_key_family_from_an_unencrypted_certificate(tmp_path: Path) -> None:
    from agent_harness import PASSWORD, mint

    from eimzo_agent.keys.pkcs12 import open_pfx

    ozdst = mint(tmp_path / "ca", tmp_path / "keys", "ozdst", "--cn", "OZ KEY", "--pinfl", "31234567890123")
    p256 = mint(tmp_path / "ca", tmp_path / "keys", "p256", "--cn", "EC KEY")
    assert key_family(ozdst.read_bytes()) is None  # our writer encrypts certificates: cannot tell before the password
    oz_cert = open_pfx(ozdst.read_bytes(), PASSWORD).certificate
    ec_cert = open_pfx(p256.read_bytes(), PASSWORD).certificate
    assert key_family(_pfx_with_plain_certificate(oz_cert)) == "ozdst"
    assert key_family(_pfx_with_plain_certificate(ec_cert)) == "other"
    assert key_family(b"not a pfx") is None


# --- askpass gets the details --------------------------------------------------------------------------------


def test_askpass_gets_owner_and_document_in_its_environment(tmp_path: Path) -> None:
    script = tmp_path / "askpass.py"
    dump = tmp_path / "env.txt"
    script.write_text(f"#!{sys.executable}\nimport os\n"
                      f"open({str(dump)!r}, 'w').write(repr({{k: v for k, v in os.environ.items() "
                      "if k.startswith('EIMZO_AGENT_')}))\nprint('pw')\n")
    script.chmod(0o755)
    owner = owner_details(ALIAS, now=datetime.datetime(2028, 1, 1))
    document = document_preview("Shartnoma № 17".encode(), "other")
    req = PromptRequest(kind="password", site="https://hujjat.example.uz", key_label="KARIMOVA NODIRA",
                        operation="sign", language="uz", owner=owner, document=document)
    assert asyncio.run(AskpassPrompter(str(script)).ask(req)) == "pw"
    env = eval(dump.read_text())  # our own repr() of a dict of strings
    assert env["EIMZO_AGENT_SITE"] == "https://hujjat.example.uz"
    assert env["EIMZO_AGENT_OWNER"] == "KARIMOVA NODIRA"
    assert env["EIMZO_AGENT_OWNER_ORG_TIN"] == "301234567"
    assert env["EIMZO_AGENT_KEY_VALIDITY"] == "expired"
    assert env["EIMZO_AGENT_DOCUMENT_TEXT"] == "Shartnoma № 17"
    assert env["EIMZO_AGENT_DOCUMENT_SHA256"] == hashlib.sha256("Shartnoma № 17".encode()).hexdigest()
    assert env["EIMZO_AGENT_LANGUAGE"] == "uz"
    assert "EIMZO_AGENT_DOCUMENT_OZDST" not in env
    assert set(details_env(req)) <= set(env)
    text = req.text()
    assert "Hujjat: Matn, 16 bayt" in text and "tugagan" in text  # the question itself names document and expiry


def test_a_cancelled_question_ends_its_askpass_program_before_returning(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The page goes away, or the agent stops, while the askpass program is asking: ask() gives the cancellation back
    only once the program is dead, reaped and its pipe closed. Before, it killed and returned at once; an agent
    stopping on SIGTERM then closed its loop with the subprocess transport still open, whose finaliser printed
    "Event loop is closed" (and an "unclosed transport" warning)."""
    script = tmp_path / "askpass.sh"
    script.write_text('#!/bin/sh\necho $$ > "$(dirname "$0")/asked"\nexec sleep 60\n')
    script.chmod(0o755)
    request = PromptRequest(kind="password", site="https://a.example.uz", key_label="K", operation="sign",
                            language="uz")
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def ask_then_cancel() -> tuple[int, bool]:
        task = asyncio.create_task(AskpassPrompter(str(script)).ask(request))
        asked = tmp_path / "asked"
        for _ in range(400):
            if asked.exists() and asked.read_text().strip():
                break
            await asyncio.sleep(0.025)
        pid = int(asked.read_text())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        try:
            os.kill(pid, 0)  # a zombie still answers: only a reaped process is gone
            gone = False
        except ProcessLookupError:
            gone = True
        return pid, gone

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, gone = asyncio.run(ask_then_cancel())
        gc.collect()
    assert gone
    assert unraisable == []
    assert not [w for w in caught if "unclosed transport" in str(w.message)]


# --- catalogues ----------------------------------------------------------------------------------------------


def test_catalogues_use_the_same_placeholders() -> None:
    """A translator's {typo} would silently show the raw template: every language must use ru's placeholders."""
    reference = i18n.catalogue("ru")
    for lang in i18n.LANGUAGES:
        catalogue = i18n.catalogue(lang)
        for section in ("prompt", "tray"):
            assert set(catalogue[section]) == set(reference[section]), (lang, section)
            for key, template in reference[section].items():
                expected = set(re.findall(r"{(\w+)}", template))
                assert set(re.findall(r"{(\w+)}", catalogue[section][key])) == expected, (lang, section, key)


def test_real_terms_are_used() -> None:
    assert "ERI kaliti" in i18n.text("uz", "prompt", "title")
    assert "ENQ gilti" in i18n.text("kaa", "prompt", "title")
    assert "ЭЦП" in i18n.text("ru", "prompt", "title")
