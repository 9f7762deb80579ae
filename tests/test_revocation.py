"""Certificate revocation (issue 13): `portal.revocation.RevocationChecker` over real sockets against OpenSSL's own
OCSP responder and the development responder (`eimzo-agent dev ocsp`), and end to end through the real
verification server (`eimzo-agent portal serve`).

Independent oracles: OpenSSL's responder (`openssl ocsp -index`) answers for P-256 certificates of the dev CA,
through a delegated responder certificate, and OpenSSL's client and `openssl crl -verify` check what the dev
responder serves. Certificates come from the real `eimzo-agent dev mint-key --ocsp-url/--crl-url`; revocations
from the real `eimzo-agent dev revoke`. OpenSSL's responder listens on all interfaces (it has no address option)
on a free port, only while its test runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.request as urllib_request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import PASSWORD, mint
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from portal_harness import PortalKey, PortalProcess, anchor_args, b64, call, launch_portal, login

from eimzo_agent.crypto import ocsp
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.dev.ocsp import RevocationResponder, serve_responder
from eimzo_agent.dev.revoked import revoke as revoke_in_process
from eimzo_agent.keys.pkcs12 import open_pfx
from eimzo_agent.portal.revocation import NO_URL_PROBLEM, RevocationChecker, RevocationResult


@dataclass(frozen=True)
class Issued:
    cert: asn1_x509.Certificate
    issuer: asn1_x509.Certificate
    key: PortalKey

    @property
    def serial_hex(self) -> str:
        return format(self.cert.serial_number, "x")

    def pem_file(self, path: Path) -> Path:
        path.write_bytes(pem.armor("CERTIFICATE", self.cert.dump()))
        return path


_counter = iter(range(10_000))


def issue(ca: Path, out: Path, alg: str, *, ocsp: str | None = None, crl: str | None = None,
          cli: bool = False) -> Issued:
    """A dev key with the given OCSP / CRL URLs and its certificates: from the real `eimzo-agent dev mint-key`
    (`cli`), or from the library function it calls (a Python start less per key)."""
    pinfl = f"3120119{next(_counter):07d}"
    if cli:
        extra = [*(["--ocsp-url", ocsp] if ocsp else []), *(["--crl-url", crl] if crl else [])]
        path = mint(ca, out, alg, "--cn", f"TEST {pinfl}", "--name", "ALI", "--surname", "VALIYEV", "--pinfl",
                    pinfl, "--tin", pinfl[:9], *extra)
    else:
        subject = SubjectFields(cn=f"TEST {pinfl}", name="ALI", surname="VALIYEV", pinfl=pinfl, tin=pinfl[:9])
        path = mint_key(ensure_dev_ca(ca), out, password=PASSWORD, subject=subject, alg=alg,  # type: ignore[arg-type]
                        ocsp_url=ocsp, crl_url=crl)
    entry = open_pfx(path.read_bytes(), PASSWORD)
    return Issued(entry.certificate, entry.chain[0], PortalKey(path, pinfl, alg))


def revoke(ca: Path, serial_hex: str, reason: str) -> None:
    """The real `eimzo-agent dev revoke`."""
    result = subprocess.run([sys.executable, "-m", "eimzo_agent", "dev", "revoke", "--ca", str(ca), "--serial",
                             serial_hex, "--reason", reason], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"revoked {serial_hex} at ")


def check(cert: asn1_x509.Certificate, issuer: asn1_x509.Certificate, *, checker: RevocationChecker | None = None,
          **options: float) -> RevocationResult:
    """One check with a fresh checker (or the given one, left open)."""
    async def run() -> RevocationResult:
        own = checker or RevocationChecker(**options)  # type: ignore[arg-type]
        try:
            return await own.check(cert, issuer)
        finally:
            if checker is None:
                await own.close()

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DevPki:
    ca: Path
    keys: Path
    url: str
    responder: RevocationResponder


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPki]:
    """A dev CA folder with its OCSP/CRL responder running (it reads the revocation list on every request)."""
    root = tmp_path_factory.mktemp("pki")
    responder = RevocationResponder(root / "ca")
    url, stop = serve_responder(responder)
    try:
        yield DevPki(root / "ca", root / "keys", url, responder)
    finally:
        stop()


# --------------------------------------------------------------------------------------------------------------
# (a) OpenSSL's own OCSP responder, through a delegated responder certificate


def _ocsp_signer(ca_dir: Path, out: Path, *, delegated_by_ca: bool) -> tuple[Path, Path]:
    """An OCSP responder certificate: issued by the dev CA for id-kp-OCSPSigning, or (an impostor) self-signed."""
    ca = ensure_dev_ca(ca_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test OCSP responder")])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False))
    if delegated_by_ca:
        cert = builder.issuer_name(ca.certificate.subject).sign(ca.private_key, hashes.SHA256())
    else:
        cert = builder.issuer_name(name).sign(key, hashes.SHA256())
    cert_path, key_path = out / "rsigner.pem", out / "rkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _index_line(issued: Issued, revoked: str | None = None) -> str:
    """A line of OpenSSL's CA database (index.txt): status, expiry, revocation, serial (BN_bn2hex), file, DN."""
    serial = format(issued.cert.serial_number, "X")
    serial = "0" * (len(serial) % 2) + serial
    expiry = issued.cert.not_valid_after.strftime("%y%m%d%H%M%SZ")
    return f"{'R' if revoked else 'V'}\t{expiry}\t{revoked or ''}\t{serial}\tunknown\t/CN={issued.key.pinfl}\n"


