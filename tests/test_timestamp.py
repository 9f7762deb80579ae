"""crypto/timestamp.py and the development TSA (dev/tsa.py, `eimzo-agent dev tsa`), without the agent.

The TSA runs for real (HTTP on 127.0.0.1); tokens are checked with our code and, for RSA, with `openssl ts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import select
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eimzo_agent.crypto import cms, timestamp
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.signer import CryptographySigner
from eimzo_agent.dev.mint import DevCa, ensure_dev_ca
from eimzo_agent.dev.tsa import start_tsa

CONTENT = b"akt sverki 2026"


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tsa-ca")


@pytest.fixture(scope="module")
def tsa(ca_dir: Path) -> Iterator[str]:
    url, stop = start_tsa(ca_dir, alg="rsa2048")
    try:
        yield url
    finally:
        stop()


def post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/timestamp-reply"
        return answer.read()


def anchor(ca_dir: Path) -> bytes:
    return pem.unarmor((ca_dir / "ca.crt.pem").read_bytes())[2]


def issue(ca: DevCa, cn: str, *, eku: x509.ObjectIdentifier | None = None) -> CryptographySigner:
    """A P-256 key with a certificate from the dev CA (optionally with one critical extended key usage)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    cert = builder.sign(ca.private_key, hashes.SHA256())
    return CryptographySigner(key, asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))


def token_for(url: str, signature: bytes) -> bytes:
    return post(url, timestamp.request_for_signature(signature, ozdst=False))


# ------------------------------------------------------------------------------------------------ the dev TSA


def test_dev_tsa_answers_rfc3161(tsa: str, ca_dir: Path, tmp_path: Path) -> None:
    with urllib.request.urlopen(tsa, timeout=30) as about:
        assert "time-stamp authority" in about.read().decode()
    request = timestamp.request_for_data(CONTENT, ozdst=False)
    first, second = post(tsa, request), post(tsa, request)
    tokens = [timestamp.read_token(first), timestamp.read_token(second)]
    assert tokens[1].serial > tokens[0].serial
    assert tokens[0].nonce == tsp.TimeStampReq.load(request)["nonce"].native
    assert tokens[0].policy == "1.2.860.3.2.11.1"
    assert abs(tokens[0].time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert tokens[0].certificate is not None  # certReq true
    # OpenSSL checks the reply against the request: imprint, nonce, signature, ESS certificate id, TSA EKU, chain.
    (tmp_path / "q.tsq").write_bytes(request)
    (tmp_path / "r.tsr").write_bytes(first)
    (tmp_path / "tsa.pem").write_bytes(pem.armor("CERTIFICATE", tokens[0].certificate.dump()))
    checked = subprocess.run(["openssl", "ts", "-verify", "-queryfile", str(tmp_path / "q.tsq"), "-in",
                              str(tmp_path / "r.tsr"), "-CAfile", str(ca_dir / "ca.crt.pem"), "-untrusted",
                              str(tmp_path / "tsa.pem")], capture_output=True, text=True, check=False)
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr


def test_dev_tsa_rejects_bad_requests(tsa: str) -> None:
    good = tsp.TimeStampReq.load(timestamp.request_for_data(CONTENT, ozdst=False))

    def with_imprint(oid: str, digest: bytes) -> bytes:
        return tsp.TimeStampReq({"version": "v1", "message_imprint": {
            "hash_algorithm": {"algorithm": oid}, "hashed_message": digest}}).dump()

    cases = {
        b"": "bad_request",
        b"garbage": "bad_request",
        with_imprint("1.2.3.4", b"\0" * 32): "bad_alg",
        with_imprint("2.16.840.1.101.3.4.2.1", b"\0" * 20): "bad_data_format",
        tsp.TimeStampReq({"version": "v1", "message_imprint": good["message_imprint"],
                          "req_policy": "1.2.3"}).dump(): "unaccepted_policy",
    }
    for body, failure in cases.items():
        response = timestamp.TimeStampResponse.load(post(tsa, body))
        assert response["status"]["status"].native == "rejection"
        assert response["status"]["fail_info"].native == {failure}
        assert isinstance(response["time_stamp_token"], core.Void)
        with pytest.raises(timestamp.TimestampError, match="refused"):
            timestamp.read_token(response.dump())


def test_cert_req_false_leaves_the_certificate_out(tsa: str) -> None:
    request = tsp.TimeStampReq.load(timestamp.request_for_data(CONTENT, ozdst=False))
    request["cert_req"] = False
    token = timestamp.read_token(post(tsa, request.dump()))
    assert token.certificate is None


def test_dev_tsa_command(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "eimzo_agent", "dev", "tsa", "--ca", str(tmp_path / "ca"),
                                "--alg", "ozdst"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ))
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
        assert line.startswith("TSA: http://127.0.0.1:"), line + (process.stderr.read() if process.poll() else "")
        url = line.split(" ", 1)[1].strip()
        token = timestamp.read_token(post(url, timestamp.request_for_data(CONTENT, ozdst=True)))
        assert token.imprint_algorithm == timestamp.OID_OZDST_1106
        ozdst_ca = pem.unarmor((tmp_path / "ca" / "ozdst" / "ca.crt.pem").read_bytes())[2]
        assert verify_cms(token.der, trust_anchors=[ozdst_ca]).valid
    finally:
        process.terminate()
        assert process.wait(30) == 0


