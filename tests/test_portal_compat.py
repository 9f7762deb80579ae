"""E-IMZO-server compatibility of `eimzo-agent portal serve`, through a client that speaks only what the vendor
documents (raw base64 bodies, Host / X-Real-IP, `|`-joined parts): every endpoint and the login's status codes.

Three servers are started once for the module (real subprocesses on free ports): `main` (origin-bound
challenges, test anchors, the development TSA, revocation "prefer": the minted keys name no OCSP/CRL), `quick`
(E-IMZO-server's UUID challenges, a 1 s TTL, a tiny rate limit and body limit) and `split` (/backend/* on its own
port behind a shared secret, revocation "require"). Revoked certificates via OCSP/CRL are tests/test_revocation.py's.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from portal_harness import (
    PortalKey,
    PortalProcess,
    anchor_args,
    b64,
    call,
    launch_portal,
    login,
    mint_key,
)

from eimzo_agent.crypto import cms, timestamp
from eimzo_agent.crypto.signer import CryptographySigner
from eimzo_agent.dev.mint import ensure_dev_ca
from eimzo_agent.dev.tsa import start_tsa
from eimzo_agent.login_challenge import parse_challenge

SECRET = "s3cret-for-the-backend-only"
DASHED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
DOCUMENT = "Shartnoma №42: ikki tomon roziligi bilan".encode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("portal")


@pytest.fixture(scope="module")
def keys(folder: Path) -> dict[str, PortalKey]:
    ca, out = folder / "ca", folder / "keys"
    first = mint_key(ca, out, "ozdst", "31234567890123")  # makes the CA and its O'zDSt sub-CA, once
    wanted = {
        "rsa": (ca, "rsa2048", "41234567890123"),
        "p256": (ca, "p256", "51234567890123"),
        "expired": (ca, "rsa2048", "61234567890123", "--valid-from", "2020-01-01", "--valid-to", "2021-01-01"),
        "stranger": (folder / "other-ca", "rsa2048", "71234567890123"),
    }
    with ThreadPoolExecutor(4) as pool:  # each mint is a CLI subprocess: in parallel
        futures = {name: pool.submit(mint_key, spec[0], out, *spec[1:]) for name, spec in wanted.items()}
        return {"ozdst": first, **{name: future.result() for name, future in futures.items()}}


@pytest.fixture(scope="module")
def tsa_url(folder: Path, keys: dict[str, PortalKey]) -> Iterator[str]:
    url, stop = start_tsa(folder / "ca")
    yield url
    stop()


@pytest.fixture(scope="module")
def servers(folder: Path, keys: dict[str, PortalKey], tsa_url: str) -> Iterator[dict[str, PortalProcess]]:
    ca = folder / "ca"
    launches = {
        "main": launch_portal(folder / "main", *anchor_args(ca), "--tsa-url", tsa_url, "--revocation", "prefer",
                              config="[limits]\nrate_per_ip = 1000\nrate_burst = 1000\n"),
        "quick": launch_portal(folder / "quick", *anchor_args(ca), "--revocation", "off", config=(
            '[challenge]\nttl = 1\nformat = "uuid"\n[limits]\nrate_per_ip = 1\nrate_burst = 3\n'
            "max_body_bytes = 65536\n")),
        "split": launch_portal(folder / "split", *anchor_args(ca), "--backend-port", "0", "--backend-secret", SECRET,
                               config='[challenge]\norigins = ["http://portal.example", "https://portal.example"]\n'),
    }
    started: dict[str, PortalProcess] = {}
    try:
        for name, launch in launches.items():
            started[name] = launch.wait()
        yield started
    finally:
        for launch in launches.values():
            if launch.process.poll() is None:
                launch.process.terminate()
                launch.process.wait(10)
            if launch.process.stdout is not None:
                launch.process.stdout.close()
        for server in started.values():
            assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def main(servers: dict[str, PortalProcess]) -> str:
    return servers["main"].url


def fresh_ip() -> str:
    """A client address of its own per call sequence (the quick server's rate limit is per IP)."""
    fresh_ip.counter = getattr(fresh_ip, "counter", 0) + 1  # type: ignore[attr-defined]
    return f"198.51.100.{fresh_ip.counter}"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------------------
# /ping, /info, /frontend/challenge


def test_ping_and_info(main: str) -> None:
    ping = call(main, "/ping", ip="203.0.113.9")
    assert ping.status == 200
    body = ping.json()
    assert body["status"] == 1 and body["yourIP"] == "203.0.113.9" and DASHED.fullmatch(body["serverDateTime"])
    assert "vpnKeyInfo" in body  # no VPN here: null
    info = call(main, "/info").json()
    assert info["status"] == 1 and info["version"]
    assert re.fullmatch(r"[0-9]{4}\.[0-9]{2}\.[0-9]{2} [0-9:]{8}", info["serverTime"])
    names = [entry["subjectInfo"].get("CN") for entry in info["trustedCertificates"]]
    assert "eimzo-agent dev CA" in names and len(names) >= 3  # the bundled national root + both test CAs
    assert all({"serialNumber", "validFrom", "validTo", "subjectInfo"} <= set(e) for e in info["trustedCertificates"])


def test_challenge_is_origin_bound_uncached_and_fresh(main: str) -> None:
    first = call(main, "/frontend/challenge?_uc=1_2", host="portal.example")
    assert first.status == 200 and "no-store" in first.headers["cache-control"]
    body = first.json()
    assert body["status"] == 1 and body["ttl"] == 120 and body["message"] == ""
    parsed = parse_challenge(body["challenge"])
    assert parsed is not None and parsed.origin == "http://portal.example"
    behind_tls = call(main, "/frontend/challenge", method="POST", host="Portal.Example:443",
                      headers={"X-Forwarded-Proto": "https"}).json()
    assert parse_challenge(behind_tls["challenge"]).origin == "https://portal.example"  # type: ignore[union-attr]
    assert behind_tls["challenge"] != body["challenge"]


# --------------------------------------------------------------------------------------------------------------
# /backend/auth


@pytest.mark.parametrize("alg", ["ozdst", "rsa", "p256"])
def test_good_login(main: str, keys: dict[str, PortalKey], alg: str) -> None:
    key = keys[alg]
    answer = login(main, key)
    assert answer["status"] == 1, answer
    info = answer["subjectCertificateInfo"]
    assert info["subjectName"]["1.2.860.3.16.1.2"] == key.pinfl
    assert info["subjectName"]["UID"] == key.pinfl[:9] and info["subjectName"]["SURNAME"] == "VALIYEV"
    assert f"CN=TEST {key.pinfl}" in info["X500Name"]
    assert DASHED.fullmatch(info["validFrom"]) and DASHED.fullmatch(info["validTo"])
    assert re.fullmatch(r"[0-9a-f]+", info["serialNumber"])


def test_access_log_has_requests_not_bodies(servers: dict[str, PortalProcess], keys: dict[str, PortalKey]) -> None:
    main = servers["main"]
    challenge = call(main.url, "/frontend/challenge", host="portal.example", ip="192.0.2.55").json()["challenge"]
    signed = b64(keys["rsa"].sign(challenge.encode()))
    assert call(main.url, "/backend/auth", signed, host="portal.example", ip="192.0.2.55").json()["status"] == 1
    line = re.compile(r'192\.0\.2\.55 "POST /backend/auth HTTP/1\.1" 200 ')
    deadline = time.monotonic() + 5
    while not line.search(log := main.log()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the access log line is written just after the answer
    assert line.search(log), log[-2000:]
    assert signed[:40] not in log and challenge.split("nonce=")[1] not in log


def test_reused_wrong_host_wrong_ip_challenge(main: str, keys: dict[str, PortalKey]) -> None:
    key = keys["p256"]
    challenge = call(main, "/frontend/challenge", host="portal.example", ip="203.0.113.7").json()["challenge"]
    signed = b64(key.sign(challenge.encode()))
    assert call(main, "/backend/auth", signed, host="portal.example", ip="203.0.113.7").json()["status"] == 1
    again = call(main, "/backend/auth", signed, host="portal.example", ip="203.0.113.7").json()
    assert again["status"] == -20 and again["message"]
    for host, ip in (("evil.example", "203.0.113.7"), ("portal.example", "203.0.113.99")):
        challenge = call(main, "/frontend/challenge", host="portal.example", ip="203.0.113.7").json()["challenge"]
        signed = b64(key.sign(challenge.encode()))
        assert call(main, "/backend/auth", signed, host=host, ip=ip).json()["status"] == -20
        # taken before validation: the right client cannot use it afterwards either
        assert call(main, "/backend/auth", signed, host="portal.example", ip="203.0.113.7").json()["status"] == -20


def test_unknown_challenge_and_tampered_content(main: str, keys: dict[str, PortalKey]) -> None:
    key = keys["rsa"]
    never_issued = key.sign(b"eimzo-login v1 origin=http://portal.example issued=20260101T000000Z nonce=" + b"A" * 43)
    assert call(main, "/backend/auth", b64(never_issued), host="portal.example").json()["status"] == -20
    # Sign challenge A, then put challenge B (also issued, same length) in its place: the signature no longer fits.
    a = call(main, "/frontend/challenge", host="portal.example").json()["challenge"]
    b = call(main, "/frontend/challenge", host="portal.example").json()["challenge"]
    assert len(a) == len(b)
    tampered = key.sign(a.encode()).replace(a.encode(), b.encode())
    answer = call(main, "/backend/auth", b64(tampered), host="portal.example").json()
    assert answer["status"] == -10 and "messageDigest" in answer["message"]


def test_a_login_has_exactly_one_signer(main: str, keys: dict[str, PortalKey]) -> None:
    """A co-signed challenge is no login (whose would it be?): -10, and the challenge is spent."""
    challenge = call(main, "/frontend/challenge", host="portal.example").json()["challenge"]
    signed = keys["rsa"].sign(challenge.encode())
    second = keys["p256"].unlocked().signer
    cosigned = cms.append_signer(signed, second, signed_attributes=second.cms_profile).cms_der
    answer = call(main, "/backend/auth", b64(cosigned), host="portal.example").json()
    assert answer["status"] == -10 and "exactly one signer" in answer["message"], answer
    assert call(main, "/backend/auth", b64(signed), host="portal.example").json()["status"] == -20


def test_expired_certificate_unknown_ca_and_clock(main: str, keys: dict[str, PortalKey]) -> None:
    assert login(main, keys["expired"])["status"] == -11
    stranger = login(main, keys["stranger"])
    assert stranger["status"] == -11 and "subjectCertificateInfo" not in stranger
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    late = login(main, keys["ozdst"], signing_time=an_hour_ago)
    assert late["status"] == -5 and "date and time" in late["message"]


def test_key_without_digital_signature_usage(main: str, folder: Path, keys: dict[str, PortalKey]) -> None:
    """A certificate of a trusted CA whose keyUsage is only keyEncipherment cannot log in (-11)."""
    ca = ensure_dev_ca(folder / "ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (crypto_x509.CertificateBuilder().subject_name(crypto_x509.Name.from_rfc4514_string("CN=ENCRYPTION ONLY"))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(crypto_x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(crypto_x509.KeyUsage(False, False, True, False, False, False, False, False, False), True)
            .sign(ca.private_key, hashes.SHA256()))
    signer = CryptographySigner(key, asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))
    challenge = call(main, "/frontend/challenge", host="portal.example").json()["challenge"]
    signed = cms.create_pkcs7(challenge.encode(), signer, detached=False).cms_der
    answer = call(main, "/backend/auth", b64(signed), host="portal.example").json()
    assert answer["status"] == -11 and "digitalSignature" in answer["message"]


def test_uuid_challenges_expire(servers: dict[str, PortalProcess], keys: dict[str, PortalKey]) -> None:
    quick = servers["quick"].url
    ip = fresh_ip()
    answer = call(quick, "/frontend/challenge", host="portal.example", ip=ip).json()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", answer["challenge"])
    assert answer["ttl"] == 1
    signed = b64(keys["rsa"].sign(answer["challenge"].encode()))
    assert call(quick, "/backend/auth", signed, host="portal.example", ip=ip).json()["status"] == 1
    ip = fresh_ip()
    late = call(quick, "/frontend/challenge", host="portal.example", ip=ip).json()["challenge"]
    time.sleep(1.3)
    signed = b64(keys["rsa"].sign(late.encode()))
    assert call(quick, "/backend/auth", signed, host="portal.example", ip=ip).json()["status"] == -20


def test_backend_listener_secret_and_required_status(servers: dict[str, PortalProcess],
                                                     keys: dict[str, PortalKey]) -> None:
    split = servers["split"]
    assert split.backend_url is not None and split.backend_url != split.url
    challenge = call(split.url, "/frontend/challenge", host="portal.example").json()["challenge"]
    signed = b64(keys["rsa"].sign(challenge.encode()))
    on_public = call(split.url, "/backend/auth", signed, host="portal.example")
    assert on_public.status == 403 and on_public.json()["error"] == "forbidden"
    no_secret = call(split.backend_url, "/backend/auth", signed, host="portal.example")
    assert no_secret.status == 403
    wrong = call(split.backend_url, "/backend/auth", signed, host="portal.example",
                 headers={"X-Backend-Secret": SECRET + "x"})
    assert wrong.status == 403
    assert call(split.backend_url, "/frontend/challenge").status == 404  # the backend port serves /backend/* only
    # [challenge] origins: a site outside the list (a phishing site reaching the server with its own Host) gets none.
    for host, proto in (("phish.example", "https"), ("portal.example:8443", "https"), ("PORTAL.example", "ftp")):
        refused = call(split.url, "/frontend/challenge", host=host, headers={"X-Forwarded-Proto": proto})
        assert refused.status == 400 and "challenge" not in refused.json(), refused.json()
    behind_tls = call(split.url, "/frontend/challenge", host="Portal.Example:443",
                      headers={"X-Forwarded-Proto": "https"})
    assert parse_challenge(behind_tls.json()["challenge"]).origin == "https://portal.example"  # type: ignore[union-attr]
    # "require" and a certificate naming no OCSP responder or CRL: the status cannot be checked (-1).
    answer = call(split.backend_url, "/backend/auth", signed, host="portal.example",
                  headers={"X-Backend-Secret": SECRET})
    assert answer.status == 200 and answer.json()["status"] == -1, answer.json()


# --------------------------------------------------------------------------------------------------------------
# Signatures: verify, make-attached, join, timestamp


def test_verify_attached_and_detached(main: str, keys: dict[str, PortalKey]) -> None:
    attached = keys["ozdst"].sign(DOCUMENT)
    answer = call(main, "/backend/pkcs7/verify/attached", b64(attached)).json()
    assert answer["status"] == 1, answer
    info = answer["pkcs7Info"]
    assert base64.b64decode(info["documentBase64"]) == DOCUMENT
    signer = info["signers"][0]
    assert signer["verified"] and signer["certificateVerified"] and signer["certificateValidAtSigningTime"]
    assert DASHED.fullmatch(signer["signingTime"]) and DASHED.fullmatch(signer["certificate"][0]["validFrom"])
    assert signer["certificate"][0]["subjectInfo"]["1.2.860.3.16.1.2"] == keys["ozdst"].pinfl
    detached = keys["rsa"].sign(DOCUMENT, detached=True)
    answer = call(main, "/backend/pkcs7/verify/detached", f"{b64(DOCUMENT)}|{b64(detached)}").json()
    assert answer["status"] == 1 and "documentBase64" not in answer["pkcs7Info"]
    other = call(main, "/backend/pkcs7/verify/detached", f"{b64(b'another')}|{b64(detached)}").json()
    assert other["status"] == -10
    stranger = call(main, "/backend/pkcs7/verify/attached", b64(keys["stranger"].sign(DOCUMENT))).json()
    assert stranger["status"] == -11 and stranger["pkcs7Info"]["signers"][0]["certificateVerified"] is False
    too_late = keys["expired"].sign(DOCUMENT)
    assert call(main, "/backend/pkcs7/verify/attached", b64(too_late)).json()["status"] == -12


def test_make_attached_and_join(main: str, keys: dict[str, PortalKey]) -> None:
    detached = keys["p256"].sign(DOCUMENT, detached=True)
    made = call(main, "/frontend/pkcs7/make-attached", f"{b64(DOCUMENT)}|{b64(detached)}").json()
    assert made["status"] == 1
    assert cms.read_signed_data(base64.b64decode(made["pkcs7b64"])).content == DOCUMENT
    wrong = call(main, "/frontend/pkcs7/make-attached", f"{b64(b'other')}|{b64(detached)}").json()
    assert wrong["status"] == -10
    first, second = keys["rsa"].sign(DOCUMENT), keys["ozdst"].sign(DOCUMENT)
    joined = call(main, "/frontend/pkcs7/join", f"{b64(first)}|{b64(second)}").json()
    assert joined["status"] == 1
    verified = call(main, "/backend/pkcs7/verify/attached", joined["pkcs7b64"]).json()
    assert verified["status"] == 1 and len(verified["pkcs7Info"]["signers"]) == 2
    different = call(main, "/frontend/pkcs7/join", f"{b64(first)}|{b64(keys['p256'].sign(b'x'))}")
    assert different.status == 400 and "different" in different.json()["message"]


def test_make_attached_and_join_pass_openssl(main: str, folder: Path, keys: dict[str, PortalKey],
                                            tmp_path: Path) -> None:
    """An independent verifier agrees: OpenSSL checks both signers of a join of a made-attached PKCS#7."""
    detached = keys["p256"].sign(DOCUMENT, detached=True)
    made = call(main, "/frontend/pkcs7/make-attached", f"{b64(DOCUMENT)}|{b64(detached)}").json()["pkcs7b64"]
    joined = call(main, "/frontend/pkcs7/join", f"{made}|{b64(keys['rsa'].sign(DOCUMENT))}").json()
    p7s = tmp_path / "joined.p7s"
    p7s.write_bytes(base64.b64decode(joined["pkcs7b64"]))
    result = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s),
                             "-CAfile", str(folder / "ca" / "ca.crt.pem"), "-out", str(tmp_path / "out")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == DOCUMENT
    signers = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(p7s)],
                             capture_output=True, text=True, check=True).stdout
    assert signers.count("signatureAlgorithm:") == 2


