"""Malformed bodies against every POST endpoint of a running `eimzo-agent portal serve`: never a crash.

For each endpoint 10 000 bodies from a fixed seed (random bytes, printable junk, bad base64, truncated and
bit-flipped real PKCS#7, DER with huge declared lengths, missing, extra and empty `|` parts, unicode, empty, over
the size limit) go over real keep-alive connections, several at a time. Every reply must be the documented JSON
with an HTTP status in {200, 400, 403, 413, 429, 503}: never 500, never a traceback. Afterwards the server still
answers /ping and its log holds no traceback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from agent_harness import PASSWORD, mint
from portal_harness import PortalProcess, start_portal

from eimzo_agent.crypto.cms import create_pkcs7
from eimzo_agent.dev.tsa import start_tsa
from eimzo_agent.keys.pkcs12 import open_pfx

SEED = 20261213
BODIES_PER_ENDPOINT = 10_000
CONCURRENCY = 8
MAX_BODY = 64 * 1024  # small, so "over the limit" bodies are cheap to send
ALLOWED = {200, 400, 403, 413, 429, 503}
ENDPOINTS = [
    "/backend/auth",
    "/backend/pkcs7/verify/attached",
    "/backend/pkcs7/verify/detached",
    "/frontend/timestamp/pkcs7",
    "/frontend/pkcs7/make-attached",
    "/frontend/pkcs7/join",
]
CONFIG = f"""
[limits]
max_body_bytes = {MAX_BODY}
rate_per_ip = 1000000.0
rate_burst = 1000000
"""


class Corpus:
    """Real signatures to mutate: attached and detached, RSA and P-256, over a small document."""

    def __init__(self, tmp: Path) -> None:
        self.document = b"fuzz document \xd0\xb4\xd0\xbe\xd0\xba"
        self.attached: list[bytes] = []
        self.detached: list[bytes] = []
        for alg in ("p256", "rsa2048"):
            key = open_pfx(mint(tmp / "ca", tmp / "keys", alg, "--cn", f"FUZZ {alg}").read_bytes(), PASSWORD)
            self.attached.append(create_pkcs7(self.document, key.signer, detached=False).cms_der)
            self.detached.append(create_pkcs7(self.document, key.signer, detached=True).cms_der)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _flip(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def _huge_length(rng: random.Random, data: bytes) -> bytes:
    """A DER length somewhere in the structure replaced by a long-form one claiming up to 2^64 bytes."""
    mutable = bytearray(data)
    positions = [i for i, byte in enumerate(mutable[:200]) if byte in (0x82, 0x81, 0x83)] or [1]
    at = rng.choice(positions)
    size = rng.choice([4, 8, 0x7E])
    claim = b"\xff" * min(size, 8) if size != 0x7E else b"\x01" * 8
    return bytes(mutable[:at]) + bytes([0x80 | min(size, 0x7E)]) + claim + bytes(mutable[at + 1:])


def _unicode(rng: random.Random) -> bytes:
    pieces = ["\u0000", "\u202e", "\ufeff", "Ａ", "ﬀ", "٣", "🙂", "ё", "o\u0308", "\ud800", "+/=", "|", "\r\n"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
    return text.encode("utf-8", "surrogatepass")


def _bad_base64(rng: random.Random, valid: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return valid[:-1]  # broken padding
    if choice == 1:
        at = rng.randrange(len(valid))
        return valid[:at] + rng.choice([b"!", b"*", b"\x00", b"%", b"\xff"]) + valid[at:]
    if choice == 2:
        return valid.replace(b"+", b"-").replace(b"/", b"_") + b"==="
    if choice == 3:
        return b"=" * rng.randint(1, 8) + valid
    return b" ".join(valid[i:i + 7] for i in range(0, len(valid), 7))


def body_maker(corpus: Corpus) -> Callable[[random.Random, str], bytes]:
    # Kinds 0..11 below; full signature checks (whole or barely damaged CMS) are the slow ones, so fewer of them.
    weights = [10, 10, 10, 10, 10, 8, 8, 8, 3, 8, 2, 5]

    def one_part(rng: random.Random) -> bytes:
        kind = rng.choices(range(12), weights)[0]
        cms = rng.choice(corpus.attached + corpus.detached)
        if kind == 0:
            return rng.randbytes(rng.randint(0, 2048))
        if kind == 1:
            return bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=| \n")
                         for _ in range(rng.randint(0, 600)))
        if kind == 2:
            return _bad_base64(rng, _b64(rng.randbytes(rng.randint(3, 300))))
        if kind == 3:
            return _b64(rng.randbytes(rng.randint(0, 1500)))
        if kind == 4:
            return _b64(cms[:rng.randrange(len(cms))])
        if kind == 5:
            return _b64(_flip(rng, cms))
        if kind == 6:
            return _b64(_huge_length(rng, cms))
        if kind == 7:
            return _unicode(rng)
        if kind == 8:
            return b""
        if kind == 9:
            return _bad_base64(rng, _b64(cms))
        if kind == 10:
            return _b64(cms)  # well-formed (a login of no issued challenge, a document not ours, ...)
        return _b64(corpus.document)

    def make(rng: random.Random, endpoint: str) -> bytes:
        shape = rng.randrange(20)
        if shape == 0:
            return rng.randbytes(MAX_BODY + rng.randint(1, 4096))  # over the limit: 413
        if shape < 8:  # `|`-joined shapes, for every endpoint (only some expect them)
            parts = [one_part(rng) for _ in range(rng.choice([0, 1, 2, 2, 2, 3, 5]))]
            return b"|".join(parts) + rng.choice([b"", b"|", b"||"])
        return one_part(rng)

    return make


def _check_reply(endpoint: str, body: bytes, status: int, raw: bytes, seen: Counter[str]) -> None:
    where = f"{endpoint} with {body[:120]!r} ({len(body)} bytes)"
    assert status in ALLOWED, f"HTTP {status} for {where}: {raw[:500]!r}"
    assert b"Traceback" not in raw, where
    reply = json.loads(raw)
    assert isinstance(reply, dict) and isinstance(reply.get("status"), int), f"{where}: {raw[:300]!r}"
    assert isinstance(reply.get("message", ""), str), f"{where}: {raw[:300]!r}"
    seen[f"{status}/{reply['status']}"] += 1


async def _fuzz_endpoint(session: aiohttp.ClientSession, base: str, endpoint: str,
                         make: Callable[[random.Random, str], bytes]) -> Counter[str]:
    rng = random.Random(f"{SEED}:{endpoint}")
    bodies = iter([make(rng, endpoint) for _ in range(BODIES_PER_ENDPOINT)])
    content_types = ["application/octet-stream", "text/plain", "text/plain; charset=utf-8", "application/json",
                     "multipart/form-data; boundary=x"]
    seen: Counter[str] = Counter()

    async def worker(index: int) -> None:
        for count, body in enumerate(bodies):
            headers = {"Host": "portal.example.uz", "X-Real-IP": f"198.51.100.{(index + count) % 250 + 1}",
                       "Content-Type": content_types[count % len(content_types)]}
            async with session.post(base + endpoint, data=body, headers=headers) as reply:
                _check_reply(endpoint, body, reply.status, await reply.read(), seen)

    await asyncio.gather(*(worker(index) for index in range(CONCURRENCY)))
    assert sum(seen.values()) == BODIES_PER_ENDPOINT
    return seen


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PortalProcess, Corpus]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    corpus = Corpus(tmp)
    tsa_url, stop_tsa = start_tsa(tmp / "ca")
    server = start_portal(tmp / "server", "--trust-anchor", str(tmp / "ca" / "ca.crt.pem"), "--revocation", "off",
                          "--tsa-url", tsa_url, config=CONFIG)
    try:
        yield server, corpus
    finally:
        server.stop()
        stop_tsa()


def test_malformed_bodies_never_crash_the_server(fuzzed_server: tuple[PortalProcess, Corpus]) -> None:
    server, corpus = fuzzed_server
    make = body_maker(corpus)
    base = f"http://127.0.0.1:{server.port}"

    async def run() -> dict[str, Counter[str]]:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=False)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            results = {}
            for endpoint in ENDPOINTS:
                began = time.monotonic()
                results[endpoint] = await _fuzz_endpoint(session, base, endpoint, make)
                print(f"{endpoint}: {time.monotonic() - began:.1f} s")
            async with session.get(base + "/ping") as reply:
                assert reply.status == 200 and "serverDateTime" in await reply.json()
            return results

    start = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - start
    for endpoint, seen in results.items():
        print(f"{endpoint}: {dict(sorted(seen.items()))}")
        assert any(k.startswith("413/") for k in seen), seen  # the size limit was met
        assert any(k.startswith(("200/-", "400/")) for k in seen), seen
    print(f"{len(ENDPOINTS) * BODIES_PER_ENDPOINT} requests in {elapsed:.1f} s")
    assert server.process.poll() is None
    assert "Traceback" not in server.log()


def _raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data


def test_lying_http_framing_is_answered(fuzzed_server: tuple[PortalProcess, Corpus]) -> None:
    """What aiohttp's client never sends: a declared length far over the limit, a body shorter than declared,
    a chunked body without end. Each is a 4xx (or a closed socket), and the server keeps answering."""
    server, _ = fuzzed_server
    head = (b"POST /backend/auth HTTP/1.1\r\nHost: portal.example.uz\r\nX-Real-IP: 198.51.100.1\r\n"
            b"Connection: close\r\n")
    reply = _raw_exchange(server.port, head + b"Content-Length: 99999999999999\r\n\r\nAAAA")
    assert reply.split(b" ", 2)[1] == b"413", reply[:300]
    reply = _raw_exchange(server.port, head + b"Content-Length: 12345678901234567890123\r\n\r\nAAAA")
    assert reply.split(b" ", 2)[1] in (b"400", b"413"), reply[:300]
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # short body, then hang up
        sock.sendall(head + b"Content-Length: 1000\r\n\r\nMIIB")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # chunked, never finished
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n10\r\nMIIBMIIBMIIBMIIB\r\n")
    reply = _raw_exchange(server.port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert time.monotonic() - start < 10
    assert "Traceback" not in server.log()
