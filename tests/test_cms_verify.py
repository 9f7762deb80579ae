"""The CMS verifier: signatures, messageDigest and chains for RSA, ECDSA and O'zDSt, and hostile input."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.cms import CmsError, append_signer, create_pkcs7
from eimzo_agent.crypto.cms_verify import CmsVerification, SignerVerification, verify_cms
from eimzo_agent.crypto.ozdst_keys import OZDST
from eimzo_agent.crypto.signer import CryptographySigner
from eimzo_agent.crypto.x509_info import AlgorithmError
from eimzo_agent.dev.mint import DevCa, SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.keys.pkcs12 import UnlockedKey, open_pfx

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
PASSWORD = "Test-Passw0rd"
DOCUMENT = "Shartnoma № 5 — договор поставки".encode() * 40
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Keys:
    ca: DevCa
    other_ca: DevCa
    keys: dict[str, UnlockedKey]

    @property
    def anchor(self) -> bytes:
        return self.ca.certificate.public_bytes(Encoding.DER)

    @property
    def other_anchor(self) -> bytes:
        return self.other_ca.certificate.public_bytes(Encoding.DER)



@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    tmp = tmp_path_factory.mktemp("cms-verify")
    ca = ensure_dev_ca(tmp / "ca")
    keys = {}
    for alg, cn in (("rsa2048", "ALIYEV VALI"), ("p256", "TOSHMATOVA NODIRA"), ("p256", "KARIMOV ESHMAT")):
        path = mint_key(ca, tmp / "keys", password=PASSWORD, subject=SubjectFields(cn=cn, pinfl="31234567890123"),
                        alg=alg)  # type: ignore[arg-type]
        keys[cn] = open_pfx(path.read_bytes(), PASSWORD)
    # A second dev CA with the very same name: only signatures can tell the two apart.
    return Keys(ca, ensure_dev_ca(tmp / "other-ca"), keys)


RSA, P256, P256B = "ALIYEV VALI", "TOSHMATOVA NODIRA", "KARIMOV ESHMAT"


def sign(pki: Keys, who: str, *, detached: bool = False, content: bytes = DOCUMENT) -> bytes:
    return create_pkcs7(content, pki.keys[who].signer, detached=detached, signing_time=NOW).cms_der


def only_signer(result: CmsVerification) -> SignerVerification:
    assert len(result.signers) == 1
    return result.signers[0]


# --- RSA and ECDSA made by our own builder ------------------------------------------------------------------------


@pytest.mark.parametrize("who", [RSA, P256])
def test_attached_cms_verifies_with_the_dev_ca(pki: Keys, who: str) -> None:
    result = verify_cms(sign(pki, who), trust_anchors=[pki.anchor])
    signer = only_signer(result)
    assert result.valid and signer.valid, signer.problems
    assert result.content == DOCUMENT
    assert signer.certificate_found and signer.signature_valid and signer.digest_matches and signer.chain_valid
    assert signer.certificate.dump() == pki.keys[who].certificate.dump()
    assert signer.signing_time == NOW
    assert [c.dump() for c in signer.chain] == [pki.keys[who].certificate.dump(), pki.anchor]
    assert signer.problems == ()


@pytest.mark.parametrize("who", [RSA, P256])
def test_detached_cms_verifies_with_the_right_content_only(pki: Keys, who: str) -> None:
    cms_der = sign(pki, who, detached=True)
    good = verify_cms(cms_der, DOCUMENT, [pki.anchor])
    assert good.valid and good.content is None
    wrong = only_signer(verify_cms(cms_der, DOCUMENT + b".", [pki.anchor]))
    assert not wrong.valid and not wrong.digest_matches and wrong.signature_valid
    assert "messageDigest" in " ".join(wrong.problems)
    missing = only_signer(verify_cms(cms_der, None, [pki.anchor]))
    assert not missing.valid and not missing.digest_matches
    assert "no content was given" in " ".join(missing.problems)


@pytest.mark.parametrize("who", [RSA, P256])
def test_a_different_anchor_with_the_same_name_fails(pki: Keys, who: str) -> None:
    signer = only_signer(verify_cms(sign(pki, who), trust_anchors=[pki.other_anchor]))
    assert signer.signature_valid and signer.digest_matches
    assert not signer.chain_valid and not signer.valid and signer.chain == ()
    assert any("does not verify" in p for p in signer.problems), signer.problems


def test_no_anchor_means_no_valid_chain(pki: Keys) -> None:
    signer = only_signer(verify_cms(sign(pki, RSA)))
    assert signer.signature_valid and signer.digest_matches and not signer.chain_valid
    assert signer.problems == ("no trust anchors were given",)


def test_tampered_content(pki: Keys) -> None:
    cms_der = sign(pki, P256)
    tampered = cms_der.replace(DOCUMENT[:40], b"X" + DOCUMENT[1:40], 1)
    assert tampered != cms_der
    signer = only_signer(verify_cms(tampered, trust_anchors=[pki.anchor]))
    assert not signer.digest_matches and signer.signature_valid and not signer.valid


def test_attached_content_differing_from_the_given_content(pki: Keys) -> None:
    signer = only_signer(verify_cms(sign(pki, RSA), b"another document", [pki.anchor]))
    assert not signer.digest_matches and not signer.valid
    assert "differs" in " ".join(signer.problems)


def test_tampered_signed_attributes(pki: Keys) -> None:
    cms_der = sign(pki, RSA)
    utc = NOW.strftime("%y%m%d%H%M%SZ").encode()
    later = (NOW + dt.timedelta(seconds=1)).strftime("%y%m%d%H%M%SZ").encode()
    assert cms_der.count(utc) == 1
    signer = only_signer(verify_cms(cms_der.replace(utc, later), trust_anchors=[pki.anchor]))
    assert not signer.signature_valid and signer.digest_matches and not signer.valid


@pytest.mark.parametrize("who", [RSA, P256])
def test_tampered_signature(pki: Keys, who: str) -> None:
    result = create_pkcs7(DOCUMENT, pki.keys[who].signer, detached=False, signing_time=NOW)
    flipped = result.signature[:-1] + bytes([result.signature[-1] ^ 1])
    signer = only_signer(verify_cms(result.cms_der.replace(result.signature, flipped), trust_anchors=[pki.anchor]))
    assert not signer.signature_valid and signer.digest_matches and not signer.valid


def test_certificates_must_be_valid_at_the_given_time(pki: Keys) -> None:
    cms_der = sign(pki, RSA)
    later = only_signer(verify_cms(cms_der, trust_anchors=[pki.anchor], at=NOW + dt.timedelta(days=3 * 365)))
    assert later.signature_valid and not later.chain_valid
    assert "is not valid at" in later.problems[0]
    with pytest.raises(ValueError, match="timezone"):
        verify_cms(cms_der, trust_anchors=[pki.anchor], at=dt.datetime(2030, 1, 1))


def test_ber_framing_as_e_imzo_emits_it(pki: Keys) -> None:
    """E-IMZO sends BER with indefinite lengths (30 80 ... 00 00) around the SignedData."""
    content_info = asn1_cms.ContentInfo.load(sign(pki, RSA))
    ber = (b"\x30\x80" + content_info["content_type"].dump() + b"\xa0\x80" + content_info["content"].untag().dump()
           + b"\x00\x00\x00\x00")
    result = verify_cms(ber, trust_anchors=[pki.anchor])
    assert result.valid and result.content == DOCUMENT


def test_every_signer_of_a_cosigned_cms_is_checked(pki: Keys) -> None:
    cosigned = append_signer(sign(pki, RSA), pki.keys[P256B].signer, signing_time=NOW).cms_der
    result = verify_cms(cosigned, trust_anchors=[pki.anchor])
    assert result.valid and len(result.signers) == 2
    serials = {s.certificate.serial_number for s in result.signers}
    assert serials == {pki.keys[RSA].certificate.serial_number, pki.keys[P256B].certificate.serial_number}


def test_an_end_entity_cannot_act_as_a_ca(pki: Keys) -> None:
    """A certificate "issued" by a user's key (basicConstraints cA false) does not chain, though it is signed."""
    parent = pki.keys[P256]
    assert isinstance(parent.signer, CryptographySigner)
    parent_cert = x509.load_der_x509_certificate(parent.certificate.dump())
    child_key = ec.generate_private_key(ec.SECP256R1())
    child = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SUB USER")]))
        .issuer_name(parent_cert.subject)
        .public_key(child_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(parent.signer.private_key, hashes.SHA256())
    )
    child_asn1 = asn1_x509.Certificate.load(child.public_bytes(Encoding.DER))
    signer = CryptographySigner(child_key, child_asn1, (parent.certificate, *parent.chain))
    result = only_signer(verify_cms(create_pkcs7(DOCUMENT, signer, detached=False, signing_time=NOW).cms_der,
                                    trust_anchors=[pki.anchor]))
    assert result.signature_valid and result.digest_matches and not result.chain_valid
    assert any("is not a CA certificate" in p for p in result.problems), result.problems


