"""Origin-bound login challenges, the agent side: a page may have the person sign only a login meant for itself.

A phishing page (https://phish.example) fetches a real portal's challenge (made by login_challenge.new_challenge
for https://portal.example.uz) and relays it to the agent. The real agent, over real WebSockets with the Origin
headers a browser sends, must refuse before any password question, warn the person (here: the askpass program
gets the warning), and answer the page with -1022 naming both origins; the same challenge from the portal itself
is signed (checked by `openssl cms -verify`), and content without the prefix (E-IMZO's UUID challenge) is signed as
before. Every signing path a page could use for the same signature is covered: create_pkcs7 (attached and
detached), append_pkcs7_attached and batch.create_pkcs7.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, Askpass, b64, make_askpass, mint, start_agent
from portal_harness import call, launch_portal
from websockets.sync.client import connect

from eimzo_agent import login_challenge

PORTAL = "https://portal.example.uz"
PHISH = "https://phish.example"

#: Logs, beside the harness's askpass (which it then runs, to log and answer): the operation, the challenge's
#: origin and the whole question text (kept per kind).
ASKPASS = """#!/bin/sh
dir="$(dirname "$0")"
echo "$EIMZO_AGENT_PROMPT_KIND|$EIMZO_AGENT_OPERATION|$EIMZO_AGENT_LOGIN_ORIGIN" >> "$dir/details"
printf '%s\\n' "$EIMZO_AGENT_PROMPT" > "$dir/text-$EIMZO_AGENT_PROMPT_KIND"
exec "$dir/askpass.sh"
"""


@dataclass
class Setup:
    agent: AgentProcess
    askpass: Askpass
    ca: Path
    keys: dict[str, str]  # origin -> keyId loaded from that origin
    env: dict[str, str]  # the agent's environment (its home and data folders)

    def journal(self) -> list[dict]:
        """The signing journal, through the real CLI in the agent's home."""
        result = subprocess.run([sys.executable, "-m", "eimzo_agent", "journal", "--json"], capture_output=True,
                                text=True, timeout=60, check=True, env=self.env)
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("origin-binding")
    root, ca = tmp / "flash", tmp / "ca"
    mint(ca, root, "p256", "--cn", "TOSHMATOV ESHMAT", "--pinfl", "30101199012345")
    askpass = make_askpass(tmp)
    askpass.answer("once", "consent")
    logger = askpass.directory / "logging-askpass.sh"
    logger.write_text(ASKPASS)
    logger.chmod(0o755)
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(logger),
                        config=TEST_CONFIG + '[ui]\nlanguage = "en"\n')
    try:
        yield Setup(agent, askpass, ca, {}, dict(os.environ))
    finally:
        agent.stop()


def forget_questions(setup: Setup) -> None:
    setup.askpass.clear()
    (setup.askpass.directory / "details").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def fresh_askpass(setup: Setup) -> None:
    forget_questions(setup)


def key_for(setup: Setup, origin: str) -> str:
    """A keyId loaded by `origin` (keyIds are bound to the origin that loaded them)."""
    if origin not in setup.keys:
        entry = setup.agent.call("list_all_certificates", plugin="pfx", origin=origin)["certificates"][0]
        reply = setup.agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                 plugin="pfx", origin=origin)
        assert reply["success"] is True, reply
        setup.keys[origin] = reply["keyId"]
        forget_questions(setup)  # the consent question
    return setup.keys[origin]


def sign(setup: Setup, origin: str, content: bytes, detached: str = "no") -> dict:
    return setup.agent.call("create_pkcs7", b64(content), key_for(setup, origin), detached, plugin="pkcs7",
                            origin=origin)


def details(setup: Setup) -> list[str]:
    path = setup.askpass.directory / "details"
    return path.read_text().splitlines() if path.exists() else []


def openssl_content(tmp: Path, setup: Setup, cms_der: bytes) -> bytes:
    (tmp / "sig.p7s").write_bytes(cms_der)
    result = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.p7s"),
                             "-CAfile", str(setup.ca / "ca.crt.pem"), "-out", str(tmp / "out.bin")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    return (tmp / "out.bin").read_bytes()


def mismatch(login_site: str, site: str) -> dict:
    return {"success": False, "status": -1022,
            "reason": f"Refused: this login challenge was issued for {login_site}, but the page asking to sign it "
                      f"is {site}. The page may be impersonating {login_site}; nothing was signed."}


