"""O'zDSt keys through the real agent, the way portals use it (one socket per call, askpass for the password).

Keys are minted by `eimzo-agent dev mint-key --alg ozdst`. OpenSSL cannot verify the national algorithms, so
every signature is checked here independently: messageDigest == GOST R 34.11-94(content), and the signature
over the DER signed attributes verifies with the `gostcrypto` package against the certificate's public key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gostcrypto.gostsignature as gostsignature
import pytest
from agent_harness import PASSWORD, AgentProcess, Askpass, b64, make_askpass, mint, start_agent
from asn1crypto import cms as asn1_cms
from asn1crypto import core, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.keys.alias import build_alias
from eimzo_agent.keys.pkcs12 import iter_safe_bags, parse_pfx

DOCUMENT = "Hisob-faktura № 42: 3 500 000 so'm. Счёт-фактура.".encode()
DIGEST_ALGORITHM_DER = bytes.fromhex("300e060a2a865c030f01030201010500")  # {1.2.860.3.15.1.3.2.1.1, NULL}
SIGNATURE_ALGORITHM_DER = bytes.fromhex("300f060b2a865c030f0101020202020500")  # {…1.1.2.2.2.2, NULL}

# CryptoPro A/B/C as gostcrypto names them (tc26 256-bit paramSets B/C/D), with their p, a, b.
_GOSTCRYPTO_CURVES = [gostsignature.CURVES_R_1323565_1_024_2019[f"id-tc26-gost-3410-2012-256-paramSet{n}"]
                      for n in "BCD"]


@dataclass
class Setup:
    root: Path
    askpass: Askpass
    agent: AgentProcess
    keys: dict[str, Path]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("ozdst-e2e")
    root, ca = tmp / "flash", tmp / "ca"
    keys = {
        "oz": mint(ca, root / "DSKEYS", "ozdst", "--cn", "RAHIMOV JASUR", "--name", "JASUR", "--surname", "RAHIMOV",
                   "--pinfl", "31505901234567", "--tin", "512398765"),
        "oz2": mint(ca, root, "ozdst", "--cn", "NAZAROVA DILNOZA", "--pinfl", "41505901234567",
                    "--org", "Ipak Yo'li MChJ", "--org-tin", "301234567", "--title", "bosh hisobchi"),
        "rsa": mint(ca, root, "rsa2048", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123"),
    }
    askpass = make_askpass(tmp)
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    try:
        yield Setup(root, askpass, agent, keys)
    finally:
        agent.stop()


@pytest.fixture(autouse=True)
def fresh_askpass(setup: Setup) -> None:
    setup.askpass.answer(PASSWORD)
    setup.askpass.clear()


def entry_for(setup: Setup, key: str) -> dict[str, str]:
    certificates = setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
    return next(c for c in certificates if c["name"] == setup.keys[key].stem)


def load(setup: Setup, key: str) -> str:
    e = entry_for(setup, key)
    reply = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")
    assert reply["success"] is True, reply
    return reply["keyId"]


def sign(setup: Setup, key_id: str, content: bytes, detached: str = "no") -> dict[str, str]:
    reply = setup.agent.call("create_pkcs7", b64(content), key_id, detached, plugin="pkcs7")
    assert reply["success"] is True, reply
    return reply


def certificate_in_file(path: Path) -> asn1_x509.Certificate:
    """The end-entity certificate of a minted file (decrypted with the password; the issuer is the other one)."""
    bags = iter_safe_bags(parse_pfx(path.read_bytes()), PASSWORD)
    certs = [bag["bag_value"]["cert_value"].parsed for bag in bags if bag["bag_id"].native == "cert_bag"]
    return next(c for c in certs if not c.ca)


# --------------------------------------------------------------------------------------------- independent check


def gostcrypto_verify(cert: asn1_x509.Certificate, digest: bytes, signature: bytes) -> bool:
    """Verify s||r over a GOST R 34.11-94 digest (read little-endian) against the certificate's key, with
    gostcrypto. The curve is the one of CryptoPro A/B/C the public point lies on."""
    spki = core.Sequence.load(cert["tbs_certificate"]["subject_public_key_info"].dump())
    raw = core.OctetString.load(spki[1].contents[1:]).native  # BIT STRING { OCTET STRING(x LE || y LE) }
    x, y = int.from_bytes(raw[:32], "little"), int.from_bytes(raw[32:], "little")
    curve = next(c for c in _GOSTCRYPTO_CURVES if (y * y - x**3 - c["a"] * x - c["b"]) % c["p"] == 0)
    verifier = gostsignature.new(gostsignature.MODE_256, curve)
    public = bytearray(x.to_bytes(32, "big") + y.to_bytes(32, "big"))
    return verifier.verify(public, bytearray(digest[::-1]), bytearray(signature[32:] + signature[:32]))


def signature_is_valid(content: bytes, signed_attrs: bytes, signature: bytes, cert: asn1_x509.Certificate) -> bool:
    """E-IMZO's rule: messageDigest is the hash of the content; the signature covers the DER SET of attributes."""
    try:
        attributes = asn1_cms.CMSAttributes.load(signed_attrs)
        digests = [a["values"][0].native for a in attributes if a["type"].native == "message_digest"]
    except ValueError:
        return False
    if digests != [gost94_digest(content)]:
        return False
    return gostcrypto_verify(cert, gost94_digest(signed_attrs), signature)


