"""A create_pkcs7 request's document hashed while its frame arrives (server/prehash.py, crypto/base64_digests.py).

The digester against hashlib and our O'zDSt hash over random pieces; what makes it give up; the request parser handing
the digests to the right string; and a real agent over a real WebSocket: large documents sent the way e-imzo.js and
our client write requests are hashed as they arrive (the agent's debug log says so) and their signatures check out
with independent code (gostcrypto for O'zDSt, OpenSSL for RSA), as do requests the digester must not be used for;
and the attached reply laid out ahead of the digest (the hash still running) against the same independent check.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, make_askpass, mint, start_agent
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from test_ozdst_e2e import signature_is_valid, signers_of
from websockets.sync.client import connect

from eimzo_agent.caller import Caller
from eimzo_agent.crypto import cms
from eimzo_agent.crypto.base64_digests import Base64Digests
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst_keys import OzdstPrivateKey, OzdstSigner
from eimzo_agent.dev.ozdst_ca import ensure_ozdst_ca, issue_certificate
from eimzo_agent.plugins import pkcs7
from eimzo_agent.protocol.large_request import LongText, PreparedDocument, document_start, load_request
from eimzo_agent.server import prehash

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
    files: dict[str, Path]


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
        yield Setup(tmp, agent, {name: agent.load_key(pfx) for name, pfx in keys.items()}, keys)
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


def sign_fragmented(setup: Setup, request: str, fragment: int) -> bytes:
    """The request as a browser sends a large message: a text frame and continuation frames of `fragment`
    characters each (Chromium: 131 000 bytes), not one frame."""
    with connect(setup.agent.url, origin=setup.agent.origin, compression=None, max_size=None,
                 open_timeout=10) as ws:
        ws.send(request[start:start + fragment] for start in range(0, len(request), fragment))
        reply = json.loads(ws.recv(120))
    assert reply["success"] is True, reply
    return base64.b64decode(reply["pkcs7_64"])


@pytest.mark.parametrize(("fragment", "detached", "hashed"), [
    (131000, "no", True),  # Chromium's frame size
    (131000, "yes", True),
    (4097, "no", True),  # fragments cut anywhere in a group of four Base64 characters
    (20, "no", False),  # a first fragment shorter than the request's head: not recognised, signed as before
])
def test_a_fragmented_request_is_hashed_as_its_fragments_arrive(setup: Setup, fragment: int, detached: str,
                                                                hashed: bool) -> None:
    document = os.urandom(3 * MIB // 2 + 5)
    before = hashed_count(setup)
    request = compact(base64.b64encode(document).decode(), setup.key_ids["oz"], detached)
    assert_ozdst_valid(sign_fragmented(setup, request, fragment), document, detached == "yes")
    assert hashed_count(setup) == before + hashed
    assert "Traceback" not in setup.agent.log()


STARTED = "is hashed as it arrives"  # prehash.DocumentPrehash.begin's DEBUG line


def test_a_page_with_only_rsa_or_ecdsa_keys_gets_no_ozdst_hash_ahead(setup: Setup) -> None:
    """The O'zDSt hash (≈ 90 ms of CPU for 10 MB) is made ahead only where a loaded key may use it: a page whose
    keys are all known (from their certificates, readable without the password) to be RSA or ECDSA ones gets none."""
    rsa_page = "http://localhost:3000"
    key_id = setup.agent.load_key(setup.files["rsa"], origin=rsa_page)
    document = os.urandom(3 * MIB // 2)
    request = compact(base64.b64encode(document).decode(), key_id, "yes")
    before = setup.agent.log().count(STARTED)
    reply = setup.agent.call("", raw=request, origin=rsa_page, timeout=120)
    assert reply["success"] is True, reply
    assert setup.agent.log().count(STARTED) == before  # not started at all
    # The page with an O'zDSt key (and an RSA one) still gets it.
    sign(setup, compact(base64.b64encode(document).decode(), setup.key_ids["rsa"], "yes"))
    assert setup.agent.log().count(STARTED) == before + 1


def test_an_ecdsa_key_gets_no_ozdst_hash_ahead_once_opened(setup: Setup) -> None:
    """An elliptic-curve key's file does not tell O'zDSt from ECDSA without the password: until the key is opened
    its page's large documents are hashed ahead; once it has signed, no more."""
    page = "http://localhost:3001"
    pfx = mint(setup.tmp / "ca", setup.tmp / "flash" / "DSKEYS", "p256", "--cn", "PREHASH P256", "--pinfl",
               "31234567890127")
    key_id = setup.agent.load_key(pfx, origin=page)
    request = compact(base64.b64encode(os.urandom(3 * MIB // 2)).decode(), key_id, "yes")
    started = setup.agent.log().count(STARTED)
    for expected in (started + 1, started + 1):  # the first one is hashed ahead (in vain), the second is not
        reply = setup.agent.call("", raw=request, origin=page, timeout=120)
        assert reply["success"] is True, reply
        assert setup.agent.log().count(STARTED) == expected


def test_requests_the_digester_gives_up_on_are_signed_as_before(setup: Setup) -> None:
    document = os.urandom(3 * MIB // 2)
    before = hashed_count(setup)
    mime = base64.encodebytes(document).decode()  # line breaks every 76 characters
    assert_ozdst_valid(sign(setup, compact(mime, setup.key_ids["oz"], "no")), document, False)
    spaced = json.dumps({"plugin": "pkcs7", "name": "create_pkcs7",  # json.dumps' spaces: not recognised
                         "arguments": [base64.b64encode(document).decode(), setup.key_ids["oz"], "no"]})
    assert_ozdst_valid(sign(setup, spaced), document, False)
    assert hashed_count(setup) == before


def test_an_rsa_signature_hashes_its_document_itself(setup: Setup) -> None:
    """The digester makes the O'zDSt hash only: an RSA key's SHA-256 is not among the prepared digests."""
    document = os.urandom(3 * MIB // 2)
    before = hashed_count(setup)
    cms_der = sign(setup, compact(base64.b64encode(document).decode(), setup.key_ids["rsa"], "yes"))
    assert hashed_count(setup) == before
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


# --- the reply made ahead while the hash runs (plugins/pkcs7.py) ---------------------------------------------------

@pytest.fixture(scope="module")
def ozdst_signer(tmp_path_factory: pytest.TempPathFactory) -> OzdstSigner:
    ca = ensure_ozdst_ca(tmp_path_factory.mktemp("ozdst-ca"))
    key = OzdstPrivateKey.generate()
    now = datetime.now(UTC)
    name = asn1_x509.Name.build({"common_name": "OZDST SINOV", "country_name": "UZ"})
    return OzdstSigner(key, issue_certificate(ca, key.public_key(), name, now - timedelta(minutes=5),
                                              now + timedelta(days=30)), (ca.certificate,))


def run_sign_large(content: bytes, signer: OzdstSigner, digest: bytes | None, delay: float = 0.2,
                   detached: bool = False) -> tuple[bytes, str]:
    """pkcs7._sign_large with the digest arriving `delay` seconds later from another thread, as from the prehash."""
    future: Future[dict[str, bytes] | None] = Future()
    timer = threading.Timer(delay, lambda: future.set_result({"gost94": digest} if digest is not None else None))
    timer.start()
    try:
        reply, journal_sha256 = asyncio.run(pkcs7._sign_large(content, signer, detached, future))
    finally:
        timer.join()
    value = reply["pkcs7_64"]  # Base64Pieces for an attached signature, a small Base64Text for a detached one
    return base64.b64decode(value if isinstance(value, str) else value.text()), journal_sha256


@pytest.mark.parametrize("size", [3 * MIB, 3 * MIB + 1, 3 * MIB + 2])  # each alignment of the document's Base64
def test_the_reply_made_ahead_of_the_digest_is_the_signature(ozdst_signer: OzdstSigner, size: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    content = os.urandom(size)
    made_ahead = []
    real = pkcs7._reply_ahead
    monkeypatch.setattr(pkcs7, "_reply_ahead", lambda *args: made_ahead.append(1) or real(*args))
    cms_der, journal_sha256 = run_sign_large(content, ozdst_signer, gost94_digest(content))
    assert made_ahead == [1]
    assert journal_sha256 == hashlib.sha256(content).hexdigest()
    assert_ozdst_valid(cms_der, content, detached=False)
    asn1_cms.ContentInfo.load(cms_der, strict=True)  # nothing left over after the DER


def test_the_prefix_laid_out_ahead_is_the_real_one(ozdst_signer: OzdstSigner) -> None:
    """cms.attached_prefix against the CMS really made: otherwise the reply made ahead would silently be redone."""
    content = os.urandom(300_001)
    moment = datetime.now(UTC)
    prefix = cms.attached_prefix(content, ozdst_signer, signing_time=moment, signed_attributes="eimzo",
                                 digest_size=32, signature_size=64)
    real = cms.create_pkcs7(content, ozdst_signer, detached=False, signing_time=moment, signed_attributes="eimzo")
    assert real.cms_parts[0] == prefix


def test_without_a_prepared_digest_the_reply_made_ahead_still_holds(ozdst_signer: OzdstSigner) -> None:
    content = os.urandom(2 * MIB)
    cms_der, _ = run_sign_large(content, ozdst_signer, None)  # the digester gave up: the content is hashed here
    assert_ozdst_valid(cms_der, content, detached=False)


def test_a_layout_not_foreseen_is_encoded_again(ozdst_signer: OzdstSigner, monkeypatch: pytest.MonkeyPatch) -> None:
    content = os.urandom(2 * MIB)
    real = pkcs7._reply_ahead

    def wrong_prefix(*args: object) -> pkcs7._ReplyAhead:
        ahead = real(*args)  # type: ignore[arg-type]
        return pkcs7._ReplyAhead(ahead.signing_time, ahead.prefix + b"x", ahead.pieces[:1], ahead.carry)

    monkeypatch.setattr(pkcs7, "_reply_ahead", wrong_prefix)
    cms_der, _ = run_sign_large(content, ozdst_signer, gost94_digest(content))
    assert_ozdst_valid(cms_der, content, detached=False)


def test_a_detached_signature_waits_for_the_digest(ozdst_signer: OzdstSigner) -> None:
    content = os.urandom(2 * MIB)
    cms_der, _ = run_sign_large(content, ozdst_signer, gost94_digest(content), detached=True)
    assert_ozdst_valid(cms_der, content, detached=True)


# --- the session's side: pieces handed to the worker (server/prehash.py) -------------------------------------------

def request_chunks(document: bytes, size: int) -> list[bytes]:
    frame = compact(base64.b64encode(document).decode(), "k", "no").encode()
    return [frame[i:i + size] for i in range(0, len(frame), size)]


def feed_all(chunks: list[bytes]) -> prehash.DocumentPrehash | None:
    caller = Caller.from_origin("https://soliq.uz")
    started = prehash.DocumentPrehash.begin(chunks[0], lambda _: Base64Digests(("gost94",)), caller)
    offset = 0
    for chunk in chunks:
        if started is not None:
            started.observe(chunk, offset)
        offset += len(chunk)
    return started


def test_the_worker_hashes_the_document_in_order() -> None:
    document = os.urandom(MIB)
    started = feed_all(request_chunks(document, 4096 + 3))
    assert started is not None
    prepared = started.prepared()
    assert prepared is not None
    assert prepared.digests.result(timeout=30) == {"gost94": gost94_digest(document)}
    assert prehash.queued_bytes() == 0


def test_no_digester_no_work() -> None:
    chunks = request_chunks(os.urandom(1000), 512)
    assert prehash.DocumentPrehash.begin(chunks[0], lambda _: None, Caller.from_origin("https://soliq.uz")) is None
    assert feed_all([b'{"name":"version","arguments":[]}']) is None


def test_a_worker_too_far_behind_gives_the_document_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prehash, "MAX_QUEUED_BYTES", 256 * 1024)
    release = threading.Event()
    blocker = prehash._submit(release.wait, 30)  # the worker is busy: pieces pile up in its queue
    try:
        started = feed_all(request_chunks(os.urandom(MIB), 64 * 1024))
        assert started is not None and started.prepared() is None  # given up once the queue was full
        assert 0 < prehash.queued_bytes() <= 256 * 1024
    finally:
        release.set()
        blocker.result(timeout=30)
    prehash._submit(lambda: None).result(timeout=30)  # everything queued before has been skipped through
    assert prehash.queued_bytes() == 0
    monkeypatch.setattr(prehash, "MAX_QUEUED_BYTES", 4 * MIB)
    document = os.urandom(MIB)  # with room for it, the next document is hashed ahead
    started = feed_all(request_chunks(document, 64 * 1024))
    assert started is not None and started.prepared() is not None
    assert started.prepared().digests.result(timeout=30) == {"gost94": gost94_digest(document)}  # type: ignore[union-attr]
