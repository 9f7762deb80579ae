"""The x509 plugin through the real agent, and BouncyCastle-style names.

Name order: BouncyCastle prints RDNs in the order they are encoded (X500Name/X509Name toString), not reversed
as RFC 4514 does. The national root's subject is encoded E, C, L, O, CN, so E-IMZO (and we) print it starting
with "E=info@mitc.uz"; our dev certificates are encoded CN first, as E-IMZO's user certificates are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, Askpass, b64, make_askpass, mint, start_agent
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12

from eimzo_agent.crypto.x509_info import format_local_time, format_name

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
ROOT_64 = KAT["national_root_certificate"]["der_base64"]
ROOT_NAME = ("E=info@mitc.uz,C=UZ,L=100047\\, Toshkent sh.\\, Amir Temur shoh ko’chasi\\, 4 uy,"
             "O=Axborot texnologiyalari va kommunikatsiyalarini riv-sh vazirligi,"
             "CN=ERI markazlarini ro'yxatdan o'tkazuvchi organi")
OZDST_KEY_ALG = "OZDST-1092-2009-2"
OZDST_SIGN_ALG = "OZDST-1106-2009-2-AwithOZDST-1092-2009-2"


# --- names, without the agent -------------------------------------------------------------------------------------


def _name(*attributes: tuple[str, str, str]) -> asn1_x509.Name:
    """A Name with one RDN per (type, string type, value), in this order."""
    rdns = [
        asn1_x509.RelativeDistinguishedName([
            asn1_x509.NameTypeAndValue({"type": kind, "value": asn1_x509.DirectoryString(name=string, value=value)
                                        if kind not in ("email_address", "domain_component") else value})
        ])
        for kind, string, value in attributes
    ]
    return asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns))


def test_names_are_printed_in_encoding_order_with_bouncycastle_labels() -> None:
    name = _name(("common_name", "utf8_string", "ALIYEV VALI"), ("given_name", "utf8_string", "VALI"),
                 ("surname", "utf8_string", "ALIYEV"), ("title", "utf8_string", "direktor"),
                 ("1.2.860.3.16.1.2", "utf8_string", "31234567890123"), ("business_category", "utf8_string", "MChJ"),
                 ("email_address", "", "a@b.uz"), ("2.5.4.41", "utf8_string", "Vali"))
    assert format_name(name) == ("CN=ALIYEV VALI,GIVENNAME=VALI,SURNAME=ALIYEV,T=direktor,"
                                 "1.2.860.3.16.1.2=31234567890123,BusinessCategory=MChJ,E=a@b.uz,Name=Vali")


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ('"Yangi, Texnologiyalar" MChJ', '\\"Yangi\\, Texnologiyalar\\" MChJ'),
        ("a+b=c<d>e;f\\g", "a\\+b\\=c\\<d\\>e\\;f\\\\g"),
        ("#1 firm", "\\#1 firm"),
        ("  padded ", "\\ \\ padded\\ "),
        ("Oʻzbekiston — Тошкент", "Oʻzbekiston — Тошкент"),
    ],
)
def test_values_are_escaped_as_bouncycastle_does(value: str, printed: str) -> None:
    assert format_name(_name(("organization_name", "utf8_string", value))) == f"O={printed}"


def test_values_that_are_not_strings_print_as_hex_der() -> None:
    rdn = asn1_x509.RelativeDistinguishedName([asn1_x509.NameTypeAndValue.load(
        bytes.fromhex("3009") + bytes.fromhex("0603550405") + bytes.fromhex("020201ff"))])  # serialNumber INTEGER 511
    assert format_name(asn1_x509.Name(name="", value=asn1_x509.RDNSequence([rdn]))) == "SERIALNUMBER=#020201ff"


# --- through the agent --------------------------------------------------------------------------------------------


@dataclass
class Setup:
    agent: AgentProcess
    askpass: Askpass
    root: Path
    ca: Path
    ca_der: bytes
    other_ca_der: bytes
    keys: dict[str, Path]

    def leaf_der(self, key: str) -> bytes:
        _, cert, _ = pkcs12.load_key_and_certificates(self.keys[key].read_bytes(), PASSWORD.encode())
        assert cert is not None
        return cert.public_bytes(Encoding.DER)

    def load(self, key: str, origin: str = "default") -> str:
        entries = self.agent.call("list_all_certificates", plugin="pfx")["certificates"]
        e = next(c for c in entries if c["name"] == self.keys[key].stem)
        reply = self.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx", origin=origin)
        assert reply["success"] is True, reply
        return reply["keyId"]


def _pem_der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("x509")
    root, ca, other_ca = tmp / "flash", tmp / "ca", tmp / "other-ca"
    keys = {
        "rsa": mint(ca, root, "rsa2048", "--cn", "ALIYEV VALI", "--name", "VALI", "--surname", "ALIYEV",
                    "--pinfl", "31234567890123", "--tin", "512345678", "--org", '"Yangi, Texnologiyalar" MChJ',
                    "--title", "direktor"),
        "p256": mint(ca, root, "p256", "--cn", "TOSHMATOV ESHMAT", "--pinfl", "30101199012345"),
    }
    mint(other_ca, tmp / "unused", "p256", "--cn", "NOBODY")  # a second dev CA with the same name, another key
    askpass = make_askpass(tmp)
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    try:
        yield Setup(agent, askpass, root, ca, _pem_der(ca / "ca.crt.pem"), _pem_der(other_ca / "ca.crt.pem"), keys)
    finally:
        agent.stop()


@pytest.fixture
def setup(started: Setup) -> Setup:
    """The running agent, with the askpass reset to the right password and an empty question log."""
    started.askpass.answer(PASSWORD)
    started.askpass.clear()
    return started


def info(setup: Setup, der_or_64: bytes | str) -> dict:
    value = der_or_64 if isinstance(der_or_64, str) else b64(der_or_64)
    reply = setup.agent.call("get_certificate_info", value, plugin="x509")
    assert reply["success"] is True and reply["status"] == 1, reply
    assert set(reply) == {"success", "status", "certificate_info"}
    return reply["certificate_info"]


def test_certificate_chain_is_end_entity_first(setup: Setup) -> None:
    for key in ("rsa", "p256"):
        key_id = setup.load(key)
        reply = setup.agent.call("get_certificate_chain", key_id, plugin="x509")
        assert reply == {"success": True, "status": 1,
                         "certificates": [b64(setup.leaf_der(key)), b64(setup.ca_der)]}
    # The certificates of a .pfx are encrypted: the password is asked, once per call.
    assert setup.askpass.questions() == ["password 1 http://localhost:8080"] * 2


def test_certificate_chain_of_unknown_or_foreign_keys(setup: Setup) -> None:
    key_id = setup.load("rsa")
    unknown = {"success": False, "status": -1010, "reason": "Ключ по идентификатору не найден"}
    assert setup.agent.call("get_certificate_chain", "0" * 32, plugin="x509") == unknown
    assert setup.agent.call("get_certificate_chain", key_id, plugin="x509", origin="http://127.0.0.1:9999") == unknown
    assert setup.askpass.questions() == []  # nobody is asked a password on another site's behalf
    setup.askpass.answer("CANCEL")
    cancelled = setup.agent.call("get_certificate_chain", key_id, plugin="x509")
    assert cancelled == {"success": False, "status": -5000, "reason": "Ввод пароля отменен"}


def test_certificate_info_of_an_rsa_dev_certificate(setup: Setup) -> None:
    der = setup.leaf_der("rsa")
    cert = x509.load_der_x509_certificate(der)
    assert info(setup, der) == {
        "serialNumber": format(cert.serial_number, "x"),
        "subjectName": ('CN=ALIYEV VALI,GIVENNAME=VALI,SURNAME=ALIYEV,C=UZ,O=\\"Yangi\\, Texnologiyalar\\" MChJ,'
                        "T=direktor,UID=512345678,1.2.860.3.16.1.2=31234567890123"),
        "validFrom": cert.not_valid_before_utc.astimezone().strftime("%Y.%m.%d %H:%M:%S"),
        "validTo": cert.not_valid_after_utc.astimezone().strftime("%Y.%m.%d %H:%M:%S"),
        "issuerName": "CN=eimzo-agent dev CA",
        "publicKey": {
            "keyAlgName": "RSA",
            "publicKey": b64(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)),
        },
        # The dev CA's key is P-256, so it signs with ECDSA whatever the subject's key is.
        "signature": {"signAlgName": "SHA256withECDSA", "signature": cert.signature.hex()},
    }


def test_certificate_info_of_a_p256_certificate_and_of_the_ca(setup: Setup) -> None:
    leaf = info(setup, setup.leaf_der("p256"))
    assert leaf["publicKey"]["keyAlgName"] == "EC"
    assert leaf["subjectName"] == "CN=TOSHMATOV ESHMAT,C=UZ,1.2.860.3.16.1.2=30101199012345"
    ca = info(setup, setup.ca_der)
    assert ca["subjectName"] == ca["issuerName"] == "CN=eimzo-agent dev CA"


def test_certificate_info_of_the_national_root(setup: Setup) -> None:
    root = asn1_x509.Certificate.load(base64.b64decode(ROOT_64))
    validity = root["tbs_certificate"]["validity"].native
    assert info(setup, ROOT_64) == {
        "serialNumber": "575a613a",
        "subjectName": ROOT_NAME,
        "validFrom": format_local_time(validity["not_before"]),
        "validTo": format_local_time(validity["not_after"]),
        "issuerName": ROOT_NAME,
        "publicKey": {"keyAlgName": OZDST_KEY_ALG,
                      "publicKey": b64(root["tbs_certificate"]["subject_public_key_info"].dump())},
        "signature": {"signAlgName": OZDST_SIGN_ALG, "signature": root["signature_value"].native.hex()},
    }
    assert len(info(setup, ROOT_64)["signature"]["signature"]) == 128
    assert info(setup, ROOT_64)["subjectName"].startswith("E=info@mitc.uz,C=UZ,")


def test_certificate_info_accepts_pem(setup: Setup) -> None:
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(ROOT_64[i:i + 64] for i in range(0, len(ROOT_64), 64))
    assert info(setup, pem + "\n-----END CERTIFICATE-----\n")["serialNumber"] == "575a613a"


def verify(setup: Setup, subject: bytes | str, issuer: bytes | str, origin: str = "default") -> dict:
    args = [v if isinstance(v, str) else b64(v) for v in (subject, issuer)]
    return setup.agent.call("verify_certificate", *args, plugin="x509", origin=origin)


OK = {"success": True, "status": 1}
ISSUER_MISMATCH = {
    "success": False, "status": -9999,
    "reason": "Сертификат выдан не этим издателем: имя издателя в сертификате не совпадает с именем владельца "
              "сертификата издателя",
}
SIGNATURE_INVALID = {"success": False, "status": -9999,
                     "reason": "Подпись сертификата не подтверждается открытым ключом издателя"}


def test_verify_certificate(setup: Setup) -> None:
    leaf = setup.leaf_der("rsa")
    assert verify(setup, leaf, setup.ca_der) == OK
    assert verify(setup, setup.ca_der, setup.ca_der) == OK  # self-signed
    assert verify(setup, setup.ca_der, leaf) == ISSUER_MISMATCH
    # Same issuer name, another key: only the signature check can tell.
    assert verify(setup, leaf, setup.other_ca_der) == SIGNATURE_INVALID
    assert verify(setup, ROOT_64, ROOT_64) == OK
    assert verify(setup, leaf, ROOT_64) == ISSUER_MISMATCH


def test_verify_certificate_with_a_tampered_signature(setup: Setup) -> None:
    root = bytearray(base64.b64decode(ROOT_64))
    root[-1] ^= 0x01  # the last byte of the signature value
    assert verify(setup, bytes(root), ROOT_64) == SIGNATURE_INVALID


def test_garbage_gets_e_imzo_shaped_errors(setup: Setup) -> None:
    assert verify(setup, "not base64 !!!", b64(setup.ca_der)) == {
        "success": False, "status": -9999,
        "reason": "Аргумент subject_certificate_64 не является корректной строкой Base64"}
    assert verify(setup, b64(setup.ca_der), b64(b"0 definitely not DER")) == {
        "success": False, "status": -9999, "reason": "Аргумент issuer_certificate_64 не является сертификатом X.509"}
    truncated = setup.ca_der[:-10]
    assert verify(setup, truncated, setup.ca_der)["reason"].startswith("Аргумент subject_certificate_64 не является")
    reply = setup.agent.call("get_certificate_info", b64(setup.ca_der + b"\0"), plugin="x509")
    assert reply == {"success": False, "status": -9999,
                     "reason": "Аргумент certificate_64 не является сертификатом X.509"}
    assert setup.agent.call("get_certificate_info", "", plugin="x509")["status"] == -9999
    assert setup.agent.call("version")["success"] is True


def test_the_domain_gate_applies(setup: Setup) -> None:
    reply = setup.agent.call("get_certificate_info", ROOT_64, plugin="x509", origin="https://evil.example.com")
    assert reply["status"] == -1022
    assert verify(setup, ROOT_64, ROOT_64, origin="https://evil.example.com")["status"] == -1022


def test_ozdst_key_chain_info_and_verification(setup: Setup) -> None:
    # Disks are looked up on every call: a key minted now is listed at once.
    setup.keys["ozdst"] = mint(setup.ca, setup.root, "ozdst", "--cn", "SAIDOVA MALIKA", "--pinfl", "41234567890123")
    key_id = setup.load("ozdst")
    chain = setup.agent.call("get_certificate_chain", key_id, plugin="x509")
    assert chain["success"] is True, chain
    leaf_64, ca_64 = chain["certificates"]
    leaf, ca = info(setup, leaf_64), info(setup, ca_64)
    assert leaf["publicKey"]["keyAlgName"] == OZDST_KEY_ALG and leaf["signature"]["signAlgName"] == OZDST_SIGN_ALG
    assert leaf["subjectName"] == "CN=SAIDOVA MALIKA,C=UZ,1.2.860.3.16.1.2=41234567890123"
    assert leaf["issuerName"] == ca["subjectName"] == ca["issuerName"]
    assert verify(setup, leaf_64, ca_64) == OK
    assert verify(setup, ca_64, ca_64) == OK
    assert verify(setup, leaf_64, ROOT_64) == ISSUER_MISMATCH


def test_apidoc_lists_the_x509_functions(setup: Setup) -> None:
    doc = setup.agent.call("apidoc")
    plugin = next(p for p in doc if p["name"] == "x509")
    assert plugin["description"] == "Функции для работы с сертификатами X.509"
    arguments = {f["name"]: [a["name"] for a in f["arguments"]] for f in plugin["functions"]}
    assert arguments == {
        "get_certificate_chain": ["certId"],
        "get_certificate_info": ["certificate_64"],
        "verify_certificate": ["subject_certificate_64", "issuer_certificate_64"],
    }


def test_certificate_chain_of_a_token_key_needs_no_pin(tmp_path: Path) -> None:
    """Certificates on a PKCS#11 token are public objects: the chain comes without a PIN question."""
    from softhsm import MODULE, PIN, make_softhsm, mint_pfx

    assert Path(MODULE).is_file(), "softhsm2 is not installed (scripts/bootstrap.sh --test installs it)"
    hsm = make_softhsm(tmp_path / "hsm")
    hsm.add_token("CHAIN TOKEN")
    pfx = mint_pfx(tmp_path / "ca", tmp_path / "pfx", "p256", "ZANJIROV TOKEN", "35555555555555")
    hsm.import_key("CHAIN TOKEN", pfx, "Token-Passw0rd", "07", "zanjirov", with_ca=True)
    askpass = make_askpass(tmp_path)
    askpass.answer(PIN, "pin")
    agent = start_agent(tmp_path / "agent", "--askpass", str(askpass.program), "--pkcs11-module", MODULE,
                        env=hsm.env())
    try:
        (entry,) = agent.call("list_keys", plugin="token")["keys"]
        key_id = agent.call("load_key", entry["tokenId"], entry["alias"], plugin="token")["keyId"]
        reply = agent.call("get_certificate_chain", key_id, plugin="x509")
        _, leaf, _ = pkcs12.load_key_and_certificates(pfx.read_bytes(), b"Token-Passw0rd")
        assert leaf is not None
        assert reply == {"success": True, "status": 1, "certificates": [
            b64(leaf.public_bytes(Encoding.DER)), b64(_pem_der(tmp_path / "ca" / "ca.crt.pem"))]}
        assert askpass.questions() == []
        other = agent.call("get_certificate_chain", key_id, plugin="x509", origin="http://127.0.0.1:9999")
        assert other["status"] == -1010
    finally:
        agent.stop()