def test_signer_certificate_missing_from_the_cms(pki: Keys) -> None:
    leaf = pki.keys[RSA].certificate.dump()
    content_info = asn1_cms.ContentInfo.load(sign(pki, RSA))
    signed_data = content_info["content"]
    # Keep only the CA certificate: the signer's certificate is nowhere to be found.
    signed_data["certificates"] = [c for c in signed_data["certificates"] if c.chosen.dump() != leaf]
    stripped = content_info.dump(force=True)
    assert leaf not in stripped
    missing = only_signer(verify_cms(stripped, trust_anchors=[pki.anchor]))
    assert not missing.certificate_found and not missing.signature_valid and not missing.valid
    assert missing.certificate is None
    assert "not in the CMS" in missing.problems[0]
    # Given as the trust anchor itself, the signer's certificate is found there and is the whole chain.
    direct = only_signer(verify_cms(stripped, trust_anchors=[leaf]))
    assert direct.valid and [c.dump() for c in direct.chain] == [leaf]


# --- hostile input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not a cms", b"\x30\x80", b"\x30\x03\x06\x01\x00", b"\x30" + b"\x80" * 5000])
def test_unparsable_input_raises_cms_error_only(data: bytes) -> None:
    with pytest.raises(CmsError):
        verify_cms(data)


