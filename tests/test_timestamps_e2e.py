"""CAdES-T through the real agent, the way the vendor's e-imzo-client.js did it (one socket per call):

`pfx.load_key` → `pkcs7.create_pkcs7` → `tsaclient.get_timestamp_token_request_for_signature(signature_hex)` →
HTTP POST to the development TSA (`eimzo_agent.dev.tsa`, RSA and O'zDSt) → `pkcs7.attach_timestamp_token_pkcs7`.
RSA and ECDSA results are checked by OpenSSL (`cms -verify`, `ts -verify`); O'zDSt ones by our verifier and the
independent GOST check of test_ozdst_e2e (gostcrypto).
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, b64, make_askpass, mint, start_agent
from asn1crypto import cms as asn1_cms
from asn1crypto import pem, tsp
from test_ozdst_e2e import gostcrypto_verify

from eimzo_agent.crypto import timestamp
from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.dev.tsa import start_tsa

DOCUMENT = "Hisob-faktura № 7: 1 200 000 so'm".encode()
TOKEN_OID = "1.2.840.113549.1.9.16.2.14"


@dataclass
class Setup:
    ca: Path
    agent: AgentProcess
    keys: dict[str, Path]
    tsa: dict[str, str]  # alg -> URL


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("timestamps-e2e")
    root, ca = tmp / "flash", tmp / "ca"
    # Subjects chosen so that no PKCS#12 element length ends in 0x80, which asn1crypto mistakes for an indefinite
    # length when writing the O'zDSt .pfx (a separate, reported bug: "TEST OZDST" hits it most of the time).
    keys = {alg: mint(ca, root / "DSKEYS", alg, "--cn", cn, "--pinfl", pinfl)
            for alg, cn, pinfl in (("rsa2048", "TOSHEV RUSTAM", "31234567890123"),
                                   ("p256", "TOSHEVA MALIKA", "31234567890124"),
                                   ("ozdst", "TOSHEVA NODIRA", "31234567890125"))}
    askpass = make_askpass(tmp)
    askpass.answer(PASSWORD)
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    stops: list[Callable[[], None]] = []
    try:
        urls = {}
        for alg in ("rsa2048", "ozdst"):
            url, stop = start_tsa(ca, alg=alg)
            urls[alg] = url
            stops.append(stop)
        yield Setup(ca, agent, keys, urls)
    finally:
        for stop in stops:
            stop()
        agent.stop()


def sign(setup: Setup, alg: str, content: bytes = DOCUMENT) -> dict[str, str]:
    certificates = setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
    e = next(c for c in certificates if c["name"] == setup.keys[alg].stem)
    loaded = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")
    assert loaded["success"] is True, loaded
    reply = setup.agent.call("create_pkcs7", b64(content), loaded["keyId"], "no", plugin="pkcs7")
    assert reply["success"] is True, reply
    return reply


def fetch_token(setup: Setup, tsa_alg: str, signature_hex: str) -> bytes:
    """What the page does: the agent makes the request, the page posts it to its TSA and keeps the token."""
    made = setup.agent.call("get_timestamp_token_request_for_signature", signature_hex, plugin="tsaclient")
    assert made["success"] is True, made
    request = base64.b64decode(made["timestamp_request_64"])
    http = urllib.request.Request(setup.tsa[tsa_alg], data=request,
                                  headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(http, timeout=30) as answer:
        assert answer.headers["Content-Type"] == "application/timestamp-reply"
        response = tsp.TimeStampResp.load(answer.read())
    assert response["status"]["status"].native == "granted"
    return response["time_stamp_token"].dump()


def attach(setup: Setup, pkcs7_64: str, serial: str, token: bytes) -> dict[str, object]:
    return setup.agent.call("attach_timestamp_token_pkcs7", pkcs7_64, serial, b64(token), plugin="pkcs7")


def signer_infos(cms_der: bytes) -> list[asn1_cms.SignerInfo]:
    return list(asn1_cms.ContentInfo.load(cms_der)["content"]["signer_infos"])


def token_in(info: asn1_cms.SignerInfo) -> bytes:
    """The token from the signer's unsigned attribute id-aa-signatureTimeStampToken, as OpenSSL will read it."""
    values = [a["values"] for a in info["unsigned_attrs"] if a["type"].dotted == TOKEN_OID]
    assert len(values) == 1 and len(values[0]) == 1
    return values[0][0].dump()


def pem_file(path: Path, der: bytes, tmp: Path) -> Path:
    out = tmp / path
    out.write_bytes(pem.armor("CERTIFICATE", der))
    return out


def run_openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, check=False)


def assert_only_token_added(before: bytes, after: bytes) -> None:
    """Content, certificates and the signed part of the SignerInfo are what create_pkcs7 made, byte for byte."""
    old, new = asn1_cms.ContentInfo.load(before)["content"], asn1_cms.ContentInfo.load(after)["content"]
    for part in ("encap_content_info", "certificates", "digest_algorithms"):
        assert old[part].dump() == new[part].dump()
    (old_info,), (new_info,) = old["signer_infos"], new["signer_infos"]
    for part in ("sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature"):
        assert old_info[part].dump() == new_info[part].dump()


