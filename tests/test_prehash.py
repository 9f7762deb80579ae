"""A create_pkcs7 request's document hashed while its frame arrives (server/prehash.py, crypto/base64_digests.py).

The digester against hashlib and our O'zDSt hash over random pieces; what makes it give up; the request parser handing
the digests to the right string; and a real agent over a real WebSocket: large documents sent the way e-imzo.js and
our client write requests are hashed as they arrive (the agent's debug log says so) and their signatures check out
with independent code (gostcrypto for O'zDSt, OpenSSL for RSA), as do requests the digester must not be used for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, make_askpass, mint, start_agent
from asn1crypto import cms as asn1_cms
from test_ozdst_e2e import signature_is_valid, signers_of

from eimzo_agent.crypto.base64_digests import Base64Digests
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.protocol.large_request import LongText, PreparedDocument, document_start, load_request

MIB = 1024 * 1024
HASHED = "create_pkcs7: the document was hashed as it arrived"


def digests_of(text: bytes, cuts: list[int]) -> dict[str, bytes] | None:
    digester = Base64Digests(("sha256", "gost94"))
    position = 0
    for cut in [*sorted(cuts), len(text)]:
        digester.feed(memoryview(text)[position:cut])
        position = cut
    return digester.finish()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 300_001])
def test_digests_match_whatever_the_pieces(size: int) -> None:
    rng = random.Random(size)
    document = rng.randbytes(size)
    text = base64.b64encode(document)
    expected = {"sha256": hashlib.sha256(document).digest(), "gost94": gost94_digest(document)}
    for _ in range(20):
        cuts = [rng.randrange(len(text) + 1) for _ in range(rng.randrange(8))]
        assert digests_of(text, cuts) == expected
    assert digests_of(text, list(range(len(text)))[:50]) == expected  # one character at a time, at the start


@pytest.mark.parametrize("text", [
    b"QUJD\nREVG",  # a line break (MIME): the agent's decoding accepts it, the digester does not try
    b"QUJD REVG",
    b"QUJD*EVG",  # not Base64
    b"QUI=REVG",  # padding before the end
    b"QUI=",  # padding, then more in another piece (below)
    b"QUJDRE",  # not whole groups of four
    b"QUJDR",
])
def test_anything_but_plain_strict_base64_gives_no_digests(text: bytes) -> None:
    pieces = [text, b"QUJD"] if text == b"QUI=" else [text[:3], text[3:]]
    digester = Base64Digests(("sha256",))
    for piece in pieces:
        digester.feed(piece)
    assert digester.finish() is None


def test_no_algorithms_no_digests() -> None:
    digester = Base64Digests(())
    digester.feed(b"QUJD")
    assert digester.finish() is None


def test_create_pkcs7_requests_are_recognised_as_browsers_write_them() -> None:
    eimzo_js = json.dumps({"plugin": "pkcs7", "name": "create_pkcs7", "arguments": ["QUJD", "k", "no"]},
                          separators=(",", ":")).encode()
    ours = json.dumps({"name": "create_pkcs7", "arguments": ["QUJD", "k", "no"], "plugin": "pkcs7"},
                      separators=(",", ":")).encode()
    for frame in (eimzo_js, ours):
        start = document_start(frame)
        assert start is not None and frame[start:start + 4] == b"QUJD"
    assert document_start(json.dumps({"plugin": "pkcs7", "name": "create_pkcs7", "arguments": ["QUJD"]}).encode()) \
        is None  # spaces after the separators: not recognised, nothing lost
    assert document_start(b'{"plugin":"pkcs7","name":"append_pkcs7_attached","arguments":["QUJD"]}') is None
    assert document_start(b'{"name":"create_pkcs7"') is None  # too short to tell


def test_the_parser_hands_the_digests_to_the_string_that_starts_there() -> None:
    first, second = "A" * 100_000, "B" * 100_000
    frame = bytearray(json.dumps({"name": "create_pkcs7", "arguments": [first, second, "no"]},
                                 separators=(",", ":")).encode())
    start = frame.index(b"A")
    future: Future[dict[str, bytes] | None] = Future()
    request = load_request(frame, PreparedDocument(start, future))
    document, other, _ = request["arguments"]
    assert isinstance(document, LongText) and document.digests is future
    assert isinstance(other, LongText) and other.digests is None
    elsewhere = load_request(frame, PreparedDocument(start + 1, future))["arguments"][0]
    assert elsewhere.digests is None


# --- a real agent -------------------------------------------------------------------------------------------------

@dataclass
class Setup:
    tmp: Path
    agent: AgentProcess
    key_ids: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("prehash")
    folder = tmp / "flash" / "DSKEYS"
    keys = {"oz": mint(tmp / "ca", folder, "ozdst", "--cn", "PREHASH OZ", "--pinfl", "31234567890125"),
            "rsa": mint(tmp / "ca", folder, "rsa2048", "--cn", "PREHASH RSA", "--pinfl", "31234567890126")}
    askpass = make_askpass(tmp)
    askpass.answer(f"{PASSWORD}\nremember=600")
    agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program),
                        "--log-level", "DEBUG")
    try:
        entries = agent.call("list_all_certificates", plugin="pfx")["certificates"]
        key_ids = {}
        for name, pfx in keys.items():
            e = next(c for c in entries if c["name"] == pfx.stem)
            key_ids[name] = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
        yield Setup(tmp, agent, key_ids)
    finally:
        agent.stop()


def compact(document_64: str, key_id: str, detached: str, ours: bool = False) -> str:
    request = ({"name": "create_pkcs7", "arguments": [document_64, key_id, detached], "plugin": "pkcs7"} if ours
               else {"plugin": "pkcs7", "name": "create_pkcs7", "arguments": [document_64, key_id, detached]})
    return json.dumps(request, separators=(",", ":"))


def sign(setup: Setup, request: str) -> bytes:
    reply = setup.agent.call("", raw=request, timeout=120)
    assert reply["success"] is True, reply
    return base64.b64decode(reply["pkcs7_64"])


def hashed_count(setup: Setup) -> int:
    return setup.agent.log().count(HASHED)


def assert_ozdst_valid(cms_der: bytes, document: bytes, detached: bool) -> None:
    signed_data, signers = signers_of(cms_der)
    attached = signed_data["encap_content_info"]["content"].native
    assert attached == (None if detached else document)
    [signer] = signers
    assert signature_is_valid(document, signer.signed_attrs, signer.signature, signer.certificate)


@pytest.mark.parametrize(("ours", "detached"), [(False, "no"), (True, "no"), (False, "yes")])
def test_an_ozdst_signature_of_a_large_document_hashed_as_it_arrived(setup: Setup, ours: bool, detached: str) -> None:
    document = os.urandom(3 * MIB // 2 + 7)
    before = hashed_count(setup)
    cms_der = sign(setup, compact(base64.b64encode(document).decode(), setup.key_ids["oz"], detached, ours))
    assert hashed_count(setup) == before + 1
    assert_ozdst_valid(cms_der, document, detached == "yes")


def test_requests_the_digester_gives_up_on_are_signed_as_before(setup: Setup) -> None:
    document = os.urandom(3 * MIB // 2)
    before = hashed_count(setup)
    mime = base64.encodebytes(document).decode()  # line breaks every 76 characters
    assert_ozdst_valid(sign(setup, compact(mime, setup.key_ids["oz"], "no")), document, False)
    spaced = json.dumps({"plugin": "pkcs7", "name": "create_pkcs7",  # json.dumps' spaces: not recognised
                         "arguments": [base64.b64encode(document).decode(), setup.key_ids["oz"], "no"]})
    assert_ozdst_valid(sign(setup, spaced), document, False)
    assert hashed_count(setup) == before


def test_an_rsa_signature_uses_the_sha256_computed_as_it_arrived(setup: Setup) -> None:
    document = os.urandom(3 * MIB // 2)
    before = hashed_count(setup)
    cms_der = sign(setup, compact(base64.b64encode(document).decode(), setup.key_ids["rsa"], "yes"))
    assert hashed_count(setup) == before + 1
    signature, content = setup.tmp / "rsa.p7s", setup.tmp / "document.bin"
    signature.write_bytes(cms_der)
    content.write_bytes(document)
    verified = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                               "-content", str(content), "-CAfile", str(setup.tmp / "ca" / "ca.crt.pem"),
                               "-purpose", "any", "-out", os.devnull], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    attributes = asn1_cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]["signed_attrs"]
    digest = next(a["values"][0].native for a in attributes if a["type"].native == "message_digest")
    assert digest == hashlib.sha256(document).digest()
