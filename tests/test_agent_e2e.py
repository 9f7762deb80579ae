"""The real agent, the way portals use it: e-imzo.js opens a new socket per call and expects close 1000.

Keys are minted at test time by `eimzo-agent dev mint-key`; every signature is checked by OpenSSL.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import (
    PASSWORD,
    TEST_CONFIG,
    AgentProcess,
    Askpass,
    b64,
    http_exchange,
    make_askpass,
    mint,
    start_agent,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

# The vendor's published API keys for localhost and 127.0.0.1 (e-imzo-client.js), as portals send them.
LOCALHOST_KEY = ("96D0C1491615C82B9A54D9989779DF825B690748224C2B04F500F370D51827CE"
                 "2644D8D4A82C18184D73AB8530BB8ED537269603F61DB0D03D2104ABF789970B")
LOOPBACK_KEY = ("A7BCFA5D490B351BE0754130DF03A068F855DB4333D43921125B9CF2670EF6A4"
                "0370C646B90401955E1F7BC9CDBF59CE0B2C5467D820BE189C845D0B79CFC96F")
DOCUMENT = "Shartnoma № 17: ijara to'lovi 1 200 000 so'm. Договор аренды.".encode()


class Setup:
    def __init__(self, root: Path, ca: Path, askpass: Askpass, agent: AgentProcess, keys: dict[str, Path]):
        self.root, self.ca, self.askpass, self.agent, self.keys = root, ca, askpass, agent, keys

    @property
    def ca_pem(self) -> Path:
        return self.ca / "ca.crt.pem"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("e2e")
    root, ca = tmp / "flash", tmp / "ca"
    keys = {
        "rsa": mint(ca, root / "DSKEYS", "rsa2048", "--cn", "ALIYEV VALI", "--name", "VALI", "--surname", "ALIYEV",
                    "--pinfl", "31234567890123", "--tin", "512345678"),
        "rsa2": mint(ca, root / "DSKEYS", "rsa2048", "--cn", "KARIMOVA NODIRA", "--pinfl", "41234567890123",
                     "--org", "Yangi Texnologiyalar MChJ", "--org-tin", "301234567", "--title", "direktor"),
        "p256": mint(ca, root, "p256", "--cn", "TOSHMATOV ESHMAT", "--pinfl", "30101199012345"),
        "p256b": mint(ca, root, "p256", "--cn", "SAIDOVA MALIKA", "--tin", "498765432"),
    }
    askpass = make_askpass(tmp)
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    try:
        yield Setup(root, ca, askpass, agent, keys)
    finally:
        agent.stop()


@pytest.fixture(autouse=True)
def fresh_askpass(setup: Setup) -> None:
    setup.askpass.answer(PASSWORD)
    setup.askpass.clear()


def entry_for(setup: Setup, key: str) -> dict[str, str]:
    certificates = setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
    stem = setup.keys[key].stem
    return next(c for c in certificates if c["name"] == stem)


def load(setup: Setup, key: str, origin: str = "default") -> str:
    e = entry_for(setup, key)
    reply = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx", origin=origin)
    assert reply["success"] is True, reply
    assert reply["type"] == "PFX_KEY_STORE"
    return reply["keyId"]


def openssl_verify(tmp: Path, setup: Setup, cms_der: bytes, content: bytes | None = None) -> bytes:
    p7s = tmp / "sig.p7s"
    p7s.write_bytes(cms_der)
    out = tmp / "out.bin"
    cmd = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s), "-CAfile", str(setup.ca_pem),
           "-out", str(out)]
    if content is not None:
        (tmp / "doc.bin").write_bytes(content)
        cmd += ["-content", str(tmp / "doc.bin")]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    return out.read_bytes()


def signer_count(tmp: Path, cms_der: bytes) -> int:
    p7s = tmp / "count.p7s"
    p7s.write_bytes(cms_der)
    printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(p7s)],
                             capture_output=True, text=True, check=True).stdout
    return printed.count("signatureAlgorithm:")


@pytest.mark.parametrize(("first", "second"), [("rsa", "rsa2"), ("p256", "p256b")])
def test_eimzo_client_flow(setup: Setup, tmp_path: Path, first: str, second: str) -> None:
    agent = setup.agent
    version = agent.call("version")
    assert version["success"] is True and version["status"] == 1
    assert int(version["major"]) * 100 + int(version["minor"]) >= 604
    assert version["agent"] == "eimzo-agent"

    apikey = agent.call("apikey", "localhost", LOCALHOST_KEY, "127.0.0.1", LOOPBACK_KEY)
    assert apikey == {"success": True, "status": 1, "message": "http://localhost:8080"}

    certificates = agent.call("list_all_certificates", plugin="pfx")["certificates"]
    assert {c["name"] for c in certificates} >= {p.stem for p in setup.keys.values()}
    for c in certificates:
        assert set(c) == {"disk", "path", "name", "alias"}
        assert c["disk"] == str(setup.root) + "/" and c["path"] in ("", "DSKEYS")
        assert c["alias"] == c["alias"].lower() and "serialnumber=" in c["alias"] and "validto=" in c["alias"]

    key_id = load(setup, first)
    assert len(key_id) == 32 and int(key_id, 16) >= 0
    assert setup.askpass.questions() == []  # load_key never asks for the password

    attached = agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert attached["success"] is True, attached
    assert set(attached) == {"success", "status", "pkcs7_64", "signer_serial_number", "signature_hex"}
    assert attached["signer_serial_number"] == attached["signer_serial_number"].lower()
    assert f"serialnumber={attached['signer_serial_number']}," in entry_for(setup, first)["alias"]
    attached_der = base64.b64decode(attached["pkcs7_64"])
    assert openssl_verify(tmp_path, setup, attached_der) == DOCUMENT
    assert bytes.fromhex(attached["signature_hex"]) in attached_der
    assert setup.askpass.questions() == ["password 1 http://localhost:8080"]

    detached = agent.call("create_pkcs7", b64(DOCUMENT), key_id, "yes", plugin="pkcs7")
    detached_der = base64.b64decode(detached["pkcs7_64"])
    assert DOCUMENT not in detached_der
    openssl_verify(tmp_path, setup, detached_der, content=DOCUMENT)

    second_id = load(setup, second)
    cosigned = agent.call("append_pkcs7_attached", attached["pkcs7_64"], second_id, plugin="pkcs7")
    assert cosigned["success"] is True, cosigned
    cosigned_der = base64.b64decode(cosigned["pkcs7_64"])
    assert openssl_verify(tmp_path, setup, cosigned_der) == DOCUMENT
    assert signer_count(tmp_path, cosigned_der) == 2
    assert cosigned["signer_serial_number"] != attached["signer_serial_number"]

    assert agent.call("unload_key", key_id, plugin="pfx") == {"success": True, "status": 1}
    assert agent.call("unload_key", second_id, plugin="pfx")["success"] is True
    gone = agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert gone == {"success": False, "status": -1010, "reason": "Ключ по идентификатору не найден"}


def test_keep_connection_serves_several_frames(setup: Setup) -> None:
    with connect(setup.agent.url + "?keepConnection", origin="http://localhost:8080", compression=None) as ws:
        for _ in range(3):
            ws.send(json.dumps({"name": "version"}))
            assert json.loads(ws.recv(10))["major"] == "6"
        ws.send(json.dumps({"plugin": "pfx", "name": "list_disks"}))
        assert json.loads(ws.recv(10))["disks"] == [str(setup.root) + "/"]


def test_empty_document_and_large_document(setup: Setup, tmp_path: Path) -> None:
    key_id = load(setup, "p256")
    for content in (b"", bytes(range(256)) * 8192):  # empty, and 2 MiB of binary
        reply = setup.agent.call("create_pkcs7", b64(content), key_id, "", plugin="pkcs7")
        assert openssl_verify(tmp_path, setup, base64.b64decode(reply["pkcs7_64"])) == content


def test_a_large_reply_comes_as_fragments_of_one_message(setup: Setup, tmp_path: Path) -> None:
    """A signed 2 MiB document is a 2.7 MB reply: sent as a fragmented message (the agent's event loop copies one
    fragment at a time), which a WebSocket client reads as one message. The request's Base64 written with escaped
    slashes, as PHP's json_encode writes it, takes the ordinary JSON path and signs the same."""
    key_id = load(setup, "p256")
    content = bytes(range(256)) * 8192
    for data_64 in (b64(content), b64(content).replace("/", "\\/")):
        request = '{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + data_64 + '","' + key_id + '","no"]}'
        with connect(setup.agent.url, origin=setup.agent.origin, compression=None, max_size=None) as ws:
            ws.send(request)
            fragments = list(ws.recv_streaming())
        assert len(fragments) > 1 and all(len(f) <= 256 * 1024 for f in fragments)
        reply = json.loads("".join(fragments))
        assert reply["success"] is True and reply["status"] == 1
        assert openssl_verify(tmp_path, setup, base64.b64decode(reply["pkcs7_64"])) == content