@dataclass
class Signer:
    info: asn1_cms.SignerInfo
    certificate: asn1_x509.Certificate

    @property
    def signed_attrs(self) -> bytes:
        # Stored [0] IMPLICIT in the SignerInfo; signed as an explicit SET OF (RFC 5652 §5.4).
        return b"\x31" + self.info["signed_attrs"].dump()[1:]

    @property
    def signature(self) -> bytes:
        return self.info["signature"].native


def signers_of(cms_der: bytes) -> tuple[asn1_cms.SignedData, list[Signer]]:
    signed_data = asn1_cms.ContentInfo.load(cms_der)["content"]
    certs = [choice.chosen for choice in signed_data["certificates"]]
    signers = []
    for info in signed_data["signer_infos"]:
        sid = info["sid"].chosen
        cert = next(c for c in certs if c.serial_number == sid["serial_number"].native and c.issuer == sid["issuer"])
        signers.append(Signer(info, cert))
    return signed_data, signers


def is_ozdst(signer: Signer) -> bool:
    return signer.info["signature_algorithm"].dump() == SIGNATURE_ALGORITHM_DER


def assert_eimzo_layout(signer: Signer) -> None:
    """The SignerInfo looks like one from E-IMZO: v1, issuerAndSerialNumber, NULL params, 3 signed attributes."""
    info = signer.info
    assert info["version"].native == "v1"
    assert info["sid"].name == "issuer_and_serial_number"
    assert info["digest_algorithm"].dump() == DIGEST_ALGORITHM_DER
    assert info["signature_algorithm"].dump() == SIGNATURE_ALGORITHM_DER
    assert [a["type"].native for a in info["signed_attrs"]] == ["content_type", "signing_time", "message_digest"]
    assert info["signed_attrs"][1]["values"][0].name == "utc_time"
    assert isinstance(info["unsigned_attrs"], core.Void)


def anchors(setup: Setup) -> list[bytes]:
    """The dev CAs the keys were minted from (O'zDSt CA in <ca>/ozdst, the RSA/EC one in <ca>)."""
    ca = setup.root.parent / "ca"
    return [pem.unarmor(path.read_bytes())[2] for path in (ca / "ozdst" / "ca.crt.pem", ca / "ca.crt.pem")]


def ours_accepts(setup: Setup, cms_der: bytes, content: bytes | None = None) -> bool:
    """Our own verifier (crypto/cms_verify.py): signatures, digests and chains to the dev CAs."""
    return verify_cms(cms_der, content, trust_anchors=anchors(setup)).valid