# ------------------------------------------------------------------------------------------------ reading, checking


def test_read_token_refuses_what_is_not_a_token(ca_dir: Path) -> None:
    signer = issue(ensure_dev_ca(ca_dir), "not a TSA")
    signature = cms.create_pkcs7(CONTENT, signer, detached=False).cms_der
    for junk in (b"", b"\x30\x00", b"not DER at all", signature):
        with pytest.raises(timestamp.TimestampError):
            timestamp.read_token(junk)


def test_verify_token_finds_every_problem(tsa: str, ca_dir: Path) -> None:
    signature = b"\x01" * 256
    token = timestamp.read_token(token_for(tsa, signature))
    assert timestamp.verify_token(token, signature=signature, anchors=[anchor(ca_dir)]) == []
    assert timestamp.verify_token(token, signature=signature) == []  # without anchors: no chain check

    assert "imprint" in " ".join(timestamp.verify_token(token, signature=b"\x02" * 256))
    other_ca = ensure_dev_ca(ca_dir / "other")
    assert timestamp.verify_token(token, signature=signature, anchors=[anchor(ca_dir / "other")])
    del other_ca

    # A TSTInfo changed after signing (another time) no longer matches the token's messageDigest.
    info = asn1_cms.ContentInfo.load(token.der)
    tst = tsp.TSTInfo.load(bytes(info["content"]["encap_content_info"]["content"]))
    tst["gen_time"] = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    info["content"]["encap_content_info"]["content"] = tst
    forged = timestamp.read_token(info.dump(force=True))
    assert any("messageDigest" in p for p in timestamp.verify_token(forged, signature=signature))

    # A correctly signed "token" from a key that is not a TSA (no timeStamping usage) is refused.
    not_tsa = issue(ensure_dev_ca(ca_dir), "just a person")
    fake = cms.create_signed_data(bytes(tst_copy(token)), "tst_info", not_tsa)
    problems = timestamp.verify_token(timestamp.read_token(fake), signature=signature, anchors=[anchor(ca_dir)])
    assert problems == ["the TSA certificate lacks the extended key usage timeStamping"]


def tst_copy(token: timestamp.TimestampToken) -> bytes:
    return bytes(asn1_cms.ContentInfo.load(token.der)["content"]["encap_content_info"]["content"])


def test_token_info_shape(tsa: str) -> None:
    token = timestamp.read_token(token_for(tsa, b"\x07" * 100))
    info = timestamp.token_info(token, dt.UTC)
    assert set(info) == {"signerId", "tsaPolicy", "time", "hashAlgorithm", "serialNumber", "tsa",
                         "messageImprintAlgOID", "messageImprintDigest"}
    assert info["time"] == token.time.strftime("%Y.%m.%d %H:%M:%S")
    assert info["messageImprintDigest"] == hashlib.sha256(b"\x07" * 100).hexdigest()
    assert info["tsa"] == "CN=eimzo-agent dev TSA"
    assert info["signerId"] == {"issuer": "CN=eimzo-agent dev CA",
                                "subjectSerialNumber": format(token.certificate.serial_number, "x")}