@pytest.mark.parametrize("alg", ["rsa2048", "p256"])
def test_cades_t_with_openssl(setup: Setup, tmp_path: Path, alg: str) -> None:
    signed = sign(setup, alg)
    token = fetch_token(setup, "rsa2048", signed["signature_hex"])
    reply = attach(setup, signed["pkcs7_64"], signed["signer_serial_number"], token)
    assert reply["success"] is True, reply
    before, after = base64.b64decode(signed["pkcs7_64"]), base64.b64decode(str(reply["pkcs7_64"]))
    assert_only_token_added(before, after)

    ca_pem = setup.ca / "ca.crt.pem"
    (tmp_path / "signed.p7s").write_bytes(after)
    verified = run_openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signed.p7s"),
                           "-CAfile", str(ca_pem), "-out", str(tmp_path / "content"))
    assert verified.returncode == 0 and "Verification successful" in verified.stderr, verified.stderr
    assert (tmp_path / "content").read_bytes() == DOCUMENT

    (info,) = signer_infos(after)
    (tmp_path / "token.der").write_bytes(token_in(info))
    tsa_cert = timestamp.read_token(token_in(info)).certificate
    assert tsa_cert is not None
    tsa_pem = pem_file(Path("tsa.pem"), tsa_cert.dump(), tmp_path)
    digest = hashlib.sha256(bytes.fromhex(signed["signature_hex"])).hexdigest()
    checked = run_openssl("ts", "-verify", "-digest", digest, "-in", str(tmp_path / "token.der"), "-token_in",
                          "-CAfile", str(ca_pem), "-untrusted", str(tsa_pem))
    assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    # The same check fails for another signature value: OpenSSL really compares the imprint.
    wrong = run_openssl("ts", "-verify", "-digest", hashlib.sha256(b"other").hexdigest(), "-in",
                        str(tmp_path / "token.der"), "-token_in", "-CAfile", str(ca_pem), "-untrusted", str(tsa_pem))
    assert wrong.returncode != 0


def test_cades_t_ozdst(setup: Setup) -> None:
    signed = sign(setup, "ozdst")
    signature = bytes.fromhex(signed["signature_hex"])
    assert len(signature) == 64
    token = fetch_token(setup, "ozdst", signed["signature_hex"])
    reply = attach(setup, signed["pkcs7_64"], signed["signer_serial_number"], token)
    assert reply["success"] is True, reply
    before, after = base64.b64decode(signed["pkcs7_64"]), base64.b64decode(str(reply["pkcs7_64"]))
    assert_only_token_added(before, after)

    ozdst_ca = pem.unarmor((setup.ca / "ozdst" / "ca.crt.pem").read_bytes())[2]
    assert verify_cms(after, trust_anchors=[ozdst_ca]).valid
    (info,) = signer_infos(after)
    read = timestamp.read_token(token_in(info))
    assert read.imprint_algorithm == "1.2.860.3.15.1.3.2.1.1"
    assert timestamp.verify_token(read, signature=signature, anchors=[ozdst_ca]) == []
    assert timestamp.verify_token(read, signature=signature[::-1], anchors=[ozdst_ca]) != []

    # Independent check: imprint = GOST R 34.11-94 of the signature value; the token's messageDigest = the hash of
    # its TSTInfo; the TSA's s||r over the DER signed attributes verifies with gostcrypto.
    assert read.imprint_digest == gost94_digest(signature)
    signed_data = asn1_cms.ContentInfo.load(read.der)["content"]
    tst_der = bytes(signed_data["encap_content_info"]["content"])
    (tsa_info,) = signed_data["signer_infos"]
    digests = [a["values"][0].native for a in tsa_info["signed_attrs"] if a["type"].native == "message_digest"]
    assert digests == [gost94_digest(tst_der)]
    signed_attrs = b"\x31" + tsa_info["signed_attrs"].dump()[1:]
    assert read.certificate is not None
    assert gostcrypto_verify(read.certificate, gost94_digest(signed_attrs), tsa_info["signature"].native)
    assert not gostcrypto_verify(read.certificate, gost94_digest(signed_attrs + b"x"), tsa_info["signature"].native)