# --- every bad input gets its E-IMZO-shaped reply, and the agent keeps serving -----------------------------------


def still_serving(setup: Setup) -> None:
    assert setup.agent.call("version")["success"] is True
    assert setup.agent.process.poll() is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("this is not json",
         "Запрос не является вызовом функции: ожидается JSON-объект с полями plugin, name и arguments."),
        ('{"plugin":"pfx","name":"no_such_function"}', "В eimzo-agent нет функции pfx.no_such_function."),
        ('{"plugin":"no_such_plugin","name":"list_disks"}', "В eimzo-agent нет функции no_such_plugin.list_disks."),
        ('{"plugin":"pfx","name":"load_key","arguments":["a","b"]}',
         "Функция pfx.load_key принимает аргументов: 4, передано: 2."),
        ('{"plugin":"pkcs7","name":"create_pkcs7","arguments":["", "", "", ""]}',
         "Функция pkcs7.create_pkcs7 принимает аргументов: 2–3, передано: 4."),  # `detached` is optional
    ],
)
def test_malformed_requests(setup: Setup, raw: str, reason: str) -> None:
    """E-IMZO's status 0, with a reason that names what is wrong (E-IMZO's own says "update E-IMZO")."""
    assert setup.agent.call("", raw=raw) == {"success": False, "status": 0, "reason": reason}
    still_serving(setup)