# ------------------------------------------------------------------------------------------------ attaching


def test_attach_changes_only_the_chosen_signer(tsa: str, ca_dir: Path) -> None:
    ca = ensure_dev_ca(ca_dir)
    first, second = issue(ca, "first signer"), issue(ca, "second signer")
    signed = cms.create_pkcs7(CONTENT, first, detached=False)
    cosigned = cms.append_signer(signed.cms_der, second)
    token = token_for(tsa, cosigned.signature)

    out = timestamp.attach_token(cosigned.cms_der, cosigned.signer_serial_hex, token)
    before, after = (asn1_cms.ContentInfo.load(d)["content"] for d in (cosigned.cms_der, out))
    for part in ("version", "digest_algorithms", "encap_content_info", "certificates"):
        assert before[part].dump() == after[part].dump()
    old = {info["signature"].native: info for info in before["signer_infos"]}
    new = {info["signature"].native: info for info in after["signer_infos"]}
    assert old[signed.signature].dump() == new[signed.signature].dump()  # the other signer, byte for byte
    changed = new[cosigned.signature]
    assert [a["type"].dotted for a in changed["unsigned_attrs"]] == [timestamp.OID_SIGNATURE_TIME_STAMP_TOKEN]
    for part in ("sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature"):
        assert changed[part].dump() == old[cosigned.signature][part].dump()
    assert verify_cms(out, trust_anchors=[anchor(ca_dir)]).valid

    # The first signer gets its own token next to it; a second token for the same signer is refused.
    out2 = timestamp.attach_token(out, signed.signer_serial_hex.upper(), token_for(tsa, signed.signature))
    assert verify_cms(out2, trust_anchors=[anchor(ca_dir)]).valid
    with pytest.raises(timestamp.TimestampError, match="already"):
        timestamp.attach_token(out2, signed.signer_serial_hex, token_for(tsa, signed.signature))


def test_attach_keeps_other_unsigned_attributes(tsa: str, ca_dir: Path) -> None:
    signed = cms.create_pkcs7(CONTENT, issue(ensure_dev_ca(ca_dir), "signer"), detached=True)
    info = asn1_cms.ContentInfo.load(signed.cms_der)
    counter = asn1_cms.CMSAttribute({"type": "1.2.3.4.5", "values": [core.OctetString(b"kept")]})
    info["content"]["signer_infos"][0]["unsigned_attrs"] = [counter]
    with_attr = info.dump(force=True)
    out = timestamp.attach_token(with_attr, signed.signer_serial_hex, token_for(tsa, signed.signature))
    (signer_info,) = asn1_cms.ContentInfo.load(out)["content"]["signer_infos"]
    types = sorted(a["type"].dotted for a in signer_info["unsigned_attrs"])
    assert types == sorted(["1.2.3.4.5", timestamp.OID_SIGNATURE_TIME_STAMP_TOKEN])
    assert isinstance(asn1_cms.ContentInfo.load(out)["content"]["encap_content_info"]["content"], core.Void)


def test_attach_refuses_bad_input(tsa: str, ca_dir: Path) -> None:
    signed = cms.create_pkcs7(CONTENT, issue(ensure_dev_ca(ca_dir), "signer"), detached=False)
    token = token_for(tsa, signed.signature)
    cases = [
        (signed.cms_der, "abc123", token, "no signer"),
        (signed.cms_der, signed.signer_serial_hex, token_for(tsa, b"another signature"), "another signature"),
        (b"\x30\x03\x02\x01\x01", signed.signer_serial_hex, token, "PKCS#7"),
        (signed.cms_der, signed.signer_serial_hex, b"junk", "not a time-stamp"),
    ]
    for cms_der, serial, token_der, message in cases:
        with pytest.raises(timestamp.TimestampError, match=message):
            timestamp.attach_token(cms_der, serial, token_der)