@pytest.mark.parametrize(("alg", "imprint"), [("rsa", "SHA-256"), ("ozdst", "OZDST-1106-2009-2-A")])
def test_timestamp_then_verify_shows_the_token(main: str, keys: dict[str, PortalKey], alg: str,
                                               imprint: str) -> None:
    signed = keys[alg].sign(DOCUMENT)
    stamped = call(main, "/frontend/timestamp/pkcs7", b64(signed)).json()
    assert stamped["status"] == 1 and len(stamped["timestampedSignerList"]) == 1, stamped
    assert stamped["timestampedSignerList"][0]["subjectName"].startswith(f"CN=TEST {keys[alg].pinfl}")
    again = call(main, "/frontend/timestamp/pkcs7", stamped["pkcs7b64"]).json()
    assert again["status"] == 1 and again["timestampedSignerList"] == []
    verified = call(main, "/backend/pkcs7/verify/attached", stamped["pkcs7b64"]).json()
    assert verified["status"] == 1, verified
    token = verified["pkcs7Info"]["signers"][0]["timeStampInfo"]
    assert token["verified"] is True and token["tsaPolicy"] == "1.2.860.3.2.11.1" and DASHED.fullmatch(token["time"])
    assert token["hashAlgorithm"] == imprint


def test_token_of_an_untrusted_tsa_is_21(main: str, folder: Path, keys: dict[str, PortalKey]) -> None:
    """A token from a TSA whose CA is no trust anchor of the server: the verify endpoint says -21."""
    url, stop = start_tsa(folder / "other-ca")
    try:
        signed = keys["rsa"].sign(DOCUMENT)
        info = cms.read_signed_data(signed).signers[0]
        request = urllib.request.Request(url, data=timestamp.request_for_signature(info.signature, ozdst=False),
                                         headers={"Content-Type": "application/timestamp-query"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            stamped = timestamp.attach_token(signed, info.serial_hex, reply.read())
    finally:
        stop()
    answer = call(main, "/backend/pkcs7/verify/attached", b64(stamped)).json()
    assert answer["status"] == -21 and answer["message"].startswith("time-stamp token:"), answer
    assert answer["pkcs7Info"]["signers"][0]["timeStampInfo"]["verified"] is False


def test_timestamp_without_tsa_is_503(servers: dict[str, PortalProcess], keys: dict[str, PortalKey]) -> None:
    answer = call(servers["split"].url, "/frontend/timestamp/pkcs7", b64(keys["rsa"].sign(DOCUMENT)))
    assert answer.status == 503 and answer.json()["error"] == "no_tsa"


# --------------------------------------------------------------------------------------------------------------
# Bad bodies, limits


@pytest.mark.parametrize(("path", "body"), [
    ("/backend/auth", ""),
    ("/backend/auth", "not base64 !!"),
    ("/backend/auth", b64(b"not a CMS at all")),
    ("/backend/auth", b64(b"\x30\x80" * 40)),
    ("/backend/pkcs7/verify/attached", b64(b"\x30\x03\x02\x01\x01")),
    ("/backend/pkcs7/verify/detached", b64(b"document only, no separator")),
    ("/backend/pkcs7/verify/detached", "a|b|c"),
    ("/frontend/pkcs7/make-attached", "|"),
    ("/frontend/pkcs7/join", b64(b"x") + "|" + b64(b"y")),
    ("/frontend/timestamp/pkcs7", "\u00e9".encode()),
])
def test_bad_bodies_are_400_json(main: str, path: str, body: str | bytes) -> None:
    answer = call(main, path, body, host="portal.example")
    assert answer.status == 400, answer
    reply = answer.json()
    assert reply["status"] == 0 and reply["message"] and "Traceback" not in reply["message"]


def test_detached_to_attached_endpoint_is_400(main: str, keys: dict[str, PortalKey]) -> None:
    detached = keys["rsa"].sign(DOCUMENT, detached=True)
    assert call(main, "/backend/pkcs7/verify/attached", b64(detached)).status == 400
    assert call(main, "/backend/auth", b64(detached), host="portal.example").status == 400


def test_body_limit_and_rate_limit(servers: dict[str, PortalProcess]) -> None:
    quick = servers["quick"]
    # 100 MB announced: refused before a byte of it is read.
    with socket.create_connection(("127.0.0.1", quick.port), timeout=10) as sock:
        sock.sendall(b"POST /backend/auth HTTP/1.1\r\nHost: portal.example\r\nContent-Length: 104857600\r\n\r\n")
        sock.sendall(b"A" * 65536)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413") and b'"too_large"' in head
    # No Content-Length (chunked): counted while read.
    chunk = b"A" * 40000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", quick.port), timeout=10) as sock:
        sock.sendall(b"POST /backend/pkcs7/verify/attached HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    ip = fresh_ip()
    codes = [call(quick.url, "/frontend/challenge", host="portal.example", ip=ip).status for _ in range(6)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    assert call(quick.url, "/frontend/challenge", host="portal.example", ip=fresh_ip()).status == 200


# --------------------------------------------------------------------------------------------------------------
# Start-up errors: one line, exit 2


def test_startup_errors_are_one_line(tmp_path: Path, servers: dict[str, PortalProcess]) -> None:
    bad = tmp_path / "portal.toml"
    bad.write_text("[challenge]\nttl = 'soon'\n")
    cases = (
        (["--config", str(bad)], "[challenge] ttl has the wrong type"),
        (["--config", str(tmp_path / "missing.toml")], "cannot read"),
        (["--port", "0", "--trust-anchor", str(tmp_path / "nope.pem")], "trust anchor"),
        (["--port", str(servers["main"].port)], "the port is in use"),
    )
    running = [subprocess.Popen([sys.executable, "-m", "eimzo_agent", "portal", "serve", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args, _ in cases]
    # Without the `portal` extra (aiohttp made unimportable): the hint, not an ImportError.
    without_extra = ("import sys; sys.modules['aiohttp'] = None; from eimzo_agent.cli import main; "
                     "sys.exit(main(['portal', 'serve', '--port', '0']))")
    running.append(subprocess.Popen([sys.executable, "-c", without_extra], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))
    cases += (([], "install eimzo-agent[portal]"),)
    for process, (args, expected) in zip(running, cases, strict=True):
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 2, (args, stderr)
        assert expected in stderr and "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