@pytest.mark.parametrize("raw", [
    '{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + "QUJD" * 600_000 + '"',  # unterminated object
    '{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + "QUJD" * 600_000 + 'ў"]}',  # a long non-ASCII one
    '["' + '","'.join(["x"] * 300_000) + '"]',  # many short strings: the ordinary parser's way
])
def test_malformed_large_frames(setup: Setup, raw: str) -> None:
    """Frames over 1 MiB are parsed without json.loads over the document (protocol/large_request.py); a bad one
    still gets E-IMZO's status 0 and the agent keeps serving. (Bad UTF-8: tests/test_protocol.py.)"""
    with connect(setup.agent.url, origin=setup.agent.origin, compression=None, max_size=None) as ws:
        ws.send(raw)
        reply = json.loads(ws.recv(60))
    assert reply["success"] is False and reply["status"] == 0, reply
    still_serving(setup)


def test_binary_frames_are_ignored(setup: Setup) -> None:
    with connect(setup.agent.url, origin="http://localhost:8080", compression=None) as ws:
        ws.send(b"\x00\x01binary")
        ws.send(json.dumps({"name": "version"}))
        assert json.loads(ws.recv(10))["major"] == "6"


@pytest.mark.parametrize(
    ("disk", "path", "name", "status"),
    [
        ("/etc/", "", "passwd", -2011),
        ("../", "", "x", -2011),
        ("ROOT", "../..", "x", -1002),
        ("ROOT", "DSKEYS/..", "x", -1002),
        ("ROOT", "/tmp", "x", -1002),
        ("ROOT", "", "../../etc/passwd", -1003),
        ("ROOT", "DSKEYS", "../x", -1003),
        ("ROOT", "", "a/b", -1003),
        ("ROOT", "", "a\\b", -1003),
        ("ROOT", "", "x\x00y", -1003),
        ("ROOT", "", "DSNOTHERE0001", -2002),
    ],
)
def test_path_traversal_is_refused(setup: Setup, disk: str, path: str, name: str, status: int) -> None:
    disk = disk.replace("ROOT", str(setup.root) + "/")
    reply = setup.agent.call("load_key", disk, path, name, "cn=x", plugin="pfx")
    assert reply["success"] is False and reply["status"] == status, reply
    assert str(setup.root) not in reply["reason"] and "/etc" not in reply["reason"]
    still_serving(setup)