@contextlib.contextmanager
def openssl_responder(directory: Path, port: int, ca_cert: Path, index: str, signer: tuple[Path, Path]
                      ) -> Iterator[None]:
    """`openssl ocsp -index` on `port`, answering from `index` with `signer`; stopped afterwards."""
    (directory / "index.txt").write_text(index)
    process = subprocess.Popen(
        ["openssl", "ocsp", "-index", str(directory / "index.txt"), "-port", str(port), "-CA", str(ca_cert),
         "-rsigner", str(signer[0]), "-rkey", str(signer[1]), "-nmin", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ACCEPT"), line
        yield
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()  # type: ignore[union-attr]


def test_openssl_responder_good_revoked_unknown_and_an_impostor(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    good = issue(ca, tmp_path / "keys", "p256", ocsp=url, cli=True)
    revoked = issue(ca, tmp_path / "keys", "rsa2048", ocsp=url, cli=True)
    unlisted = issue(ca, tmp_path / "keys", "p256", ocsp=url)
    revoked_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    index = _index_line(good) + _index_line(revoked, revoked_at.strftime("%y%m%d%H%M%SZ") + ",keyCompromise")
    delegated = _ocsp_signer(ca, tmp_path, delegated_by_ca=True)
    with openssl_responder(tmp_path, port, ca / "ca.crt.pem", index, delegated):
        answer = check(good.cert, good.issuer)
        assert (answer.status, answer.source, answer.problem) == ("good", "ocsp", None)
        assert answer.ocsp_response is not None
        basic = asn1_ocsp.OCSPResponse.load(answer.ocsp_response).basic_ocsp_response
        assert [cert.subject.native["common_name"] for cert in basic["certs"]] == ["test OCSP responder"]
        assert answer.this_update is not None and answer.next_update is not None
        assert dt.timedelta(minutes=9) < answer.next_update - answer.this_update <= dt.timedelta(minutes=11)
        answer = check(revoked.cert, revoked.issuer)
        assert (answer.status, answer.revocation_time, answer.reason) == ("revoked", revoked_at, "keyCompromise")
        answer = check(unlisted.cert, unlisted.issuer)
        assert answer.status == "unknown" and "does not know" in (answer.problem or "")
    # The same answers, signed by a key the CA never authorised: nothing of it is believed.
    impostor = _ocsp_signer(ca, tmp_path, delegated_by_ca=False)
    with openssl_responder(tmp_path, port, ca / "ca.crt.pem", index, impostor):
        answer = check(good.cert, good.issuer)
        assert answer.status == "unavailable"
        assert "the responder's certificate was not issued by the certificate's CA" in (answer.problem or "")


# --------------------------------------------------------------------------------------------------------------
# (b) The development responder: O'zDSt over OCSP, CRLs, and OpenSSL checking what it serves


def _with_produced_at(response_der: bytes, shift: dt.timedelta) -> bytes:
    """The response with producedAt moved and the signature kept."""
    basic = asn1_ocsp.OCSPResponse.load(response_der).basic_ocsp_response
    data = asn1_ocsp.ResponseData.load(basic["tbs_response_data"].dump())
    data["produced_at"] = data["produced_at"].native + shift
    forged = asn1_ocsp.BasicOCSPResponse({"tbs_response_data": data, "signature_algorithm":
                                          basic["signature_algorithm"], "signature": basic["signature"].native})
    return asn1_ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": forged}}).dump()


def test_dev_responder_ozdst_ocsp_good_then_revoked(pki: DevPki) -> None:
    issued = issue(pki.ca, pki.keys, "ozdst", ocsp=pki.url + "ocsp", cli=True)
    answer = check(issued.cert, issued.issuer)
    assert (answer.status, answer.source) == ("good", "ocsp")
    signature_algorithm = asn1_ocsp.OCSPResponse.load(answer.ocsp_response).basic_ocsp_response[
        "signature_algorithm"]["algorithm"].dotted
    assert signature_algorithm == "1.2.860.3.15.1.1.2.2.2.2"  # signed by the O'zDSt CA
    # The O'zDSt signature is really checked: the same answer with one field changed is refused.
    tampered = _with_produced_at(answer.ocsp_response, dt.timedelta(seconds=1))
    with pytest.raises(ocsp.OcspError, match="signature does not verify"):
        ocsp.check_response(tampered, ocsp.cert_id(issued.cert, issued.issuer), issued.issuer, nonce=None,
                            now=dt.datetime.now(dt.UTC), skew=dt.timedelta(minutes=1), max_age=dt.timedelta(hours=1))
    revoke(pki.ca, issued.serial_hex, "keyCompromise")
    answer = check(issued.cert, issued.issuer)
    assert (answer.status, answer.source, answer.reason) == ("revoked", "ocsp", "keyCompromise")
    assert answer.revocation_time is not None
    assert abs(answer.revocation_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=2)


def test_dev_responder_revoked_via_crl_only(pki: DevPki) -> None:
    for alg, path in (("ozdst", "crl/ozdst.crl"), ("p256", "crl/ca.crl")):
        issued = issue(pki.ca, pki.keys, alg, crl=pki.url + path, cli=alg == "ozdst")
        answer = check(issued.cert, issued.issuer)
        assert (answer.status, answer.source, answer.ocsp_response) == ("good", "crl", None)
        revoke_in_process(pki.ca, issued.serial_hex, "superseded")
        answer = check(issued.cert, issued.issuer)
        assert (answer.status, answer.source, answer.reason) == ("revoked", "crl", "superseded")


@contextlib.contextmanager
def dev_ocsp_command(ca: Path) -> Iterator[str]:
    """The real `eimzo-agent dev ocsp --port 0 --ca CA`; yields its base URL from the line it prints."""
    process = subprocess.Popen([sys.executable, "-m", "eimzo_agent", "dev", "ocsp", "--port", "0", "--ca", str(ca)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("OCSP: http://127.0.0.1:"), line
        yield line.split(" ", 1)[1].strip()
    finally:
        process.terminate()
        assert process.wait(10) == 0  # SIGTERM ends it cleanly
        process.stdout.close()  # type: ignore[union-attr]


def test_openssl_verifies_what_the_dev_ocsp_command_serves(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    with dev_ocsp_command(ca) as url:
        issued = issue(ca, tmp_path / "keys", "p256", ocsp=url + "ocsp")
        revoke_in_process(ca, issued.serial_hex, "cessationOfOperation")
        crl_file = tmp_path / "ca.crl"
        with urllib_request.urlopen(url + "crl/ca.crl", timeout=10) as reply:
            crl_file.write_bytes(reply.read())
        result = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(crl_file), "-noout", "-text",
                                 "-CAfile", str(ca / "ca.crt.pem"), "-verify"],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0 and "verify OK" in result.stderr + result.stdout, result.stderr
        serial = issued.serial_hex.upper()
        assert f"Serial Number: {'0' * (len(serial) % 2)}{serial}" in result.stdout
        assert "Cessation Of Operation" in result.stdout
        result = subprocess.run(["openssl", "ocsp", "-issuer", str(ca / "ca.crt.pem"),
                                 "-cert", str(issued.pem_file(tmp_path / "cert.pem")), "-url", url + "ocsp",
                                 "-CAfile", str(ca / "ca.crt.pem")],
                                capture_output=True, text=True, timeout=30, check=False)
    assert "Response verify OK" in result.stderr + result.stdout, result.stderr
    assert f"{tmp_path / 'cert.pem'}: revoked" in result.stdout
    assert "Reason: cessationOfOperation" in result.stdout


# --------------------------------------------------------------------------------------------------------------
# (c) Unreachable, silent, unnamed; the cache


def test_unreachable_responder_is_unavailable_fast_and_a_crl_stands_in(pki: DevPki) -> None:
    closed = f"http://127.0.0.1:{free_port()}/ocsp"
    only_ocsp = issue(pki.ca, pki.keys, "p256", ocsp=closed)
    started = time.monotonic()
    answer = check(only_ocsp.cert, only_ocsp.issuer, timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert answer.status == "unavailable" and closed in (answer.problem or "")
    with_crl = issue(pki.ca, pki.keys, "p256", ocsp=closed, crl=pki.url + "crl/ca.crl")
    answer = check(with_crl.cert, with_crl.issuer, timeout=2.0)
    assert (answer.status, answer.source) == ("good", "crl")


def test_silent_responder_times_out(pki: DevPki) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/ocsp"
        issued = issue(pki.ca, pki.keys, "p256", ocsp=url)
        started = time.monotonic()
        answer = check(issued.cert, issued.issuer, timeout=1.0)
        elapsed = time.monotonic() - started
    assert answer.status == "unavailable" and "no answer within 1 s" in (answer.problem or "")
    assert 0.9 < elapsed < 5


def test_no_urls_is_unknown_and_off_is_skipped_without_asking(pki: DevPki) -> None:
    plain = issue(pki.ca, pki.keys, "p256")
    assert check(plain.cert, plain.issuer) == RevocationResult("unknown", problem=NO_URL_PROBLEM)
    with pytest.raises(ValueError, match="http:// or https://"):
        issue(pki.ca, pki.keys, "p256", ocsp="ldap://ldap.example/ocsp")
    with pytest.raises(ValueError, match="unknown revocation reason"):
        revoke_in_process(pki.ca, plain.serial_hex, "lostIt")
    issued = issue(pki.ca, pki.keys, "p256", ocsp=pki.url + "ocsp")
    before = pki.responder.ocsp_requests
    assert check(issued.cert, issued.issuer, mode="off").status == "skipped"  # type: ignore[arg-type]
    assert pki.responder.ocsp_requests == before


def test_second_check_is_answered_from_the_cache(pki: DevPki) -> None:
    by_ocsp = issue(pki.ca, pki.keys, "p256", ocsp=pki.url + "ocsp")
    by_crl = issue(pki.ca, pki.keys, "p256", crl=pki.url + "crl/ca.crl")

    async def twice() -> list[RevocationResult]:
        checker = RevocationChecker()
        try:
            return [await checker.check(issued.cert, issued.issuer)
                    for issued in (by_ocsp, by_crl, by_ocsp, by_crl)]
        finally:
            await checker.close()

    ocsp_before, crl_before = pki.responder.ocsp_requests, pki.responder.crl_requests
    answers = asyncio.run(twice())
    assert [answer.status for answer in answers] == ["good"] * 4
    assert answers[2] == answers[0]
    assert (pki.responder.ocsp_requests - ocsp_before, pki.responder.crl_requests - crl_before) == (1, 1)
    # A fresh checker (another server process) asks again.
    assert check(by_ocsp.cert, by_ocsp.issuer).status == "good"
    assert pki.responder.ocsp_requests - ocsp_before == 2


# --------------------------------------------------------------------------------------------------------------
# End to end: the verification server (`eimzo-agent portal serve --revocation require|prefer`)


@pytest.fixture(scope="module")
def servers(pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PortalProcess]]:
    """Two real servers trusting the dev CAs, one per mode, started in parallel."""
    root = tmp_path_factory.mktemp("servers")
    launches = {mode: launch_portal(root / mode, *anchor_args(pki.ca), "--revocation", mode)
                for mode in ("require", "prefer")}
    started: dict[str, PortalProcess] = {}
    try:
        for mode, launch in launches.items():
            started[mode] = launch.wait()
        yield started
    finally:
        for mode, launch in launches.items():
            if mode in started:
                started[mode].stop()
            elif launch.process.poll() is None:
                launch.process.kill()
                launch.process.wait()


def test_login_refuses_revoked_and_uncheckable_certificates(pki: DevPki, servers: dict[str, PortalProcess]) -> None:
    require = servers["require"].url
    good = issue(pki.ca, pki.keys, "p256", ocsp=pki.url + "ocsp")
    reply = login(require, good.key)
    assert reply["status"] == 1, reply
    revoked = issue(pki.ca, pki.keys, "p256", ocsp=pki.url + "ocsp")
    revoke(pki.ca, revoked.serial_hex, "keyCompromise")
    reply = login(require, revoked.key)
    assert reply["status"] == -11, reply
    assert reply["revokedStatusInfo"]["crlReason"] == "keyCompromise"
    assert reply["revokedStatusInfo"]["revocationTime"]
    by_crl = issue(pki.ca, pki.keys, "ozdst", crl=pki.url + "crl/ozdst.crl")
    revoke_in_process(pki.ca, by_crl.serial_hex, "affiliationChanged")
    reply = login(require, by_crl.key)
    assert reply["status"] == -11, reply
    assert reply["revokedStatusInfo"]["crlReason"] == "affiliationChanged"
    unreachable = issue(pki.ca, pki.keys, "p256", ocsp=f"http://127.0.0.1:{free_port()}/ocsp")
    reply = login(require, unreachable.key)
    assert reply["status"] == -1 and "subjectCertificateInfo" not in reply, reply
    reply = login(servers["prefer"].url, unreachable.key)
    assert reply["status"] == 1 and reply["subjectCertificateInfo"]["subjectName"]["1.2.860.3.16.1.2"] == \
        unreachable.key.pinfl, reply
    reply = login(servers["prefer"].url, revoked.key)  # "prefer" accepts the unknown, never the revoked
    assert reply["status"] == -11, reply


def test_verify_attached_carries_the_ocsp_response(pki: DevPki, servers: dict[str, PortalProcess]) -> None:
    good = issue(pki.ca, pki.keys, "ozdst", ocsp=pki.url + "ocsp")
    signed = good.key.sign(b"a contract")
    reply = call(servers["require"].url, "/backend/pkcs7/verify/attached", b64(signed), host="portal.example",
                 ip="203.0.113.7").json()
    assert reply["status"] == 1, reply
    signer = reply["pkcs7Info"]["signers"][0]
    response = asn1_ocsp.OCSPResponse.load(base64.b64decode(signer["OCSPResponse"]))
    assert response["response_status"].native == "successful"
    single = response.basic_ocsp_response["tbs_response_data"]["responses"][0]
    assert single["cert_id"]["serial_number"].native == good.cert.serial_number
    assert single["cert_status"].name == "good"
    assert signer["statusUpdatedAt"] and signer["statusNextUpdateAt"]