def test_relayed_challenge_is_refused_and_the_person_warned(setup: Setup) -> None:
    challenge = login_challenge.new_challenge(PORTAL).text.encode()
    key_for(setup, PHISH)
    for detached in ("no", "yes"):  # a detached signature joined with the challenge is just as usable
        forget_questions(setup)
        assert sign(setup, PHISH, challenge, detached) == mismatch(PORTAL, PHISH)
        # No password question, only the warning, naming both sites.
        assert setup.askpass.questions() == [f"origin_warning 1 {PHISH}"]
        assert details(setup) == [f"origin_warning|login|{PORTAL}"]
        text = (setup.askpass.directory / "text-origin_warning").read_text()
        assert f"The page {PHISH} asked to sign a login meant for {PORTAL}." in text
        assert f"This page may be impersonating {PORTAL}. Nothing was signed." in text
    assert "refused to sign a login challenge for https://portal.example.uz requested by https://phish.example" \
        in setup.agent.log()
    # Both attempts are in the signing journal, traceable to the portal's challenge by its hash.
    entries = [e for e in setup.journal() if e["content_sha256"] == hashlib.sha256(challenge).hexdigest()]
    assert [(e["site"], e["operation"], e["result"]) for e in entries] == [
        (PHISH, "pkcs7.create_pkcs7", "refused:login_origin")] * 2


def test_the_same_challenge_from_its_own_origin_is_signed(setup: Setup, tmp_path: Path) -> None:
    challenge = login_challenge.new_challenge(PORTAL).text.encode()
    reply = sign(setup, PORTAL, challenge)
    assert reply["success"] is True, reply
    assert openssl_content(tmp_path, setup, base64.b64decode(reply["pkcs7_64"])) == challenge  # byte for byte
    # Asked as a login to that site, never warned.
    assert setup.askpass.questions() == [f"password 1 {PORTAL}"]
    assert details(setup) == ["password|login|"]


@pytest.mark.parametrize("page", ["http://portal.example.uz", "https://portal.example.uz:8443",
                                  "https://www.portal.example.uz"])
def test_origin_differing_by_scheme_port_or_host_is_refused(setup: Setup, page: str) -> None:
    challenge = login_challenge.new_challenge(PORTAL).text.encode()
    key_for(setup, page)
    assert sign(setup, page, challenge) == mismatch(PORTAL, page)
    assert [q.split()[0] for q in setup.askpass.questions()] == ["origin_warning"]


@pytest.mark.parametrize("content", [
    b"eimzo-login v1 origin=https://portal.example.uz issued=20261202T153000Z nonce=short",
    login_challenge.new_challenge(PORTAL).text.encode() + b"\n",  # one byte more: not what the server issued
    login_challenge.new_challenge(PORTAL).text.replace(PORTAL, "HTTPS://Portal.example.uz").encode(),
    b"eimzo-login v1 " + "я".encode() * 40,
])
def test_malformed_challenge_with_the_prefix_is_refused(setup: Setup, content: bytes) -> None:
    reply = sign(setup, PORTAL, content)
    assert reply == {"success": False, "status": -1022,
                     "reason": "Refused: the data starts like an origin-bound login challenge but is not a "
                               "well-formed one; nothing was signed."}
    assert setup.askpass.questions() == [f"origin_warning 1 {PORTAL}"]
    assert details(setup) == ["origin_warning|login|"]
    text = (setup.askpass.directory / "text-origin_warning").read_text()
    assert f"The page {PORTAL} asked to sign a login code that is damaged or forged." in text


def test_official_uuid_challenge_and_documents_are_signed_as_before(setup: Setup, tmp_path: Path) -> None:
    """E-IMZO-server's bare UUID carries no origin: any allowed page may have it signed (the official flow)."""
    for content in (str(uuid.uuid4()).encode(), b"Shartnoma: eimzo-login v1 origin=https://portal.example.uz"):
        setup.askpass.clear()
        reply = sign(setup, PHISH, content)
        assert reply["success"] is True, reply
        assert openssl_content(tmp_path, setup, base64.b64decode(reply["pkcs7_64"])) == content
        assert setup.askpass.questions() == [f"password 1 {PHISH}"]