def test_unknown_alias_and_disk(setup: Setup) -> None:
    e = entry_for(setup, "rsa")
    reply = setup.agent.call("load_key", e["disk"], e["path"], e["name"], "cn=somebody else", plugin="pfx")
    assert reply == {
        "success": False,
        "status": -2006,
        "reason": f"Сертификат с именем [cn=somebody else] не найден в PFX-файле {e['name']}",
    }
    assert setup.agent.call("list_certificates", "/nowhere/", plugin="pfx")["status"] == -2011
    listed = setup.agent.call("list_certificates", e["disk"], plugin="pfx")
    assert e in listed["certificates"]


def test_missing_and_corrupt_key_files(setup: Setup) -> None:
    corrupt = setup.root / "DSBROKEN0001.pfx"
    corrupt.write_bytes(b"\x30\x82\x01\x00 definitely not PKCS#12")
    names = [c["name"] for c in setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]]
    assert "DSBROKEN0001" not in names and setup.keys["rsa"].stem in names  # one bad file breaks nothing
    assert setup.agent.call("load_key", str(setup.root) + "/", "", "DSBROKEN0001", "cn=x", plugin="pfx")["status"] < 0

    victim = setup.root / "DSVANISH0001.pfx"
    victim.write_bytes(setup.keys["p256"].read_bytes())
    e = next(c for c in setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
             if c["name"] == "DSVANISH0001")
    key_id = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
    victim.write_bytes(b"garbage now")
    reply = setup.agent.call("create_pkcs7", b64(b"x"), key_id, "no", plugin="pkcs7")
    assert reply == {"success": False, "status": -9999,
                     "reason": "Файл ключа поврежден или не является PFX-файлом"}
    victim.unlink()
    reply = setup.agent.call("create_pkcs7", b64(b"x"), key_id, "no", plugin="pkcs7")
    assert reply == {"success": False, "status": -2002, "reason": "Файл ключа не существует"}
    corrupt.unlink()
    still_serving(setup)


def test_wrong_password_three_times_then_refused(setup: Setup) -> None:
    key_id = load(setup, "rsa")
    setup.askpass.answer("wrong password")
    reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    # E-IMZO's -5000, with a reason that says "wrong password" (tests/test_wrong_password.py), not "cancelled".
    assert reply["status"] == -5000 and "BadPaddingException" in reply["reason"]
    assert [q.split()[:2] for q in setup.askpass.questions()] == [["password", "1"], ["password", "2"],
                                                                  ["password", "3"]]
    setup.askpass.clear()
    setup.askpass.answer(PASSWORD)
    assert setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["success"] is True


def test_wrong_then_right_password(setup: Setup) -> None:
    key_id = load(setup, "p256")
    script = setup.askpass.directory / "password"
    # First answer wrong, then right: the askpass log tells which attempt we are on.
    script.write_text("wrong")
    setup.askpass.program.write_text(setup.askpass.program.read_text().replace(
        'answer=$(cat "$file")', f'answer=$(cat "$file"); [ "$EIMZO_AGENT_ATTEMPT" = 2 ] && answer="{PASSWORD}"'))
    try:
        assert setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["success"] is True
        assert len(setup.askpass.questions()) == 2
    finally:
        setup.askpass.program.write_text(setup.askpass.program.read_text().replace(
            f'; [ "$EIMZO_AGENT_ATTEMPT" = 2 ] && answer="{PASSWORD}"', ""))


