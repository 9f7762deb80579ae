"""PC/SC with a real pcscd, the vpcd virtual reader and a scripted virtual card (tests/virtual_card.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, b64, start_agent
from virtual_card import DEFAULT_ATR, VPCD_READER, VirtualCard

from eimzo_agent.keys import pcsc

HERMETIC_CONFIG = "[keys]\nscan_system_locations = false\npkcs11_modules = []\n"


def _wait(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _vpcd_listed() -> bool:
    try:
        return VPCD_READER in [s.name for s in pcsc.reader_states()]
    except pcsc.PcscUnavailable:
        return False


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running pcscd with the vpcd readers: the one already running, else our own `pcscd -f`."""
    if _vpcd_listed():
        yield
        return
    binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
    assert Path(binary).exists(), "pcscd is not installed (scripts/bootstrap.sh --test installs it)"
    log = (tmp_path_factory.mktemp("pcscd") / "pcscd.log").open("w")
    process = subprocess.Popen([binary, "-f"], stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait(_vpcd_listed), "pcscd did not list the vpcd reader (is vsmartcard-vpcd installed?)"
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def agent(pcscd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = start_agent(tmp_path_factory.mktemp("pcsc-agent"), config=HERMETIC_CONFIG)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def card(pcscd: None) -> Iterator[VirtualCard]:
    virtual = VirtualCard()
    yield virtual
    virtual.remove()


def card_present(reader: str = VPCD_READER) -> bool:
    return any(s.name == reader and s.card_present for s in pcsc.reader_states())


def test_readers_are_listed(agent: AgentProcess) -> None:
    assert VPCD_READER in pcsc.list_readers()
    reply = agent.call("list_readers", plugin="idcard")
    assert reply["success"] is True and VPCD_READER in reply["readers"]
    assert all(isinstance(r, str) for r in reply["readers"])


def test_clear_saved_pin_codes_answers_success_as_no_pin_is_kept(agent: AgentProcess) -> None:
    for plugin in ("idcard", "baikey"):  # ckc's is checked with a token in test_tokens_pkcs11.py
        assert agent.call("clear_saved_pin_codes", plugin=plugin) == {"success": True, "status": 1}, plugin


def test_insert_and_remove_are_seen(agent: AgentProcess, card: VirtualCard) -> None:
    assert not card_present()
    card.insert()
    assert _wait(card_present)
    state = next(s for s in pcsc.reader_states() if s.name == VPCD_READER)
    assert state.card_present and state.atr == DEFAULT_ATR
    listed = {r["name"]: r for r in agent.call("list_readers", plugin="token")["readers"]}
    assert listed[VPCD_READER] == {"name": VPCD_READER, "cardPresent": True, "atr": DEFAULT_ATR.hex()}

    card.remove()
    assert _wait(lambda: not card_present())
    listed = {r["name"]: r for r in agent.call("list_readers", plugin="token")["readers"]}
    assert listed[VPCD_READER]["cardPresent"] is False and listed[VPCD_READER]["atr"] == ""


def test_idcard_signing_answers_at_once_with_a_card_inserted(agent: AgentProcess, card: VirtualCard) -> None:
    card.insert()
    assert _wait(card_present)
    start = time.monotonic()
    reply = agent.call("create_pkcs7", b64(b"doc"), "idcard", "no", plugin="pkcs7", timeout=10)
    assert time.monotonic() - start < 5
    assert reply["success"] is False and reply["status"] == -9999
    assert "протокол апплета ID-карты не опубликован" in reply["reason"]


def test_no_pcsc_service(tmp_path: Path, pcscd: None) -> None:
    """pcscd unreachable: no readers, a clear PcscUnavailable, and the agent serves as usual."""
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}
    agent = start_agent(tmp_path / "agent", config=HERMETIC_CONFIG, env=env)
    try:
        assert agent.call("list_readers", plugin="idcard") == {"success": True, "status": 1, "readers": []}
        assert agent.call("list_readers", plugin="token")["readers"] == []
        assert agent.call("list_tokens", plugin="token")["tokens"] == []
        assert agent.call("version")["success"] is True
    finally:
        agent.stop()
    probe = subprocess.run([sys.executable, "-c", "from eimzo_agent.keys import pcsc\ntry:\n pcsc.reader_states()\n"
                            "except pcsc.PcscUnavailable as e:\n print('unavailable', e)"],
                           capture_output=True, text=True, env=env, check=False)
    assert probe.stdout.startswith("unavailable") and "0x8010001D" in probe.stdout, probe.stdout + probe.stderr