def check_ozdst_cms(cms_der: bytes, content: bytes, *, signers: int = 1, setup: Setup | None = None) -> list[Signer]:
    if setup is not None:
        attached = signers_of(cms_der)[0]["encap_content_info"]["content"]
        assert ours_accepts(setup, cms_der, None if not isinstance(attached, core.Void) else content)
    signed_data, found = signers_of(cms_der)
    assert signed_data["version"].native == "v1"
    assert DIGEST_ALGORITHM_DER in [a.dump() for a in signed_data["digest_algorithms"]]
    assert len(found) == signers
    for signer in found:
        if is_ozdst(signer):
            assert_eimzo_layout(signer)
            assert signature_is_valid(content, signer.signed_attrs, signer.signature, signer.certificate)
    return found


# --------------------------------------------------------------------------------------------- tests


def test_ozdst_keys_are_listed_with_eimzo_aliases(setup: Setup) -> None:
    for key in ("oz", "oz2"):
        entry = entry_for(setup, key)
        alias = entry["alias"]
        assert alias == build_alias(certificate_in_file(setup.keys[key]))
        assert alias == alias.lower()
        for field in ("serialnumber=", "validfrom=", "validto="):
            assert field in alias
    assert entry_for(setup, "oz")["alias"].startswith("cn=rahimov jasur,name=jasur,surname=rahimov,c=uz,")
    assert "1.2.860.3.16.1.1=301234567" in entry_for(setup, "oz2")["alias"]
    assert setup.askpass.questions() == []  # listed without any password


def test_create_pkcs7_attached_and_detached(setup: Setup) -> None:
    key_id = load(setup, "oz")
    attached = sign(setup, key_id, DOCUMENT)
    der = base64.b64decode(attached["pkcs7_64"])
    (signer,) = check_ozdst_cms(der, DOCUMENT, setup=setup)
    signed_data, _ = signers_of(der)
    assert [a.dump() for a in signed_data["digest_algorithms"]] == [DIGEST_ALGORITHM_DER]
    assert signed_data["encap_content_info"]["content"].native == DOCUMENT
    assert len(signed_data["certificates"]) == 2  # user + dev O'zDSt CA
    assert bytes.fromhex(attached["signature_hex"]) == signer.signature
    assert attached["signer_serial_number"] == format(signer.certificate.serial_number, "x")
    assert f"serialnumber={attached['signer_serial_number']}," in entry_for(setup, "oz")["alias"]
    assert setup.askpass.questions() == ["password 1 http://localhost:8080"]

    detached = sign(setup, key_id, DOCUMENT, "yes")
    detached_der = base64.b64decode(detached["pkcs7_64"])
    assert DOCUMENT not in detached_der
    signed_data, _ = signers_of(detached_der)
    assert isinstance(signed_data["encap_content_info"]["content"], core.Void)
    check_ozdst_cms(detached_der, DOCUMENT, setup=setup)
    assert not ours_accepts(setup, detached_der, DOCUMENT[:-1] + b"!")
    for content in (b"", bytes(range(256)) * 4096):  # empty, and 1 MiB of binary
        check_ozdst_cms(base64.b64decode(sign(setup, key_id, content)["pkcs7_64"]), content)


def test_tampering_is_detected(setup: Setup) -> None:
    key_id = load(setup, "oz")
    (signer,) = check_ozdst_cms(base64.b64decode(sign(setup, key_id, DOCUMENT)["pkcs7_64"]), DOCUMENT)
    attrs, signature, cert = signer.signed_attrs, signer.signature, signer.certificate
    assert signature_is_valid(DOCUMENT, attrs, signature, cert)

    def flipped(data: bytes, index: int) -> bytes:
        return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]

    cms_der = base64.b64decode(sign(setup, key_id, DOCUMENT)["pkcs7_64"])
    assert ours_accepts(setup, cms_der)
    at = cms_der.index(DOCUMENT)
    assert not ours_accepts(setup, flipped(cms_der, at + 5))  # content
    # The signingTime in the signed attributes: after the certificates, so the last UTCTime of the CMS.
    assert not ours_accepts(setup, flipped(cms_der, cms_der.rindex(b"\x17\x0d") + 2 + 11))
    assert not ours_accepts(setup, flipped(cms_der, len(cms_der) - 3))  # signature (the last bytes: s||r)

    assert not signature_is_valid(flipped(DOCUMENT, 5), attrs, signature, cert)
    seconds = attrs.index(b"\x17\x0d") + 2 + 11  # last digit of the signingTime seconds: still a valid time
    assert not signature_is_valid(DOCUMENT, flipped(attrs, seconds), signature, cert)
    for index in (0, 31, 32, 63):  # in s and in r
        assert not signature_is_valid(DOCUMENT, attrs, flipped(signature, index), cert)