def test_a_malformed_anchor_is_a_cms_error(pki: Keys) -> None:
    with pytest.raises(CmsError, match="trust anchor 2"):
        verify_cms(sign(pki, RSA), trust_anchors=[pki.anchor, b"\x30\x00"])


@pytest.fixture(scope="module")
def small_cms(pki: Keys) -> bytes:
    return sign(pki, P256, content=b"short document")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_damaged_cms_never_raises_anything_but_cms_error(pki: Keys, small_cms: bytes, data: st.DataObject) -> None:
    damaged = bytearray(small_cms)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(damaged) // 2, len(damaged)))
    try:
        result = verify_cms(bytes(damaged[:cut]), trust_anchors=[pki.anchor])
    except CmsError:
        return
    assert isinstance(result.valid, bool)
    for signer in result.signers:
        assert signer.valid == (signer.certificate_found and signer.signature_valid and signer.digest_matches
                                and signer.chain_valid)


# --- O'zDSt -------------------------------------------------------------------------------------------------------


def national_root() -> asn1_x509.Certificate:
    return x509_info.load_certificate(base64.b64decode(KAT["national_root_certificate"]["der_base64"]))


def test_national_root_is_a_self_signed_ozdst_anchor() -> None:
    root = national_root()
    assert x509_info.issued_by(root, root)
    assert x509_info.verify_certificate_signature(root, root) is True
    assert x509_info.spki_algorithm(root) == OZDST.key_oid
    signature = root["signature_value"].native
    broken = x509_info.load_certificate(root.dump().replace(signature, signature[:-1] + bytes([signature[-1] ^ 1])))
    assert x509_info.verify_certificate_signature(broken, root) is False


def test_kat_signed_attributes_verify_with_the_kat_key() -> None:
    kat = KAT["cms_signature_kat"]
    spki = base64.b64decode(kat["signer_spki_base64"])
    attrs = bytes.fromhex(kat["signed_attrs_der_hex"])
    signature = bytes.fromhex(kat["signature_hex"])
    assert x509_info.digest(OZDST.digest_oid, attrs).hex() == kat["signed_attrs_hash_hex"]
    # The messageDigest inside the attributes is the O'zDSt hash of the document.
    assert x509_info.digest(OZDST.digest_oid, kat["content_text"].encode()) in attrs
    assert x509_info.verify_signature(spki, OZDST.signature_oid, attrs, signature, digest_oid=OZDST.digest_oid)
    tampered = attrs.replace(b"220927061753Z", b"220927061754Z")
    assert not x509_info.verify_signature(spki, OZDST.signature_oid, tampered, signature, digest_oid=OZDST.digest_oid)
    with pytest.raises(AlgorithmError):  # an O'zDSt signature never goes with SHA-256
        x509_info.verify_signature(spki, OZDST.signature_oid, attrs, signature, digest_oid="2.16.840.1.101.3.4.2.1")
    with pytest.raises(AlgorithmError):  # nor is an O'zDSt key an RSA key
        x509_info.verify_signature(spki, "1.2.840.113549.1.1.11", attrs, signature)


