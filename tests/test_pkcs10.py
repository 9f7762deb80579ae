"""PKCS#10 requests (crypto/pkcs10.py), new keys (crypto/new_keys.py) and pending key pairs (keys/keypairs.py).

Each request is checked independently of our own code: RSA/EC with `openssl req -verify`, O'zDSt/OZMST with the
`gostcrypto` package (as tests/test_ozdst_e2e.py checks CMS signatures). The subject's string types are read from
the DER, as a CA that compares names byte for byte would see them.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core
from asn1crypto import csr as asn1_csr
from asn1crypto import x509 as asn1_x509
from test_ozdst_e2e import gostcrypto_verify

from eimzo_agent.crypto import new_keys
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.pkcs10 import (
    Pkcs10Error,
    PolicyError,
    SubjectError,
    create_pkcs10,
    decode_pkcs10,
    parse_policies,
    parse_subject,
    pkcs10_info,
    request_policies,
)
from eimzo_agent.crypto.x509_info import format_name
from eimzo_agent.keys.keypairs import KeyPairs

SUBJECT = ("CN=ALIYEV VALI,NAME=VALI,SURNAME=ALIYEV,UID=512345678,1.2.860.3.16.1.2=31234567890123,"
           "O=Ipak Yo'li\\, MChJ,T=direktor,E=vali@example.uz,SERIALNUMBER=AB123,C=UZ")
POLICIES = "1.2.860.3.2.2.1.1.2,1.2.860.3.2.2.1.1.5"

_TAGS = {0x0C: "UTF8String", 0x13: "PrintableString", 0x16: "IA5String"}


def _tlvs(der: bytes) -> list[tuple[str, str]]:
    """(OID, ASN.1 string type) of every attribute of a DER Name, in order."""
    found = []
    for rdn in core.SequenceOf.load(der, spec=core.SetOf):  # type: ignore[call-arg]
        for atv in core.SetOf.load(rdn.dump(), spec=core.Sequence):  # type: ignore[call-arg]
            oid = core.ObjectIdentifier.load(atv[0].dump()).dotted
            found.append((oid, _TAGS.get(atv[1].dump()[0], hex(atv[1].dump()[0]))))
    return found


def test_subject_encoding_follows_bouncycastle() -> None:
    der = parse_subject(SUBJECT)
    assert _tlvs(der) == [
        ("2.5.4.3", "UTF8String"), ("2.5.4.41", "UTF8String"), ("2.5.4.4", "UTF8String"),
        ("0.9.2342.19200300.100.1.1", "UTF8String"), ("1.2.860.3.16.1.2", "UTF8String"),
        ("2.5.4.10", "UTF8String"), ("2.5.4.12", "UTF8String"), ("1.2.840.113549.1.9.1", "IA5String"),
        ("2.5.4.5", "PrintableString"), ("2.5.4.6", "PrintableString"),
    ]
    # Read back as E-IMZO prints names: the same order, labels and escapes the page wrote.
    assert format_name(asn1_x509.Name.load(der)) == SUBJECT.replace("NAME=VALI", "Name=VALI")


def test_subject_syntax_multi_valued_rdn_hex_escape_and_case() -> None:
    der = parse_subject('cn=A\\+B + uid=123456789, o="Quoted, Inc", l=Toshkent\\20shahri, c=uz')
    assert format_name(asn1_x509.Name.load(der)) == "CN=A\\+B+UID=123456789,O=Quoted\\, Inc,L=Toshkent shahri,C=uz"


@pytest.mark.parametrize("subject", [
    "", "CN", "CN=", "FOO=bar", "CN=a,,C=UZ", "C=UZB", "C=Ўз", "E=вали@example.uz", "CN=a\\", 'CN="open',
    "1.2.x=5",
])
def test_malformed_subjects_are_refused(subject: str) -> None:
    with pytest.raises(SubjectError):
        parse_subject(subject)


def test_policies() -> None:
    assert parse_policies(" 1.2.3 , 2.5.29.32.0,") == ("1.2.3", "2.5.29.32.0")
    assert parse_policies("") == ()
    for bad in ("1.2.3,abc", "1", "3.1", "1.02.3"):
        with pytest.raises(PolicyError):
            parse_policies(bad)


@pytest.mark.parametrize("alg", ["RSA-2048", "EC-P256", "ec-p384"])
def test_international_request_verifies_with_openssl(alg: str, tmp_path: Path) -> None:
    key = new_keys.generate(alg)
    der = create_pkcs10(key, parse_subject(SUBJECT), parse_policies(POLICIES))
    path = tmp_path / "req.der"
    path.write_bytes(der)
    result = subprocess.run(["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout", "-text"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr
    assert "X509v3 Certificate Policies: critical" in result.stdout
    assert "Policy: 1.2.860.3.2.2.1.1.5" in result.stdout
    info = pkcs10_info(der)
    assert info["verified"] is True
    assert info["publicKey"]["keyAlgName"] == alg.upper().split("-")[0]
    assert base64.b64decode(info["publicKey"]["publicKey"]) == new_keys.spki_der(key)


@pytest.mark.parametrize(("alg", "key_oid", "signature_oid"), [
    ("OZDST-1092-2009-2", "1.2.860.3.15.1.1.2.1", "1.2.860.3.15.1.1.2.2.2.2"),
    ("OZMST-286-2024-2", "1.2.860.3.15.2.1.2.1", "1.2.860.3.15.2.1.2.2.2.2"),
])
def test_national_request_verifies_independently(alg: str, key_oid: str, signature_oid: str) -> None:
    key = new_keys.generate(alg)
    assert isinstance(key, new_keys.OzdstPrivateKey)
    assert new_keys.spki_der(key) == key.public_key().spki_der()  # the hand encoding is E-IMZO's SPKI exactly
    der = create_pkcs10(key, parse_subject(SUBJECT), parse_policies(POLICIES))
    request = asn1_csr.CertificationRequest.load(der)
    info_der = request["certification_request_info"].dump()
    signature = request["signature"].native
    inner = core.ObjectIdentifier(signature_oid).dump() + core.Null().dump()
    assert request["signature_algorithm"].dump() == bytes([0x30, len(inner)]) + inner  # {OID, NULL}, as E-IMZO
    spki = core.Sequence.load(request["certification_request_info"]["subject_pk_info"].dump())
    assert core.ObjectIdentifier.load(spki[0][0].dump()).dotted == key_oid
    # gostcrypto checks the signature on the key the request carries (no code of ours involved).
    holder: Any = {"tbs_certificate": {"subject_public_key_info": spki}}  # all gostcrypto_verify reads
    assert gostcrypto_verify(holder, gost94_digest(info_der), signature)
    assert not gostcrypto_verify(holder, gost94_digest(info_der + b"x"), signature)
    info = pkcs10_info(der)
    assert info == {
        "subjectName": format_name(asn1_x509.Name.load(parse_subject(SUBJECT))),
        "publicKey": {"keyAlgName": alg, "publicKey": base64.b64encode(new_keys.spki_der(key)).decode()},
        "signature": {"signAlgName": f"{alg.split('-')[0]}-{'1106-2009-2' if alg.startswith('OZDST') else '285-2024-2'}"
                      f"-Awith{alg}", "signature": signature.hex()},
        "verified": True,
    }
    # The policies are in a critical certificatePolicies extension of an extensionRequest attribute.
    attribute = request["certification_request_info"]["attributes"][0]
    assert attribute["type"].dotted == "1.2.840.113549.1.9.14"
    extension = attribute["values"][0][0]
    assert extension["extn_id"].dotted == "2.5.29.32" and extension["critical"].native is True
    assert request_policies(der) == tuple(POLICIES.split(","))


def test_tampered_or_malformed_requests() -> None:
    key = new_keys.generate("OZDST-1092-2009-2")
    der = bytearray(create_pkcs10(key, parse_subject("CN=X,C=UZ")))
    der[der.index(b"X")] = ord("Y")  # change the subject after signing
    assert pkcs10_info(bytes(der))["verified"] is False
    for bad in (b"", b"\x30\x03\x02\x01\x00", b"not der at all"):
        with pytest.raises(Pkcs10Error):
            pkcs10_info(bad)
    with pytest.raises(Pkcs10Error):
        decode_pkcs10("%%% not base64")


def test_pem_and_base64_are_both_read() -> None:
    der = create_pkcs10(new_keys.generate("EC-P256"), parse_subject("CN=X"))
    text = base64.b64encode(der).decode()
    pem_text = "-----BEGIN CERTIFICATE REQUEST-----\n" + text + "\n-----END CERTIFICATE REQUEST-----\n"
    assert decode_pkcs10(pem_text) == der == decode_pkcs10(text[:20] + "\n" + text[20:])


def test_unknown_algorithm() -> None:
    for name in ("", "GOST-2012", "RSA-1024", "OZDST"):
        with pytest.raises(new_keys.AlgorithmUnknown):
            new_keys.generate(name)


def test_keys_are_fresh_every_time() -> None:
    first, second = new_keys.generate("OZDST-1092-2009-2"), new_keys.generate("OZDST-1092-2009-2")
    assert isinstance(first, new_keys.OzdstPrivateKey) and isinstance(second, new_keys.OzdstPrivateKey)
    assert first.d != second.d


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_key_pairs_are_bound_to_their_origin_and_expire() -> None:
    clock = FakeClock()
    pairs = KeyPairs(ttl_seconds=60, clock=clock)
    key = new_keys.generate("EC-P256")
    kp_id = pairs.add(key, "EC-P256", "https://a.uz")
    assert len(kp_id) == 32 and int(kp_id, 16) >= 0 and kp_id == kp_id.lower()
    assert pairs.get(kp_id, "https://b.uz") is None and pairs.get(kp_id, None) is None
    assert not pairs.remove(kp_id, "https://b.uz")
    pair = pairs.get(kp_id, "https://a.uz")
    assert pair is not None and pair.private_key is key and "private_key" not in repr(pair)
    clock.now += 61
    assert pairs.get(kp_id, "https://a.uz") is None and len(pairs) == 0
    other = pairs.add(key, "EC-P256", "https://a.uz")
    assert pairs.remove(other, "https://a.uz") and pairs.get(other, "https://a.uz") is None


def test_one_origin_cannot_hoard_key_pairs() -> None:
    pairs = KeyPairs()
    key = new_keys.generate("EC-P256")
    ids = [pairs.add(key, "EC-P256", "https://a.uz") for _ in range(40)]
    kept = [i for i in ids if pairs.get(i, "https://a.uz") is not None]
    assert kept == ids[-16:]