def test_cosigning_a_relayed_challenge_is_refused(setup: Setup) -> None:
    challenge = login_challenge.new_challenge(PORTAL).text.encode()
    signed = sign(setup, PORTAL, challenge)["pkcs7_64"]
    forget_questions(setup)
    reply = setup.agent.call("append_pkcs7_attached", signed, key_for(setup, PHISH), plugin="pkcs7", origin=PHISH)
    assert reply == mismatch(PORTAL, PHISH)
    assert setup.askpass.questions() == [f"origin_warning 1 {PHISH}"]
    # The portal's own page may add a signature to its own challenge.
    setup.askpass.clear()
    cosigned = setup.agent.call("append_pkcs7_attached", signed, key_for(setup, PORTAL), plugin="pkcs7",
                                origin=PORTAL)
    assert cosigned["success"] is True, cosigned
    assert setup.askpass.questions() == [f"password 1 {PORTAL}"]
    # Refused before any key is looked up: a token id ("baikey") would otherwise ask "which key?" first.
    forget_questions(setup)
    for key_id in ("baikey", "no-such-key"):
        reply = setup.agent.call("append_pkcs7_attached", signed, key_id, plugin="pkcs7", origin=PHISH)
        assert reply == mismatch(PORTAL, PHISH)


def test_a_challenge_hidden_in_a_batch_is_refused(setup: Setup) -> None:
    challenge = login_challenge.new_challenge(PORTAL).text.encode()
    documents = json.dumps([{"name": "invoice.txt", "data_64": b64(b"Invoice 17")},
                            {"name": "login.txt", "data_64": b64(challenge)}])
    reply = setup.agent.call("create_pkcs7", documents, key_for(setup, PHISH), "no", plugin="batch", origin=PHISH)
    assert reply == mismatch(PORTAL, PHISH)
    assert setup.askpass.questions() == [f"origin_warning 1 {PHISH}"]


def test_one_warning_per_connection(setup: Setup) -> None:
    """A page that keeps relaying on one connection gets every call refused but only the first warning."""
    key_id = key_for(setup, PHISH)
    frame = json.dumps({"plugin": "pkcs7", "name": "create_pkcs7",
                        "arguments": [b64(login_challenge.new_challenge(PORTAL).text.encode()), key_id, "no"]})
    with connect(setup.agent.url + "?keepConnection", origin=PHISH, compression=None) as ws:
        for _ in range(5):
            ws.send(frame)
            assert json.loads(ws.recv(30)) == mismatch(PORTAL, PHISH)
    assert setup.askpass.questions() == [f"origin_warning 1 {PHISH}"]


def test_a_page_without_an_origin_cannot_sign_a_challenge(setup: Setup) -> None:
    """A sandboxed frame or file:// page (Origin "null") names no site, so no challenge can be meant for it."""
    reply = sign(setup, "null", login_challenge.new_challenge(PORTAL).text.encode())
    assert reply == {"success": False, "status": -1022,
                     "reason": f"Refused: this login challenge was issued for {PORTAL}, but the page asking to sign "
                               "it cannot be identified (a file or a sandboxed frame); nothing was signed."}
    assert [q.split()[0] for q in setup.askpass.questions()] == ["consent", "origin_warning"]
    text = (setup.askpass.directory / "text-origin_warning").read_text()
    assert ("A page that cannot be identified (a file or a sandboxed frame) asked to sign a login meant for "
            f"{PORTAL}.") in text


def test_with_the_real_portal_server(setup: Setup, tmp_path: Path) -> None:
    """The whole chain: `eimzo-agent portal serve` issues the challenge for the portal's origin (Host and
    X-Forwarded-Proto, as nginx passes them); relayed by the phishing page the agent refuses it, signed by the
    portal's page the server accepts the login. A server issuing E-IMZO-server's UUIDs (`[challenge] format =
    "uuid"`) still works with our agent from any allowed page: the official flow."""
    args = ("--trust-anchor", str(setup.ca / "ca.crt.pem"), "--revocation", "off")
    launches = [launch_portal(tmp_path / "origin", *args),
                launch_portal(tmp_path / "uuid", *args, config='[challenge]\nformat = "uuid"\n')]
    servers = [launch.wait() for launch in launches]
    try:
        site = {"host": "portal.example.uz", "ip": "203.0.113.7"}
        forwarded = {"X-Forwarded-Proto": "https"}
        for server, page in ((servers[0], PORTAL), (servers[1], PHISH)):
            challenge = call(server.url, "/frontend/challenge", headers=forwarded, **site).json()["challenge"]
            if page == PORTAL:
                assert login_challenge.parse_challenge(challenge).origin == PORTAL
                assert sign(setup, PHISH, challenge.encode()) == mismatch(PORTAL, PHISH)
            signed = sign(setup, page, challenge.encode())
            assert signed["success"] is True, signed
            auth = call(server.url, "/backend/auth", signed["pkcs7_64"], headers=forwarded, **site).json()
            assert auth["status"] == 1, auth
            assert auth["subjectCertificateInfo"]["subjectName"]["CN"] == "TOSHMATOV ESHMAT"
    finally:
        for server in servers:
            server.stop()