def test_ozdst_cms_round_trip(tmp_path: Path) -> None:
    from eimzo_agent.crypto.ozdst_keys import OzdstPrivateKey, OzdstSigner
    from eimzo_agent.dev.ozdst_ca import ensure_ozdst_ca, issue_certificate

    ca = ensure_ozdst_ca(tmp_path / "ca")
    key = OzdstPrivateKey.generate()
    name = asn1_x509.Name.build({"common_name": "OZDST SINOV", "country_name": "UZ"})
    cert = issue_certificate(ca, key.public_key(), name, NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=30))
    signer = OzdstSigner(key, cert, (ca.certificate,))
    result = create_pkcs7(DOCUMENT, signer, detached=False, signing_time=NOW, signed_attributes="eimzo")
    verified = verify_cms(result.cms_der, trust_anchors=[ca.certificate.dump()])
    assert verified.valid, verified.signers[0].problems
    assert [c.dump() for c in verified.signers[0].chain] == [cert.dump(), ca.certificate.dump()]

    flipped = result.signature[:-1] + bytes([result.signature[-1] ^ 1])
    anchors = [ca.certificate.dump()]
    bad = only_signer(verify_cms(result.cms_der.replace(result.signature, flipped), trust_anchors=anchors))
    assert not bad.signature_valid and bad.chain_valid
    detached = create_pkcs7(DOCUMENT, signer, detached=True, signing_time=NOW, signed_attributes="eimzo").cms_der
    assert verify_cms(detached, DOCUMENT, [ca.certificate.dump()]).valid
    assert not verify_cms(detached, DOCUMENT[:-1], [ca.certificate.dump()]).valid
    # Not issued by the national root: no chain to it.
    assert not verify_cms(result.cms_der, trust_anchors=[national_root().dump()]).valid


def test_remembered_checks_never_stand_in_for_another_certificate(pki: Keys) -> None:
    """verify_cms keeps parsed anchors, parsed certificates and issuer-signature results between calls (the portal
    server verifies the same people's certificates again and again). They are keyed by exact DER: a certificate
    with the same subject, key and TBS but a broken CA signature must still fail after the genuine one passed,
    and the genuine one must keep passing afterwards."""
    genuine = sign(pki, P256)
    assert verify_cms(genuine, trust_anchors=[pki.anchor]).valid  # now remembered
    leaf = pki.keys[P256].certificate.dump()
    forged_leaf = asn1_x509.Certificate.load(leaf)
    signature = bytearray(forged_leaf["signature_value"].native)
    signature[-5] ^= 0x01
    forged_leaf["signature_value"] = bytes(signature)
    forged_der = forged_leaf.dump(force=True)
    assert forged_der != leaf and forged_der[:200] == leaf[:200]
    content_info = asn1_cms.ContentInfo.load(genuine)
    content_info["content"]["certificates"] = [
        asn1_cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(forged_der)})
        if c.chosen.dump() == leaf else c for c in content_info["content"]["certificates"]]
    forged = only_signer(verify_cms(content_info.dump(force=True), trust_anchors=[pki.anchor]))
    assert forged.signature_valid and forged.digest_matches  # the same key signed the attributes
    assert not forged.chain_valid and any("does not verify" in p for p in forged.problems), forged.problems
    # The anchor set is remembered too: another set (same CA name, other key) gives no chain for the genuine one.
    assert not only_signer(verify_cms(genuine, trust_anchors=[pki.other_anchor])).chain_valid
    assert verify_cms(genuine, trust_anchors=[pki.anchor]).valid
    assert verify_cms(genuine, trust_anchors=[pki.other_anchor, pki.anchor]).valid