def test_cancel(setup: Setup) -> None:
    key_id = load(setup, "p256")
    setup.askpass.answer("CANCEL")
    reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert reply == {"success": False, "status": -5000, "reason": "Ввод пароля отменен"}
    assert len(setup.askpass.questions()) == 1
    still_serving(setup)


def test_unloaded_and_foreign_key_ids(setup: Setup) -> None:
    key_id = load(setup, "rsa")
    foreign = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7",
                               origin="http://127.0.0.1:9999")
    assert foreign == {"success": False, "status": -1010, "reason": "Ключ по идентификатору не найден"}
    assert setup.agent.call("unload_key", key_id, plugin="pfx", origin="http://127.0.0.1:9999")["status"] == -1014
    assert setup.askpass.questions() == []  # nobody was asked for a password on the other site's behalf
    assert setup.agent.call("unload_key", key_id, plugin="pfx")["success"] is True
    again = setup.agent.call("unload_key", key_id, plugin="pfx")
    assert again == {"success": False, "status": -1014,
                     "reason": "Идентификатор ключа типа 'PFX_KEY_STORE' не найден"}
    assert setup.agent.call("create_pkcs7", b64(DOCUMENT), "0" * 32, "no", plugin="pkcs7")["status"] == -1010


def test_foreign_origin_without_approval(setup: Setup) -> None:
    reply = setup.agent.call("list_all_certificates", plugin="pfx", origin="https://evil.example.com")
    # The person was asked and said no (the test askpass answers the consent question "deny").
    assert reply == {"success": False, "status": -1022,
                     "reason": "Пользователь этого компьютера не разрешил сайту https://evil.example.com "
                               "использовать ключи подписи."}
    assert [q for q in setup.askpass.questions() if q.startswith("consent")] == [
        "consent 1 https://evil.example.com"]
    # A key that is not the vendor's signature over the domain approves nothing: the site stays refused.
    setup.agent.call("apikey", "evil.example.com", "00" * 64, origin="https://evil.example.com")
    assert setup.agent.call("list_disks", plugin="pfx", origin="https://evil.example.com")["status"] == -1022
    assert setup.agent.call("list_disks", plugin="pfx", origin=None)["status"] == -1021
    assert setup.agent.call("version", origin="https://evil.example.com")["success"] is True
    still_serving(setup)


def test_bad_base64_and_bad_pkcs7(setup: Setup) -> None:
    key_id = load(setup, "p256")
    reply = setup.agent.call("create_pkcs7", "not base64 !!!", key_id, "no", plugin="pkcs7")
    assert reply["status"] == -9999 and "data_64" in reply["reason"]
    reply = setup.agent.call("append_pkcs7_attached", b64(b"not a cms"), key_id, plugin="pkcs7")
    assert reply["status"] == -9999 and reply["reason"].startswith("Неверный формат PKCS#7")
    detached = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "yes", plugin="pkcs7")["pkcs7_64"]
    setup.askpass.clear()
    reply = setup.agent.call("append_pkcs7_attached", detached, key_id, plugin="pkcs7")
    assert reply["status"] == -9999 and "отсоединённая" in reply["reason"]
    assert setup.askpass.questions() == []  # no password asked for a document we cannot co-sign


