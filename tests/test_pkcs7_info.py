"""pkcs7.get_pkcs7_attached_info / get_pkcs7_detached_info through the real agent, over real WebSockets.

Keys are minted at test time with `eimzo-agent dev mint-key` (RSA, P-256, O'zDSt); documents are signed by the
agent itself (create_pkcs7, append_pkcs7_attached) with the password from the test askpass; timestamps come from
the dev TSA (`eimzo_agent.dev.tsa`) over HTTP. One agent trusts the
dev CAs through `[verify] trust_anchors` in its settings file, the other knows only the bundled national root.
The real E-IMZO signature of ../shared/testdata/eimzo-kat.json (copy in tests/data) is wrapped into a CMS and
read back: the signer facts must equal the known values.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import PASSWORD, TEST_CONFIG, AgentProcess, b64, make_askpass, mint, start_agent
from asn1crypto import algos, tsp
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509

from eimzo_agent.crypto import timestamp, x509_info
from eimzo_agent.crypto.anchors import bundled_anchors
from eimzo_agent.crypto.cms import create_pkcs7
from eimzo_agent.crypto.ozdst_keys import OZDST, parse_spki
from eimzo_agent.dev.ozdst_ca import ensure_ozdst_ca, issue_certificate
from eimzo_agent.dev.tsa import start_tsa
from eimzo_agent.keys.pkcs12 import open_pfx

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
DOCUMENT = "Shartnoma № 7 — договор поставки".encode() * 20
NAMES = {"rsa2048": "ALIYEV VALI", "p256": "TOSHMATOVA NODIRA", "ozdst": "KARIMOV ESHMAT"}
CA_NAMES = {"rsa2048": "CN=eimzo-agent dev CA", "p256": "CN=eimzo-agent dev CA",
            "ozdst": "CN=eimzo-agent dev O'zDSt CA"}
ALGS = tuple(NAMES)


@dataclass
class Setup:
    trusted: AgentProcess  # [verify] trust_anchors = the dev CAs
    plain: AgentProcess  # only the bundled national root
    ca: Path
    keys: dict[str, Path]
    key_ids: dict[str, str]

    def sign(self, alg: str, data: bytes = DOCUMENT, *, detached: bool = False) -> dict[str, Any]:
        reply = self.trusted.call("create_pkcs7", b64(data), self.key_ids[alg], "yes" if detached else "no",
                                  plugin="pkcs7")
        assert reply["success"] is True, reply
        return reply


def _load(agent: AgentProcess, path: Path) -> str:
    entries = agent.call("list_all_certificates", plugin="pfx")["certificates"]
    entry = next(c for c in entries if c["name"] == path.stem)
    reply = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"], plugin="pfx")
    assert reply["success"] is True, reply
    return reply["keyId"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("pkcs7-info")
    ca, flash = tmp / "ca", tmp / "flash"
    keys = {alg: mint(ca, flash, alg, "--cn", cn, "--pinfl", "31234567890123") for alg, cn in NAMES.items()}
    anchors = json.dumps([str(ca / "ca.crt.pem"), str(ca / "ozdst" / "ca.crt.pem")])
    askpass = make_askpass(tmp)
    trusted = start_agent(tmp / "trusted", "--key-root", str(flash), "--askpass", str(askpass.program),
                          config=TEST_CONFIG + f"[verify]\ntrust_anchors = {anchors}\n")
    plain = start_agent(tmp / "plain")
    try:
        yield Setup(trusted, plain, ca, keys, {alg: _load(trusted, path) for alg, path in keys.items()})
    finally:
        trusted.stop()
        plain.stop()


def attached_info(agent: AgentProcess, cms_der: bytes | str, truststore: str = "") -> Any:
    value = cms_der if isinstance(cms_der, str) else b64(cms_der)
    return agent.call("get_pkcs7_attached_info", value, truststore, plugin="pkcs7")


def detached_info(agent: AgentProcess, data: bytes, cms_der: bytes | str) -> Any:
    value = cms_der if isinstance(cms_der, str) else b64(cms_der)
    return agent.call("get_pkcs7_detached_info", b64(data), value, "", plugin="pkcs7")


def signers(reply: dict[str, Any]) -> list[dict[str, Any]]:
    assert reply["success"] is True and reply["status"] == 1, reply
    return reply["pkcs7Info"]["signers"]


def leaf_serial(setup: Setup, alg: str) -> int:
    """Read with our own PKCS#12 reader: OpenSSL cannot open the O'zDSt .pfx."""
    return open_pfx(setup.keys[alg].read_bytes(), PASSWORD).certificate.serial_number