def test_bad_input_is_refused_without_change(setup: Setup) -> None:
    signed = sign(setup, "rsa2048")
    other = sign(setup, "rsa2048", DOCUMENT + b"!")  # same signer, another signature value
    token = fetch_token(setup, "rsa2048", signed["signature_hex"])
    serial = signed["signer_serial_number"]

    for_other = attach(setup, other["pkcs7_64"], serial, token)
    assert for_other["success"] is False and for_other["status"] == -9999
    assert "another signature" in str(for_other["reason"])

    unknown = attach(setup, signed["pkcs7_64"], "deadbeef", token)
    assert unknown["success"] is False and unknown["status"] == -9999
    assert "deadbeef" in str(unknown["reason"])

    garbage = attach(setup, signed["pkcs7_64"], serial, b"not a token")
    assert garbage["success"] is False and garbage["status"] == -9999
    not_b64 = setup.agent.call("attach_timestamp_token_pkcs7", signed["pkcs7_64"], serial, "@@@", plugin="pkcs7")
    assert not_b64["success"] is False and "timestamp_token_64" in not_b64["reason"]
    not_cms = attach(setup, b64(b"\x30\x03\x02\x01\x01"), serial, token)
    assert not_cms["success"] is False and not_cms["status"] == -9999

    once = attach(setup, signed["pkcs7_64"], serial, token)
    assert once["success"] is True
    twice = attach(setup, str(once["pkcs7_64"]), serial, token)
    assert twice["success"] is False and "already" in str(twice["reason"])

    info = setup.agent.call("get_timestamp_token_info", "AAAA", plugin="tsaclient")
    assert info["success"] is False and info["status"] == -9999
    bad_hex = setup.agent.call("get_timestamp_token_request_for_signature", "xyz", plugin="tsaclient")
    assert bad_hex["success"] is False and "signature_hex" in bad_hex["reason"]


def test_token_info_matches_openssl(setup: Setup, tmp_path: Path) -> None:
    signed = sign(setup, "p256")
    token = fetch_token(setup, "rsa2048", signed["signature_hex"])
    reply = setup.agent.call("get_timestamp_token_info", b64(token), plugin="tsaclient")
    assert reply["success"] is True, reply
    info = reply["timestamp_token_info"]
    (tmp_path / "token.der").write_bytes(token)
    text = run_openssl("ts", "-reply", "-in", str(tmp_path / "token.der"), "-token_in", "-text").stdout
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    assert info["tsaPolicy"] == fields["Policy OID"]
    assert int(info["serialNumber"], 16) == int(fields["Serial number"], 16)
    assert info["hashAlgorithm"] == "SHA-256" and fields["Hash Algorithm"] == "sha256"
    assert info["messageImprintAlgOID"] == "2.16.840.1.101.3.4.2.1"
    hex_dump = re.findall(r"^\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){15}[0-9a-f]{2})", text, re.MULTILINE)
    assert info["messageImprintDigest"] == "".join(hex_dump).replace(" ", "").replace("-", "")
    assert info["messageImprintDigest"] == hashlib.sha256(bytes.fromhex(signed["signature_hex"])).hexdigest()
    assert fields["TSA"] == "DirName:/" + info["tsa"]  # a one-attribute name prints alike: CN=eimzo-agent dev TSA
    # "Dec  2 12:36:43 2026 GMT" against "2026.12.02 12:36:43" in the agent's zone (the tests run it in UTC).
    when = timestamp.read_token(token).time
    assert fields["Time stamp"] == when.strftime("%b %e %H:%M:%S %Y GMT")
    assert info["time"] == when.astimezone().strftime("%Y.%m.%d %H:%M:%S")


def test_requests_pick_the_imprint_by_signature_size(setup: Setup) -> None:
    cases = {"ab" * 64: ("1.2.860.3.15.1.3.2.1.1", gost94_digest(b"\xab" * 64)),
             "ab" * 256: ("2.16.840.1.101.3.4.2.1", hashlib.sha256(b"\xab" * 256).digest())}
    for signature_hex, (oid, digest) in cases.items():
        made = setup.agent.call("get_timestamp_token_request_for_signature", signature_hex, plugin="tsaclient")
        request = tsp.TimeStampReq.load(base64.b64decode(made["timestamp_request_64"]))
        assert request["message_imprint"]["hash_algorithm"]["algorithm"].dotted == oid
        assert request["message_imprint"]["hashed_message"].native == digest
        assert request["cert_req"].native is True and request["nonce"].native
    made = setup.agent.call("get_timestamp_token_request_for_data", b64(DOCUMENT), plugin="tsaclient")
    request = tsp.TimeStampReq.load(base64.b64decode(made["timestamp_request_64"]))
    assert request["message_imprint"]["hash_algorithm"]["algorithm"].dotted == "1.2.860.3.15.1.3.2.1.1"
    assert request["message_imprint"]["hashed_message"].native == gost94_digest(DOCUMENT)


def test_functions_are_in_apidoc(setup: Setup) -> None:
    doc = {p["name"]: p for p in setup.agent.call("apidoc")}
    assert doc["tsaclient"]["description"]
    names = {f["name"]: [a["name"] for a in f["arguments"]] for f in doc["tsaclient"]["functions"]}
    assert names == {"get_timestamp_token_request_for_signature": ["signature_hex"],
                     "get_timestamp_token_request_for_data": ["data_64"],
                     "get_timestamp_token_info": ["timestamp_token_64"]}
    attach_args = next(f["arguments"] for f in doc["pkcs7"]["functions"]
                       if f["name"] == "attach_timestamp_token_pkcs7")
    assert [a["name"] for a in attach_args] == ["pkcs7_64", "signer_serial_number", "timestamp_token_64"]