@pytest.mark.parametrize("host", ["evil.example.com:PORT", "127.0.0.1:1", "localhost", "127.0.0.1.nip.io:PORT"])
def test_bad_host_header_is_refused(setup: Setup, host: str) -> None:
    host = host.replace("PORT", str(setup.agent.port))
    upgrade = (f"GET /service/cryptapi HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: http://localhost\r\n\r\n").encode()
    status, _, body = http_exchange(setup.agent.port, upgrade)
    assert status == 403 and b"Forbidden" in body
    status, _, _ = http_exchange(setup.agent.port, f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert status == 403
    still_serving(setup)


def test_oversize_frame(tmp_path: Path, setup: Setup) -> None:
    agent = start_agent(tmp_path / "small", config=TEST_CONFIG + "[server]\nmax_frame_bytes = 65536\n")
    try:
        with connect(agent.url, origin="http://localhost:8080", compression=None, max_size=None) as ws:
            ws.send(json.dumps({"name": "version", "arguments": ["x" * 70000]}))
            reply = json.loads(ws.recv(10))
            with pytest.raises(ConnectionClosed):
                ws.recv(10)
            assert ws.protocol.close_rcvd.code == 1009
        assert reply == {"success": False, "status": -9999, "reason": "Сообщение слишком большое: предел 0.0625 МБ"}
        assert agent.call("version")["success"] is True
    finally:
        agent.stop()


def test_http_side(setup: Setup) -> None:
    port = setup.agent.port
    status, headers, body = http_exchange(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "E-IMZO-v6.4.7" in body.decode() and "eimzo-agent" in body.decode()
    status, headers, _ = http_exchange(port, (f"OPTIONS /service/cryptapi HTTP/1.1\r\nHost: localhost:{port}\r\n"
                                              "Origin: https://my.gov.uz\r\n"
                                              "Access-Control-Request-Private-Network: true\r\n\r\n").encode())
    assert status == 204
    assert headers["access-control-allow-private-network"] == "true"
    assert headers["access-control-allow-origin"] == "https://my.gov.uz"
    status, _, body = http_exchange(port, f"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 404 and body == b"404 - Not Found"
    status, _, _ = http_exchange(port, f"DELETE / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 404
    status, _, _ = http_exchange(port, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert status == 400
    still_serving(setup)


def test_apidoc_and_language(setup: Setup) -> None:
    doc = setup.agent.call("apidoc")
    assert isinstance(doc, list)
    pfx = next(p for p in doc if p["name"] == "pfx")
    load_key = next(f for f in pfx["functions"] if f["name"] == "load_key")
    assert [a["name"] for a in load_key["arguments"]] == ["disk", "path", "name", "alias"]
    assert setup.agent.call("change_ui_lang", "uz", plugin="app") == {"success": True, "status": 1,
                                                                       "message": "uz_UZ"}
    try:
        assert setup.agent.call("list_certificates", "/x/", plugin="pfx")["reason"] == "Disk topilmadi"
        assert setup.agent.call("change_ui_lang", "xx", plugin="app")["status"] == -1005
    finally:
        setup.agent.call("change_ui_lang", "ru", plugin="app")


def test_verify_and_change_password(setup: Setup, tmp_path: Path) -> None:
    copy = setup.root / "DSCHANGE0001.pfx"
    copy.write_bytes(setup.keys["p256b"].read_bytes())
    mode = copy.stat().st_mode
    before = sorted(p.name for p in setup.root.iterdir())
    try:
        e = next(c for c in setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
                 if c["name"] == "DSCHANGE0001")
        key_id = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
        assert setup.agent.call("verify_password", key_id, plugin="pfx")["success"] is True

        setup.askpass.answer("New-Passw0rd-1", "new_password")
        setup.askpass.answer("Different-2", "repeat_new_password")
        mismatch = setup.agent.call("change_password", key_id, plugin="pfx")
        assert mismatch == {"success": False, "status": -5004, "reason": "Новые пароли не соответствуют"}

        setup.askpass.answer("New-Passw0rd-1", "repeat_new_password")
        assert setup.agent.call("change_password", key_id, plugin="pfx")["success"] is True
        assert copy.stat().st_mode == mode
        assert sorted(p.name for p in setup.root.iterdir()) == before  # no temp files left behind

        reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
        assert reply["status"] == -5000  # the old password no longer opens it
        setup.askpass.clear()
        setup.askpass.answer("New-Passw0rd-1")
        reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
        assert openssl_verify(tmp_path, setup, base64.b64decode(reply["pkcs7_64"])) == DOCUMENT
    finally:
        copy.unlink(missing_ok=True)