def parse_local(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y.%m.%d %H:%M:%S").astimezone()


def check_signer(setup: Setup, signer: dict[str, Any], alg: str, signed: dict[str, Any]) -> None:
    """The facts of one signer made by `alg`'s key (create_pkcs7's reply `signed`), checked against the agent that
    trusts the dev CAs."""
    assert signer["signerId"] == {"issuer": CA_NAMES[alg], "subjectSerialNumber": signed["signer_serial_number"]}
    assert signer["signerId"]["subjectSerialNumber"] == format(leaf_serial(setup, alg), "x")
    assert signer["signature"] == signed["signature_hex"]
    chain = signer["certificate"]
    assert [c["subjectName"] for c in chain] == [
        f"CN={NAMES[alg]},C=UZ,1.2.860.3.16.1.2=31234567890123", CA_NAMES[alg]]
    assert chain[0]["subjectInfo"] == {"CN": NAMES[alg], "C": "UZ", "1.2.860.3.16.1.2": "31234567890123"}
    assert chain[0]["issuerInfo"] == chain[1]["subjectInfo"] == {"CN": CA_NAMES[alg][3:]}
    assert chain[0]["serialNumber"] == signed["signer_serial_number"]
    assert chain[0]["publicKey"]["keyAlgName"] == {"rsa2048": "RSA", "p256": "EC", "ozdst": "OZDST-1092-2009-2"}[alg]
    assert abs(parse_local(signer["signingTime"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert (signer["verified"], signer["certificateVerified"], signer["certificateValidAtSigningTime"]) == (
        True, True, True)
    assert signer["exception"] is None
    assert signer["trustedCertificate"]["subjectName"] == CA_NAMES[alg]
    assert len(signer["digest"]) in (64, 128)  # messageDigest: SHA-256 or O'zDSt 1106, 32 bytes


# --- attached, detached, co-signed --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_attached_document_names_its_signer_and_chain(setup: Setup, alg: str) -> None:
    signed = setup.sign(alg)
    reply = attached_info(setup.trusted, signed["pkcs7_64"])
    assert set(reply) == {"success", "status", "pkcs7Info"}
    assert base64.b64decode(reply["pkcs7Info"]["documentBase64"]) == DOCUMENT
    (signer,) = signers(reply)
    check_signer(setup, signer, alg, signed)
    # The agent that does not trust the dev CA: the signature is fine, the certificate is not trusted.
    (untrusted,) = signers(attached_info(setup.plain, signed["pkcs7_64"]))
    assert (untrusted["verified"], untrusted["certificateVerified"]) == (True, False)
    assert untrusted["exception"] and "issuer" in untrusted["exception"]
    assert [c["subjectName"] for c in untrusted["certificate"]] == [c["subjectName"] for c in signer["certificate"]]
    assert untrusted["trustedCertificate"] is None


@pytest.mark.parametrize("alg", ALGS)
def test_detached_document_is_checked_against_the_data(setup: Setup, alg: str) -> None:
    signed = setup.sign(alg, detached=True)
    reply = detached_info(setup.trusted, DOCUMENT, signed["pkcs7_64"])
    assert "documentBase64" not in reply["pkcs7Info"]
    (signer,) = signers(reply)
    check_signer(setup, signer, alg, signed)
    (changed,) = signers(detached_info(setup.trusted, DOCUMENT + b".", signed["pkcs7_64"]))
    assert changed["verified"] is False
    assert changed["exception"] == "the messageDigest attribute does not match the content"
    assert changed["certificateVerified"] is True  # the certificate is still fine; the document is not


def test_co_signed_document_lists_every_signer(setup: Setup) -> None:
    first = setup.sign("rsa2048")
    replies = [first]
    for alg in ("p256", "ozdst"):
        replies.append(setup.trusted.call("append_pkcs7_attached", replies[-1]["pkcs7_64"], setup.key_ids[alg],
                                          plugin="pkcs7"))
        assert replies[-1]["success"] is True, replies[-1]
    info = signers(attached_info(setup.trusted, replies[-1]["pkcs7_64"]))
    # SignerInfos are a DER SET (sorted by encoding), so they are matched by serial, not by position.
    by_serial = {s["signerId"]["subjectSerialNumber"]: s for s in info}
    assert len(by_serial) == 3
    for alg, signed in zip(ALGS, replies, strict=True):
        check_signer(setup, by_serial[signed["signer_serial_number"]], alg, signed)


def test_tampered_document_is_not_verified(setup: Setup) -> None:
    for alg in ALGS:
        der = bytearray(base64.b64decode(setup.sign(alg)["pkcs7_64"]))
        at = der.find(DOCUMENT[:40])
        assert at > 0
        der[at + 3] ^= 0x01
        reply = attached_info(setup.trusted, bytes(der))
        (signer,) = signers(reply)
        assert signer["verified"] is False, alg
        assert signer["exception"] == "the messageDigest attribute does not match the content"
        assert base64.b64decode(reply["pkcs7Info"]["documentBase64"]) != DOCUMENT


def test_expired_certificate_is_not_valid_at_signing_time(setup: Setup, tmp_path: Path) -> None:
    path = mint(setup.ca, tmp_path, "p256", "--cn", "ESKI KALIT", "--pinfl", "31234567890123",
                "--valid-from", "2020-01-01", "--valid-to", "2021-01-01")
    # The agent would not sign with it; the document is made here, as an old key's holder might have.
    cms_der = create_pkcs7(DOCUMENT, open_pfx(path.read_bytes(), PASSWORD).signer, detached=False).cms_der
    (signer,) = signers(attached_info(setup.trusted, cms_der))
    assert signer["verified"] is True
    assert signer["certificateValidAtSigningTime"] is False
    assert signer["certificateVerified"] is False
    assert "is not valid at" in signer["exception"]


# --- timestamps (CAdES-T) -----------------------------------------------------------------------------------------


def _token(url: str, signature: bytes, *, ozdst: bool) -> bytes:
    """A token from the dev TSA over a signature value, as a page gets one."""
    http = urllib.request.Request(url, data=timestamp.request_for_signature(signature, ozdst=ozdst),
                                  headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(http, timeout=30) as answer:
        response = tsp.TimeStampResp.load(answer.read())
    assert response["status"]["status"].native == "granted"
    return response["time_stamp_token"].dump()


@pytest.mark.parametrize("alg", ["rsa2048", "ozdst"])
def test_timestamped_document_reports_its_token(setup: Setup, alg: str) -> None:
    url, stop = start_tsa(setup.ca, alg=alg)  # the TSA's certificate comes from the dev CA the agent trusts
    try:
        signed = setup.sign(alg)
        token = _token(url, bytes.fromhex(signed["signature_hex"]), ozdst=alg == "ozdst")
    finally:
        stop()
    stamped = timestamp.attach_token(base64.b64decode(signed["pkcs7_64"]), signed["signer_serial_number"], token)
    (signer,) = signers(attached_info(setup.trusted, stamped))
    check_signer(setup, signer, alg, signed)
    info = signer["timeStampInfo"]
    assert (info["verified"], info["exception"]) == (True, None)
    assert info["tsaPolicy"] == "1.2.860.3.2.11.1"
    assert info["messageImprintAlgOID"] == (OZDST.digest_oid if alg == "ozdst" else "2.16.840.1.101.3.4.2.1")
    assert info["messageImprintDigest"] == timestamp.read_token(token).imprint_digest.hex()
    assert abs(parse_local(info["time"]) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    # Without the dev CA the TSA is not trusted either: the token is reported, not verified.
    (untrusted,) = signers(attached_info(setup.plain, stamped))
    assert untrusted["timeStampInfo"]["verified"] is False and untrusted["timeStampInfo"]["exception"]
    assert "timeStampInfo" not in signers(attached_info(setup.trusted, signed["pkcs7_64"]))[0]


# --- the real E-IMZO signature ------------------------------------------------------------------------------------


def _kat_cms(ca_dir: Path) -> bytes:
    """The KAT's signed attributes and signature (made by E-IMZO's test CA key) in a SignedData, with a dev
    certificate for the KAT's public key (the sample's own certificate is not public) valid in 2022."""
    kat = KAT["cms_signature_kat"]
    ca = ensure_ozdst_ca(ca_dir)
    subject = asn1_x509.Name.build({"common_name": "E-IMZO TEST SIGNER", "country_name": "UZ"})
    policies = asn1_x509.Extension({"extn_id": "certificate_policies", "critical": False,
                                    "extn_value": [{"policy_identifier": "1.2.860.3.2.11.1"}]})
    cert = issue_certificate(ca, parse_spki(base64.b64decode(kat["signer_spki_base64"])), subject,
                             dt.datetime(2022, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
                             extra_extensions=[policies])
    attributes = asn1_cms.CMSAttributes.load(bytes.fromhex(kat["signed_attrs_der_hex"]))
    signer = asn1_cms.SignerInfo({
        "version": "v1",
        "sid": asn1_cms.SignerIdentifier({"issuer_and_serial_number": {
            "issuer": cert.issuer, "serial_number": cert.serial_number}}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": OZDST.digest_oid}),
        "signed_attrs": attributes,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": OZDST.signature_oid}),
        "signature": bytes.fromhex(kat["signature_hex"]),
    })
    signed_data = asn1_cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": OZDST.digest_oid})],
        "encap_content_info": {"content_type": "data", "content": kat["content_text"].encode()},
        "certificates": [cert, ca.certificate],
        "signer_infos": [signer],
    })
    der = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    # The attributes must reach the verifier byte for byte as E-IMZO signed them.
    assert bytes.fromhex(kat["signed_attrs_der_hex"])[2:] in der
    return der


def _configured_ozdst_ca_spki(setup: Setup) -> str:
    return base64.b64encode(x509_info.spki_der(ensure_ozdst_ca(setup.ca / "ozdst").certificate)).decode()


def test_real_eimzo_signature_facts(setup: Setup, tmp_path: Path) -> None:
    kat = KAT["cms_signature_kat"]
    reply = attached_info(setup.trusted, _kat_cms(tmp_path / "ca"))
    (signer,) = signers(reply)
    assert base64.b64decode(reply["pkcs7Info"]["documentBase64"]) == kat["content_text"].encode()
    assert signer["signature"] == kat["signature_hex"]
    assert signer["digest"] == x509_info.digest(OZDST.digest_oid, kat["content_text"].encode()).hex()
    assert signer["digest"] == "3369cd520c8e556502b9bc0ac34ca69cafee96f2f4a8371a63d4dd7d3a458d05"
    assert signer["signingTime"] == x509_info.format_local_time(dt.datetime(2022, 9, 27, 6, 17, 53, tzinfo=dt.UTC))
    assert signer["verified"] is True, signer["exception"]
    assert signer["certificateValidAtSigningTime"] is True
    assert signer["policyIdentifiers"] == ["1.2.860.3.2.11.1"]
    assert signer["certificate"][0]["publicKey"]["publicKey"] == kat["signer_spki_base64"]
    assert signer["certificate"][0]["subjectInfo"] == {"CN": "E-IMZO TEST SIGNER", "C": "UZ"}
    # This test's CA is not the one configured in the agent (same name, other key): shown, not trusted.
    assert signer["certificateVerified"] is False
    assert signer["certificate"][1]["publicKey"]["publicKey"] != _configured_ozdst_ca_spki(setup)
    # asn1crypto's Name.build encodes C before CN; names print in encoding order.
    assert [c["subjectName"] for c in signer["certificate"]] == ["C=UZ,CN=E-IMZO TEST SIGNER",
                                                               "CN=eimzo-agent dev O'zDSt CA"]


# --- the bundled root, settings and bad input ---------------------------------------------------------------------


def test_bundled_root_is_the_national_root() -> None:
    (root,) = bundled_anchors()
    assert root == base64.b64decode(KAT["national_root_certificate"]["der_base64"])
    cert = x509_info.load_certificate(root)
    assert x509_info.verify_certificate_signature(cert, cert)


def test_bad_input_gets_eimzo_shaped_errors(setup: Setup) -> None:
    agent = setup.trusted
    bad_base64 = attached_info(agent, "not base64!")
    assert bad_base64["success"] is False and bad_base64["status"] == -9999 and "pkcs7_64" in bad_base64["reason"]
    not_cms = attached_info(agent, b"\x30\x03\x02\x01\x01")
    assert not_cms["success"] is False and not_cms["status"] == -9999 and "PKCS#7" in not_cms["reason"]
    detached = setup.sign("p256", detached=True)["pkcs7_64"]
    wrong_kind = attached_info(agent, detached)
    assert wrong_kind == {"success": False, "status": -9999, "reason": (
        "Подпись не содержит документ (отсоединённая подпись): вызовите get_pkcs7_detached_info с документом")}
    attached = setup.sign("p256")["pkcs7_64"]
    store = attached_info(agent, attached, "CA-ROOT")
    assert store["success"] is False and store["status"] == -9999 and "'CA-ROOT'" in store["reason"]
    # truststore_id is optional (E-IMZO allows ""): left out, it is the agent's roots.
    assert signers(agent.call("get_pkcs7_attached_info", attached, plugin="pkcs7"))[0]["certificateVerified"] is True
    bad_data = agent.call("get_pkcs7_detached_info", "%%%", detached, "", plugin="pkcs7")
    assert bad_data["status"] == -9999 and "data_64" in bad_data["reason"]


def _serve(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    config_file = tmp_path / "config.toml"
    config_file.write_text(TEST_CONFIG + config)
    return subprocess.run([sys.executable, "-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0",
                           "--no-tray", "--config", str(config_file)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("value", "says"), [
    ('["ca.pem"]', "is not an absolute path"),
    ('["/nonexistent/ca.pem"]', "does not exist"),
    ("true", "wrong type"),
])
def test_bad_trust_anchor_settings_stop_the_agent(tmp_path: Path, value: str, says: str) -> None:
    done = _serve(tmp_path, f"[verify]\ntrust_anchors = {value}\n")
    assert done.returncode != 0
    assert "verify.trust_anchors" in done.stderr and says in done.stderr, done.stderr


def test_a_trust_anchor_file_without_a_certificate_stops_the_agent(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    done = _serve(tmp_path, f"[verify]\ntrust_anchors = [{json.dumps(str(junk))}]\n")
    assert done.returncode != 0
    assert f"verify.trust_anchors: {junk}: certificate 1 cannot be read" in done.stderr, done.stderr