def test_cosign_with_a_second_ozdst_key(setup: Setup) -> None:
    first = sign(setup, load(setup, "oz"), DOCUMENT)
    reply = setup.agent.call("append_pkcs7_attached", first["pkcs7_64"], load(setup, "oz2"), plugin="pkcs7")
    assert reply["success"] is True, reply
    der = base64.b64decode(reply["pkcs7_64"])
    signers = check_ozdst_cms(der, DOCUMENT, signers=2, setup=setup)
    original = signers_of(base64.b64decode(first["pkcs7_64"]))[1][0].info.dump()
    assert original in [s.info.dump() for s in signers]  # the first signer is kept byte for byte
    signed_data, _ = signers_of(der)
    assert [a.dump() for a in signed_data["digest_algorithms"]] == [DIGEST_ALGORITHM_DER]
    assert reply["signer_serial_number"] != first["signer_serial_number"]
    assert len(signed_data["certificates"]) == 3  # two users, one CA


def test_cosign_an_rsa_signed_document_with_an_ozdst_key(setup: Setup) -> None:
    first = sign(setup, load(setup, "rsa"), DOCUMENT)
    reply = setup.agent.call("append_pkcs7_attached", first["pkcs7_64"], load(setup, "oz"), plugin="pkcs7")
    assert reply["success"] is True, reply
    der = base64.b64decode(reply["pkcs7_64"])
    signers = check_ozdst_cms(der, DOCUMENT, signers=2, setup=setup)
    (rsa_signer,) = [s for s in signers if not is_ozdst(s)]
    assert len([s for s in signers if is_ozdst(s)]) == 1
    # The RSA signature still holds, checked by cryptography.
    public = x509.load_der_x509_certificate(rsa_signer.certificate.dump()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(rsa_signer.signature, rsa_signer.signed_attrs, padding.PKCS1v15(), hashes.SHA256())
    signed_data, _ = signers_of(der)
    assert {a["algorithm"].dotted for a in signed_data["digest_algorithms"]} == {
        "2.16.840.1.101.3.4.2.1", "1.2.860.3.15.1.3.2.1.1"}


def test_wrong_password_is_asked_again(setup: Setup) -> None:
    key_id = load(setup, "oz2")
    setup.askpass.answer("Not-The-Passw0rd")
    reply = setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")
    assert reply == {"success": False, "status": -5000,
                     "reason": "Пароль неверный (BadPaddingException): пароль ключа введён неверно 3 раз(а)."}
    assert [q.split()[:2] for q in setup.askpass.questions()] == [["password", "1"], ["password", "2"],
                                                                  ["password", "3"]]


def test_change_password_of_an_ozdst_key(setup: Setup) -> None:
    copy = setup.root / "DSOZCHANGE0001.pfx"
    copy.write_bytes(setup.keys["oz"].read_bytes())
    try:
        e = next(c for c in setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
                 if c["name"] == "DSOZCHANGE0001")
        key_id = setup.agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]
        setup.askpass.answer("Yangi-Parol-789", "new_password")
        setup.askpass.answer("Yangi-Parol-789", "repeat_new_password")
        assert setup.agent.call("change_password", key_id, plugin="pfx")["success"] is True
        assert setup.agent.call("create_pkcs7", b64(DOCUMENT), key_id, "no", plugin="pkcs7")["status"] == -5000
        setup.askpass.clear()
        setup.askpass.answer("Yangi-Parol-789")
        check_ozdst_cms(base64.b64decode(sign(setup, key_id, DOCUMENT)["pkcs7_64"]), DOCUMENT)
        listed = setup.agent.call("list_certificates", e["disk"], plugin="pfx")["certificates"]
        assert e in listed  # same alias, still readable without the password
    finally:
        copy.unlink(missing_ok=True)
