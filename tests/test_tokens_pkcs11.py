"""Keys on PKCS#11 tokens through the real agent: SoftHSM2 tokens minted at test time, PIN given by askpass,
signatures checked by `openssl cms -verify`, and the failures a person meets (wrong PIN, token pulled out)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, Askpass, b64, make_askpass, start_agent
from softhsm import MODULE, PIN, SoftHsm, make_softhsm, mint_pfx

DOCUMENT = "Hujjat: token bilan imzolash. Документ, подписанный токеном.".encode()
CKC = "ckc"


class Setup:
    def __init__(self, tmp: Path, hsm: SoftHsm, askpass: Askpass, agent: AgentProcess) -> None:
        self.tmp, self.hsm, self.askpass, self.agent = tmp, hsm, askpass, agent

    @property
    def ca_pem(self) -> Path:
        return self.tmp / "ca" / "ca.crt.pem"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    assert Path(MODULE).is_file(), "softhsm2 is not installed (scripts/bootstrap.sh --test installs it)"
    tmp = tmp_path_factory.mktemp("tokens")
    hsm = make_softhsm(tmp / "hsm")
    for token, alg, cn, pinfl, cka_id in (("RSA TOKEN", "rsa2048", "TOKENOV RUSTAM", "31111111111111", "01"),
                                          ("EC TOKEN", "p256", "TOKENOVA ELENA", "42222222222222", "02"),
                                          ("DOOMED", "p256", "YOQOLUVCHI DILSHOD", "33333333333333", "03")):
        hsm.add_token(token)
        pfx = mint_pfx(tmp / "ca", tmp / "pfx", alg, cn, pinfl)
        hsm.import_key(token, pfx, "Token-Passw0rd", cka_id, cn.lower(), with_ca=token == "RSA TOKEN")
    askpass = make_askpass(tmp)
    askpass.answer(PIN, "pin")
    agent = start_agent(tmp / "agent", "--askpass", str(askpass.program), "--pkcs11-module", MODULE, env=hsm.env())
    try:
        yield Setup(tmp, hsm, askpass, agent)
    finally:
        agent.stop()


@pytest.fixture(autouse=True)
def fresh_askpass(setup: Setup) -> None:
    setup.askpass.answer(PIN, "pin")
    setup.askpass.clear()


def token_keys(setup: Setup) -> dict[str, dict[str, str]]:
    reply = setup.agent.call("list_keys", plugin="token")
    assert reply["success"] is True, reply
    return {k["tokenLabel"]: k for k in reply["keys"]}


def load(setup: Setup, token: str) -> str:
    entry = token_keys(setup)[token]
    reply = setup.agent.call("load_key", entry["tokenId"], entry["alias"], plugin="token")
    assert reply["success"] is True and reply["type"] == "PKCS11_KEY_STORE", reply
    return reply["keyId"]


def openssl_verify(setup: Setup, cms_der: bytes, content: bytes | None = None) -> bytes:
    (setup.tmp / "sig.p7s").write_bytes(cms_der)
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(setup.tmp / "sig.p7s"),
           "-CAfile", str(setup.ca_pem), "-out", str(setup.tmp / "out.bin")]
    if content is not None:
        (setup.tmp / "doc.bin").write_bytes(content)
        cmd += ["-content", str(setup.tmp / "doc.bin")]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    return (setup.tmp / "out.bin").read_bytes()


def still_serving(setup: Setup) -> None:
    assert setup.agent.call("version")["success"] is True and setup.agent.process.poll() is None


def test_keys_command_lists_token_keys(setup: Setup) -> None:
    config = setup.tmp / "keys.toml"
    config.write_text("[keys]\nscan_system_locations = false\n")
    result = subprocess.run([sys.executable, "-m", "eimzo_agent", "keys", "--json", "--config", str(config),
                             "--pkcs11-module", MODULE], capture_output=True, text=True, env=setup.hsm.env(),
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rows = {row["token_label"]: row for row in json.loads(result.stdout)["keys"] if row["type"] == "pkcs11"}
    assert set(rows) == {"RSA TOKEN", "EC TOKEN", "DOOMED"}  # the CA certificate on RSA TOKEN is no key
    rsa = rows["RSA TOKEN"]
    assert (rsa["cn"], rsa["pinfl"], rsa["expired"]) == ("TOKENOV RUSTAM", "31111111111111", False)  # as on the cert
    assert (rsa["algorithm"], rows["EC TOKEN"]["algorithm"], rsa["legal_entity"]) == ("RSA 2048", "ECDSA P-256", False)
    assert rsa["alias"].startswith("cn=tokenov rustam,")
    assert rsa["file"].startswith("pkcs11:token=RSA TOKEN;") and rsa["file"].endswith(";id=%01")
    text = subprocess.run([sys.executable, "-m", "eimzo_agent", "keys", "--config", str(config),
                           "--pkcs11-module", MODULE], capture_output=True, text=True, env=setup.hsm.env(),
                          timeout=60, check=False).stdout
    assert "TOKENOVA ELENA" in text.upper() and "token: pkcs11:token=EC TOKEN" in text


def test_protocol_listings(setup: Setup) -> None:
    agent = setup.agent
    tokens = agent.call("list_tokens", plugin="token")["tokens"]
    assert {t["label"] for t in tokens} == {"RSA TOKEN", "EC TOKEN", "DOOMED"}
    assert all(len(t["tokenId"]) == 16 and t["manufacturer"] == "SoftHSM project" for t in tokens)
    assert agent.call("list_tokens", plugin="baikey")["tokens"] == tokens
    devices = agent.call("list_ckc", plugin="ckc")["devices"]
    assert len(devices) == 3 and all(set(d) == {"type", "deviceID"} and d["type"] == "PKCS11" for d in devices)
    keys = token_keys(setup)
    assert set(keys["EC TOKEN"]) == {"tokenId", "tokenLabel", "label", "alias"}
    alias = keys["EC TOKEN"]["alias"]
    assert alias.startswith("cn=tokenova elena,") and "1.2.860.3.16.1.2=42222222222222" in alias
    assert "validto=" in alias and alias == alias.lower()
    assert agent.call("clear_saved_pin_codes", plugin="ckc") == {"success": True, "status": 1}
    doc = {p["name"]: p for p in agent.call("apidoc")}
    assert {"idcard", "baikey", "ckc", "token"} <= set(doc)
    assert [a["name"] for a in next(f for f in doc["token"]["functions"] if f["name"] == "load_key")["arguments"]] \
        == ["tokenId", "alias"]
    assert setup.askpass.questions() == []  # listing never asks for a PIN


@pytest.mark.parametrize("token", ["RSA TOKEN", "EC TOKEN"])
def test_sign_attached_detached_and_cosign(setup: Setup, token: str) -> None:
    agent = setup.agent
    key_id = load(setup, token)
    assert len(key_id) == 32 and setup.askpass.questions() == []
    attached = agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert attached["success"] is True, attached
    assert set(attached) == {"success", "status", "pkcs7_64", "signer_serial_number", "signature_hex"}
    der = base64.b64decode(attached["pkcs7_64"])
    assert openssl_verify(setup, der) == DOCUMENT
    assert bytes.fromhex(attached["signature_hex"]) in der
    assert f"serialnumber={attached['signer_serial_number']}," in token_keys(setup)[token]["alias"]
    assert setup.askpass.questions() == ["pin 1 http://localhost:8080"]

    detached = agent.call("create_pkcs7", b64(DOCUMENT), key_id, "yes", plugin="pkcs7")
    assert DOCUMENT not in base64.b64decode(detached["pkcs7_64"])
    openssl_verify(setup, base64.b64decode(detached["pkcs7_64"]), content=DOCUMENT)

    other = load(setup, "EC TOKEN" if token == "RSA TOKEN" else "RSA TOKEN")
    cosigned = agent.call("append_pkcs7_attached", attached["pkcs7_64"], other, plugin="pkcs7")
    assert cosigned["success"] is True, cosigned
    assert openssl_verify(setup, base64.b64decode(cosigned["pkcs7_64"])) == DOCUMENT
    assert cosigned["signer_serial_number"] != attached["signer_serial_number"]

    assert agent.call("unload_key", key_id, plugin="token") == {"success": True, "status": 1}
    assert agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["status"] == -1010
    assert agent.call("unload_key", key_id, plugin="token")["status"] == -1014


def test_rsa_token_embeds_the_ca_found_on_the_token(setup: Setup) -> None:
    key_id = load(setup, "RSA TOKEN")
    der = base64.b64decode(setup.agent.call("create_pkcs7", b64(b"x"), key_id, "no", plugin="pkcs7")["pkcs7_64"])
    (setup.tmp / "chain.p7s").write_bytes(der)
    printed = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", str(setup.tmp / "chain.p7s"),
                              "-print_certs", "-noout"], capture_output=True, text=True, check=True).stdout
    assert "subject=CN = eimzo-agent dev CA" in printed and "TOKENOV RUSTAM" in printed


def test_wrong_pin_three_times_is_told_from_a_cancel(setup: Setup) -> None:
    key_id = load(setup, "EC TOKEN")
    setup.askpass.answer("0000", "pin")
    reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    # E-IMZO's status; the reason carries the marker the vendor's e-imzo-init.js shows as "Пароль неверный".
    assert reply == {"success": False, "status": -5000,
                     "reason": "Неверный PIN-код (BadPaddingException): PIN-код токена введён неверно 3 раз(а)."}
    assert [q.split()[:2] for q in setup.askpass.questions()] == [["pin", "1"], ["pin", "2"], ["pin", "3"]]
    setup.askpass.clear()
    setup.askpass.answer("CANCEL", "pin")
    assert setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["status"] == -5000
    assert len(setup.askpass.questions()) == 1
    setup.askpass.answer(PIN, "pin")
    assert setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["success"] is True


def test_hardware_ids(setup: Setup, tmp_path: Path) -> None:
    # Several token keys: the person picks one (askpass answers its number), then types its PIN.
    setup.askpass.answer("CANCEL", "choose_key")
    cancelled = setup.agent.call("create_pkcs7", b64(DOCUMENT), CKC, "no", plugin="pkcs7")
    assert cancelled == {"success": False, "status": -5001, "reason": "Операция отменена"}
    setup.askpass.answer("2", "choose_key")
    chosen = setup.agent.call("create_pkcs7", b64(DOCUMENT), "baikey", "no", plugin="pkcs7")
    assert chosen["success"] is True, chosen
    (tmp_path / "chosen.p7s").write_bytes(base64.b64decode(chosen["pkcs7_64"]))
    verified = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                               str(tmp_path / "chosen.p7s"), "-CAfile", str(setup.ca_pem), "-out", "/dev/null"],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    kinds = [q.split()[0] for q in setup.askpass.questions()]
    assert kinds == ["choose_key", "choose_key", "pin"], kinds
    (setup.askpass.directory / "choose_key").unlink()
    setup.askpass.clear()
    idcard = setup.agent.call("create_pkcs7", b64(DOCUMENT), "idcard", "no", plugin="pkcs7")
    assert idcard["status"] == -9999 and "ID-карт" in idcard["reason"]
    assert setup.askpass.questions() == []
    foreign = setup.agent.call("create_pkcs7", b64(DOCUMENT), load(setup, "EC TOKEN"), "no", plugin="pkcs7",
                               origin="http://127.0.0.1:9999")
    assert foreign["status"] == -1010


def test_token_removed_mid_run(setup: Setup) -> None:
    key_id = load(setup, "DOOMED")
    shutil.rmtree(setup.hsm.tokens["DOOMED"])  # the token is pulled out between load_key and signing
    reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert reply == {"success": False, "status": -9999,
                     "reason": "Токен отключен или ключ на нём не найден. Подключите токен и повторите попытку"}
    assert "DOOMED" not in token_keys(setup)
    assert {t["label"] for t in setup.agent.call("list_tokens", plugin="token")["tokens"]} == {"RSA TOKEN",
                                                                                             "EC TOKEN"}
    still_serving(setup)
    assert setup.agent.call("create_pkcs7", b64(DOCUMENT), load(setup, "RSA TOKEN"), "no",
                            plugin="pkcs7")["success"] is True


def test_single_token_key_answers_ckc_and_broken_module_is_harmless(tmp_path: Path) -> None:
    hsm = make_softhsm(tmp_path / "hsm")
    hsm.add_token("ONLY")
    hsm.import_key("ONLY", mint_pfx(tmp_path / "ca", tmp_path / "pfx", "p256", "YAKKA TOKEN", "34444444444444"),
                   "Token-Passw0rd", "07", "only key")
    askpass = make_askpass(tmp_path)
    askpass.answer(PIN, "pin")
    agent = start_agent(tmp_path / "agent", "--askpass", str(askpass.program), "--pkcs11-module",
                        str(tmp_path / "no-such-module.so"), "--pkcs11-module", MODULE, env=hsm.env())
    try:
        reply = agent.call("create_pkcs7", b64(DOCUMENT), CKC, "no", plugin="pkcs7")
        assert reply["success"] is True, reply
        der = base64.b64decode(reply["pkcs7_64"])
        (tmp_path / "s.p7s").write_bytes(der)
        result = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                                 str(tmp_path / "s.p7s"), "-CAfile", str(tmp_path / "ca" / "ca.crt.pem"),
                                 "-out", "/dev/null"], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert askpass.questions() == ["pin 1 http://localhost:8080"]
        assert "no-such-module.so" in agent.log()  # the broken module is reported, the good one still works
    finally:
        agent.stop()
