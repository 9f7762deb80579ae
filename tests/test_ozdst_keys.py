"""O'zDSt keys: encodings against real E-IMZO bytes, .pfx reading and writing, the dev O'zDSt CA.

Signatures are checked with the independent `gostcrypto` package (GOST R 34.10-2012 = 34.10-2001 math for
256-bit keys) wherever we sign, so our EC code is not checked against itself.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import shutil
import stat
import subprocess
from pathlib import Path

import gostcrypto.gostsignature as gostsignature
import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core, pem
from asn1crypto import keys as asn1_keys
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pfx_inspect import certificate_bags, key_bag_attributes, protection

from eimzo_agent.crypto import ozdst
from eimzo_agent.crypto.cms import create_pkcs7, read_signed_data
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.crypto.ozdst_keys import (
    OZDST,
    OZMST,
    OzdstPrivateKey,
    OzdstPublicKey,
    OzdstSigner,
    certificate_public_key,
    load_pkcs8,
    paramset_for,
    parse_spki,
)
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.dev.ozdst_ca import OzdstCa, ensure_ozdst_ca, issue_certificate
from eimzo_agent.keys import pkcs12 as store
from eimzo_agent.keys.alias import build_alias
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pkcs12 import bags, change_pfx_password, list_aliases, open_pfx, parse_pfx, serialize_pfx
from eimzo_agent.keys.pkcs12.bags import (
    build_attributes,
    data_content,
    encrypted_content,
    pfx_of,
    shrouded_key_bag,
)
from eimzo_agent.keys.pkcs12.mac import mac_data
from eimzo_agent.keys.pkcs12.ozdst_backend import OzdstBackend
from eimzo_agent.keys.pkcs12.ozdst_writer import serialize_ozdst_pfx
from eimzo_agent.keys.pkcs12.pbe import PbeScheme

PASSWORD = "Parol-123-Test"
KAT_PATH = Path(__file__).resolve().parent / "data" / "eimzo-kat.json"
OPENSSL = shutil.which("openssl")

# E-IMZO's AlgorithmIdentifiers, byte for byte (the national root certificate carries the signature one).
SIGNATURE_ALGORITHM_DER = bytes.fromhex("300f060b2a865c030f0101020202020500")
DIGEST_ALGORITHM_DER = bytes.fromhex("300e060a2a865c030f01030201010500")

# gostcrypto's names for CryptoPro A/B/C (RFC 4357) = tc26 256-bit paramSets B/C/D.
GOSTCRYPTO_CURVES = {
    ozdst.CRYPTOPRO_A.name: "id-tc26-gost-3410-2012-256-paramSetB",
    ozdst.CRYPTOPRO_B.name: "id-tc26-gost-3410-2012-256-paramSetC",
    ozdst.CRYPTOPRO_C.name: "id-tc26-gost-3410-2012-256-paramSetD",
}

SUBJECT = SubjectFields(cn="RAHIMOV JASUR", name="JASUR", surname="RAHIMOV", pinfl="31505901234567",
                        tin="512398765", locality="Yunusobod", region="Toshkent")


def gostcrypto_verify(curve: ozdst.Curve, point: tuple[int, int], digest: bytes, signature: bytes) -> bool:
    """Check an E-IMZO signature (s||r over a digest read little-endian) with gostcrypto's conventions."""
    verifier = gostsignature.new(gostsignature.MODE_256,
                                 gostsignature.CURVES_R_1323565_1_024_2019[GOSTCRYPTO_CURVES[curve.name]])
    public = point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")
    return verifier.verify(bytearray(public), bytearray(digest[::-1]), bytearray(signature[32:] + signature[:32]))


def kind_of(call, *args) -> KeyErrorKind:
    with pytest.raises(KeyStoreError) as caught:
        call(*args)
    return caught.value.kind


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> OzdstCa:
    return ensure_ozdst_ca(tmp_path_factory.mktemp("ca"))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def issue(ca: OzdstCa, key: OzdstPrivateKey, cn: str = "RAHIMOV JASUR") -> asn1_x509.Certificate:
    name = asn1_x509.Name.build({"common_name": cn, "country_name": "UZ"})
    return issue_certificate(ca, key.public_key(), name, now() - datetime.timedelta(minutes=1),
                             now() + datetime.timedelta(days=30))


@pytest.fixture(scope="module")
def key_a() -> OzdstPrivateKey:
    return OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A)


@pytest.fixture(scope="module")
def pfx_a(ca: OzdstCa, key_a: OzdstPrivateKey) -> tuple[bytes, asn1_x509.Certificate]:
    cert = issue(ca, key_a)
    return serialize_pfx(key_a, cert, [ca.certificate], PASSWORD, build_alias(cert)), cert


# --------------------------------------------------------------------------------------------- hand-built PFX


def gost_style_pkcs8(key: OzdstPrivateKey, private_key_octets: bytes) -> bytes:
    """PKCS#8 as "other Uzbek tools" write it: params SEQUENCE{paramset, digest paramset}, raw d."""
    # 1.2.643.2.2.30.1 = id-GostR3411-94-CryptoProParamSet, the digest paramset GOST tools put second.
    body = core.ObjectIdentifier(key.paramset_oid).dump() + core.ObjectIdentifier("1.2.643.2.2.30.1").dump()
    params_der = b"\x30" + bytes([len(body)]) + body
    algorithm = core.ObjectIdentifier(key.family.key_oid).dump() + params_der
    algorithm_der = b"\x30" + bytes([len(algorithm)]) + algorithm
    inner = core.Integer(0).dump() + algorithm_der + core.OctetString(private_key_octets).dump()
    return b"\x30" + bytes([len(inner)]) + inner


def assemble(bags: list[asn1_pkcs12.SafeBag], password: str = PASSWORD) -> bytes:
    """A PFX with one plain SafeContents and an HMAC-SHA1 MAC, for structures our writer refuses to make."""
    contents = asn1_pkcs12.SafeContents(bags).dump()
    auth_safe = asn1_pkcs12.AuthenticatedSafe([asn1_cms.ContentInfo({"content_type": "data", "content": contents})])
    auth_safe_der = auth_safe.dump()
    salt = b"0123456789abcdef0123"
    mac_key = store.pkcs12_kdf("sha1", store.bmp_passwords(password)[0], salt, 3, 2048, 20)
    return asn1_pkcs12.Pfx({
        "version": "v3",
        "auth_safe": {"content_type": "data", "content": auth_safe_der},
        "mac_data": {"mac": {"digest_algorithm": {"algorithm": "sha1"},
                             "digest": hmac.new(mac_key, auth_safe_der, "sha1").digest()},
                     "mac_salt": salt, "iterations": 2048},
    }).dump()


def attributes(name: str | None, key_id: bytes | None) -> dict:
    values = []
    if name is not None:
        values.append({"type": "friendly_name", "values": [name]})
    if key_id is not None:
        values.append({"type": "local_key_id", "values": [key_id]})
    return {"bag_attributes": values} if values else {}


def key_bag(pkcs8: bytes, name: str | None = None, key_id: bytes | None = None) -> asn1_pkcs12.SafeBag:
    value = asn1_keys.PrivateKeyInfo.load(pkcs8)  # never parsed further: asn1crypto does not know the OIDs
    return asn1_pkcs12.SafeBag({"bag_id": "key_bag", "bag_value": value, **attributes(name, key_id)})


def cert_bag(cert: asn1_x509.Certificate, key_id: bytes | None = None) -> asn1_pkcs12.SafeBag:
    value = {"cert_id": "x509", "cert_value": cert}
    return asn1_pkcs12.SafeBag({"bag_id": "cert_bag", "bag_value": value, **attributes(None, key_id)})


# --------------------------------------------------------------------------------------------- encodings


def test_real_eimzo_spki_parses_and_re_encodes_byte_for_byte() -> None:
    kat = json.loads(KAT_PATH.read_text())["cms_signature_kat"]
    spki = base64.b64decode(kat["signer_spki_base64"])
    public = parse_spki(spki)
    assert public.family is OZDST
    assert public.curve == ozdst.CRYPTOPRO_A
    assert public.paramset_oid == "1.2.860.3.15.1.1.2.1.1"
    assert public.spki_der() == spki
    signed_attrs = bytes.fromhex(kat["signed_attrs_der_hex"])
    assert public.verify(signed_attrs, bytes.fromhex(kat["signature_hex"]))
    assert not public.verify(signed_attrs + b"\x00", bytes.fromhex(kat["signature_hex"]))


def test_national_root_certificate_key() -> None:
    der = base64.b64decode(json.loads(KAT_PATH.read_text())["national_root_certificate"]["der_base64"])
    cert = asn1_x509.Certificate.load(der)
    public = certificate_public_key(cert)
    assert public.curve == ozdst.CRYPTOPRO_A
    assert cert["signature_algorithm"].dump() == SIGNATURE_ALGORITHM_DER
    assert public.verify(cert["tbs_certificate"].dump(), cert["signature_value"].native)


def test_both_pkcs8_encodings_parse_to_the_same_key(key_a: OzdstPrivateKey) -> None:
    eimzo = key_a.pkcs8_der()
    # (a) E-IMZO / BouncyCastle layout, field by field.
    info = core.Sequence.load(eimzo)
    assert info[0].native == 0
    assert info[1][0].dotted == OZDST.key_oid and info[1][1].dotted == "1.2.860.3.15.1.1.2.1.1"  # bare OID
    paramset = core.ObjectIdentifier("1.2.860.3.15.1.1.2.1.1").dump()
    assert info[2].native == (  # SEC1 ECPrivateKey{1, d big-endian, [0] paramset, [1] BIT STRING{OCTET STRING}}
        bytes.fromhex("307a020101" "0420") + key_a.d.to_bytes(32, "big") + b"\xa0\x0c" + paramset
        + bytes.fromhex("a145" "034300" "0440") + ozdst.encode_public_key(*key_a.public_point)
    )

    public = key_a.public_key()
    little_endian = key_a.d.to_bytes(32, "little")
    variants = {
        "raw": gost_style_pkcs8(key_a, little_endian),
        "octet string": gost_style_pkcs8(key_a, core.OctetString(little_endian).dump()),
        "integer": gost_style_pkcs8(key_a, core.Integer(key_a.d).dump()),
    }
    assert load_pkcs8(eimzo) == key_a  # the curve from the point stored beside d
    for label, der in variants.items():
        parsed = load_pkcs8(der, public)  # no point in the file: the certificate's tells the curve
        assert (parsed.d, parsed.curve, parsed.family) == (key_a.d, key_a.curve, key_a.family), label
        with pytest.raises(ValueError, match="no public key"):
            load_pkcs8(der)


def test_pkcs8_whose_stored_point_is_not_its_own_is_refused(key_a: OzdstPrivateKey) -> None:
    other = OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A)
    forged = key_a.pkcs8_der().replace(ozdst.encode_public_key(*key_a.public_point),
                                       ozdst.encode_public_key(*other.public_point))
    with pytest.raises(ValueError, match="does not match"):
        load_pkcs8(forged)


@pytest.mark.parametrize("curve", [ozdst.CRYPTOPRO_A, ozdst.CRYPTOPRO_B, ozdst.CRYPTOPRO_C], ids=lambda c: c.name)
def test_curve_is_picked_by_the_point_not_the_paramset(curve: ozdst.Curve) -> None:
    key = OzdstPrivateKey.generate(curve)
    assert parse_spki(key.public_key().spki_der()).curve == curve
    for misleading in ("1.2.860.3.15.1.1.2.1.1", "1.2.860.3.15.1.1.2.1.2", "1.2.860.3.15.1.1.2.1.3"):
        spki = OzdstPublicKey(OZDST, misleading, curve, key.public_point).spki_der()
        parsed = parse_spki(spki)
        assert parsed.curve == curve and parsed.paramset_oid == misleading
    assert load_pkcs8(key.pkcs8_der()).curve == curve


def test_point_on_no_known_curve_is_refused(key_a: OzdstPrivateKey) -> None:
    x, y = key_a.public_point
    spki = OzdstPublicKey(OZDST, paramset_for(ozdst.CRYPTOPRO_A), ozdst.CRYPTOPRO_A, (x, y ^ 1)).spki_der()
    with pytest.raises(ValueError, match="none of the curves"):
        parse_spki(spki)


def test_spki_layout_and_private_key_not_in_repr(key_a: OzdstPrivateKey) -> None:
    spki = core.Sequence.load(key_a.public_key().spki_der())
    assert spki[0][0].dotted == OZDST.key_oid
    params = spki[0][1]
    assert isinstance(params, core.Sequence) and len(params) == 1 and params[0].dotted == "1.2.860.3.15.1.1.2.1.1"
    assert spki[1].contents[1:] == core.OctetString(ozdst.encode_public_key(*key_a.public_point)).dump()
    assert str(key_a.d) not in repr(key_a) and format(key_a.d, "x") not in repr(key_a)


# --------------------------------------------------------------------------------------------- signer


@pytest.mark.parametrize("curve", [ozdst.CRYPTOPRO_A, ozdst.CRYPTOPRO_B, ozdst.CRYPTOPRO_C], ids=lambda c: c.name)
def test_signer_signatures_verify_with_gostcrypto(ca: OzdstCa, curve: ozdst.Curve) -> None:
    key = OzdstPrivateKey.generate(curve)
    signer = OzdstSigner(key, issue(ca, key), [ca.certificate])
    assert signer.matches_certificate()
    assert signer.cms_profile == "eimzo"
    assert signer.digest_algorithm.dump() == DIGEST_ALGORITHM_DER
    assert signer.signature_algorithm.dump() == SIGNATURE_ALGORITHM_DER
    message = b"signed attributes, more or less"
    signature = signer.sign(message)
    assert len(signature) == 64
    digest = gost94_digest(message)
    assert signer.digest(message) == digest
    assert gostcrypto_verify(curve, key.public_point, digest, signature)
    assert not gostcrypto_verify(curve, key.public_point, gost94_digest(message + b"!"), signature)


def test_signer_knows_a_foreign_certificate(ca: OzdstCa, key_a: OzdstPrivateKey) -> None:
    other = OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A)
    assert not OzdstSigner(key_a, issue(ca, other)).matches_certificate()
    assert not OzdstSigner(key_a, ca.certificate).matches_certificate()


def test_ozmst_keys_sign_with_ozmst_identifiers(ca: OzdstCa) -> None:
    key = OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A, OZMST)
    cert = issue(ca, key)
    assert certificate_public_key(cert).family is OZMST
    opened = open_pfx(serialize_pfx(key, cert, [ca.certificate], PASSWORD, "ozmst"), PASSWORD)
    assert opened.signer.digest_algorithm["algorithm"].dotted == "1.2.860.3.15.2.3.2.1.1"
    assert opened.signer.signature_algorithm["algorithm"].dotted == "1.2.860.3.15.2.1.2.2.2.2"
    signature = opened.signer.sign(b"x")
    assert gostcrypto_verify(ozdst.CRYPTOPRO_A, key.public_point, gost94_digest(b"x"), signature)


def test_cms_has_eimzo_layout(pfx_a: tuple[bytes, asn1_x509.Certificate], ca: OzdstCa) -> None:
    data, cert = pfx_a
    signer = open_pfx(data, PASSWORD).signer
    content = b"some document"
    result = create_pkcs7(content, signer, detached=False, signed_attributes=signer.cms_profile)
    signed_data = asn1_cms.ContentInfo.load(result.cms_der)["content"]
    assert [a.dump() for a in signed_data["digest_algorithms"]] == [DIGEST_ALGORITHM_DER]
    (info,) = signed_data["signer_infos"]
    assert info["version"].native == "v1" and info["sid"].name == "issuer_and_serial_number"
    assert info["digest_algorithm"].dump() == DIGEST_ALGORITHM_DER
    assert info["signature_algorithm"].dump() == SIGNATURE_ALGORITHM_DER
    assert [a["type"].native for a in info["signed_attrs"]] == ["content_type", "signing_time", "message_digest"]
    assert isinstance(info["unsigned_attrs"], core.Void)
    view = read_signed_data(result.cms_der).signers[0]
    assert view.message_digest == gost94_digest(content)
    signed = b"\x31" + info["signed_attrs"].dump()[1:]
    public = certificate_public_key(cert)
    assert gostcrypto_verify(public.curve, public.point, gost94_digest(signed), info["signature"].native)
    assert [c.chosen.dump() for c in signed_data["certificates"]] == sorted([cert.dump(), ca.certificate.dump()])


# --------------------------------------------------------------------------------------------- .pfx files


def test_written_pfx_round_trip_and_layout(pfx_a: tuple[bytes, asn1_x509.Certificate], ca: OzdstCa,
                                           key_a: OzdstPrivateKey) -> None:
    data, cert = pfx_a
    alias = build_alias(cert)
    assert list_aliases(data) == [alias]  # no password needed

    opened = open_pfx(data, PASSWORD, alias)
    assert opened.alias == alias
    assert opened.certificate.dump() == cert.dump()
    assert [c.dump() for c in opened.chain] == [ca.certificate.dump()]
    assert isinstance(opened.signer, OzdstSigner)
    assert opened.signer.private_key == key_a
    assert [c.dump() for c in opened.signer.chain] == [ca.certificate.dump()]

    pfx = parse_pfx(data)
    assert pfx["version"].native == "v3"
    mac = pfx["mac_data"]
    assert mac["mac"]["digest_algorithm"]["algorithm"].native == "sha1" and mac["iterations"].native == 2048
    first, second = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
    assert first["content_type"].native == "data"
    (bag,) = asn1_pkcs12.SafeContents.load(first["content"].native)
    assert bag["bag_id"].native == "pkcs8_shrouded_key_bag"
    encryption = bag["bag_value"]["encryption_algorithm"]
    assert encryption["algorithm"].dotted == "1.2.840.113549.1.12.1.3"  # pbeWithSHAAnd3-KeyTripleDES-CBC
    assert encryption["parameters"]["iterations"].native == 2048
    names = {a["type"].native: a["values"][0].native for a in bag["bag_attributes"]}
    assert names == {"friendly_name": alias, "local_key_id": hashlib.sha1(cert.dump()).digest()}
    assert second["content_type"].native == "encrypted_data"
    cert_encryption = second["content"]["encrypted_content_info"]["content_encryption_algorithm"]
    assert cert_encryption["algorithm"].dotted == "1.2.840.113549.1.12.1.3"
    assert store.key_algorithms(pfx, PASSWORD)[0].oid == OZDST.key_oid


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_openssl_checks_mac_and_reads_the_certificates(pfx_a: tuple[bytes, asn1_x509.Certificate],
                                                        tmp_path: Path) -> None:
    data, cert = pfx_a
    path = tmp_path / "DS315059012345670001.pfx"
    path.write_bytes(data)
    result = subprocess.run([OPENSSL, "pkcs12", "-info", "-nokeys", "-in", str(path), "-passin", f"pass:{PASSWORD}"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = result.stdout + result.stderr
    assert "MAC: sha1, Iteration 2048" in report
    assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in report
    assert "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in report
    assert f"friendlyName: {build_alias(cert)}" in report
    printed = [pem.unarmor(block.encode() + b"-----END CERTIFICATE-----\n")[2]
               for block in result.stdout.split("-----END CERTIFICATE-----\n")[:-1]]
    assert cert.dump() in printed and len(printed) == 2
    wrong = subprocess.run([OPENSSL, "pkcs12", "-info", "-nokeys", "-in", str(path), "-passin", "pass:wrong"],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0 and "mac verify" in wrong.stderr.lower()


def test_wrong_password(pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    data, _ = pfx_a
    assert kind_of(open_pfx, data, "Parol-123-Tesx") is KeyErrorKind.WRONG_PASSWORD
    assert kind_of(open_pfx, data, "") is KeyErrorKind.WRONG_PASSWORD


def test_damaged_files(pfx_a: tuple[bytes, asn1_x509.Certificate], key_a: OzdstPrivateKey) -> None:
    data, cert = pfx_a
    assert kind_of(open_pfx, data[: len(data) // 2], PASSWORD) is KeyErrorKind.DAMAGED_FILE
    assert kind_of(list_aliases, data[:-40]) is KeyErrorKind.DAMAGED_FILE
    # The MAC is right, but the key inside is not a key.
    broken = gost_style_pkcs8(key_a, b"\x02\x00")  # INTEGER 0: out of range
    garbled = gost_style_pkcs8(key_a, b"\x13\x05hello")  # neither d nor a DER form of one
    for pkcs8 in (broken, garbled):
        file = assemble([key_bag(pkcs8, "k"), cert_bag(cert)])
        assert kind_of(open_pfx, file, PASSWORD) is KeyErrorKind.DAMAGED_FILE


def test_key_and_certificate_must_match(ca: OzdstCa, key_a: OzdstPrivateKey,
                                        pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    _, cert = pfx_a
    stranger = issue(ca, OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A), "BEGONA")
    pkcs8 = key_a.pkcs8_der()
    paired_wrong = assemble([key_bag(pkcs8, "k", b"1"), cert_bag(stranger, b"1"), cert_bag(cert)])
    assert kind_of(open_pfx, paired_wrong, PASSWORD) is KeyErrorKind.KEY_MISMATCH
    only_stranger = assemble([key_bag(pkcs8, "k"), cert_bag(stranger), cert_bag(ca.certificate)])
    assert kind_of(open_pfx, only_stranger, PASSWORD) is KeyErrorKind.KEY_MISMATCH
    with pytest.raises(KeyStoreError) as caught:
        serialize_pfx(key_a, stranger, [], PASSWORD, "x")
    assert caught.value.kind is KeyErrorKind.KEY_MISMATCH


def test_certificate_found_by_public_key_and_gost_style_key(ca: OzdstCa, key_a: OzdstPrivateKey,
                                                            pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    _, cert = pfx_a
    stranger = issue(ca, OzdstPrivateKey.generate(ozdst.CRYPTOPRO_C), "BEGONA")
    gost_style = gost_style_pkcs8(key_a, key_a.d.to_bytes(32, "little"))
    # No localKeyId and no friendlyName: the certificate is the one whose point is d·G; alias from it.
    file = assemble([cert_bag(stranger), cert_bag(ca.certificate), key_bag(gost_style), cert_bag(cert)])
    assert list_aliases(file) == [""]  # two end entities: nothing tells list_aliases which one (as for RSA)
    opened = open_pfx(file, PASSWORD)
    assert opened.certificate.dump() == cert.dump()
    assert opened.alias == build_alias(cert)
    assert opened.chain[0].dump() == ca.certificate.dump()
    assert opened.signer.private_key.d == key_a.d


def test_change_password(pfx_a: tuple[bytes, asn1_x509.Certificate], key_a: OzdstPrivateKey) -> None:
    data, cert = pfx_a
    rewritten = change_pfx_password(data, PASSWORD, "Yangi-Parol-456")
    assert list_aliases(rewritten) == list_aliases(data)
    assert kind_of(open_pfx, rewritten, PASSWORD) is KeyErrorKind.WRONG_PASSWORD
    opened = open_pfx(rewritten, "Yangi-Parol-456")
    assert opened.signer.private_key == key_a
    assert opened.certificate.dump() == cert.dump()
    assert kind_of(change_pfx_password, data, "wrong", "x") is KeyErrorKind.WRONG_PASSWORD


def test_change_password_keeps_the_ozdst_layout(pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    data, _ = pfx_a
    rewritten = change_pfx_password(data, PASSWORD, "Yangi-Parol-456")
    assert protection(rewritten) == protection(data) == {
        "mac": ("sha1", 2048), "keys": [("pkcs12_sha1_tripledes_3key", 2048)],
        "containers": [("pkcs12_sha1_tripledes_3key", 2048)],
    }
    assert key_bag_attributes(rewritten) == key_bag_attributes(data)
    assert certificate_bags(rewritten, "Yangi-Parol-456") == certificate_bags(data, PASSWORD)


def test_change_password_copies_certificate_bags_beside_the_key_as_they_are(
        ca: OzdstCa, key_a: OzdstPrivateKey, pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    """Regression: a certificate bag in the key's own SafeContents (other tools' layout) whose length ends in 0x80
    was re-encoded by asn1crypto on rewriting, which parses the certificate and fails on the O'zDSt key."""
    _, cert = pfx_a
    # A friendlyName and localKeyId of the lengths that make the bag's length octets end in 0x80.
    candidates = (build_attributes("k" * n, b"k" * m) for m in (1, 2) for n in range(1, 200))
    attributes, cert_bag = next((a, bag) for a in candidates
                                if (bag := bags.cert_bag(cert.dump(), a))[1] == 0x82 and bag[3] == 0x80)
    scheme = PbeScheme("1.2.840.113549.1.5.13", 2048, 16, "1.2.840.113549.2.9", "2.16.840.1.101.3.4.1.42")
    plain = bags.safe_contents([shrouded_key_bag(key_a.pkcs8_der(), PASSWORD, scheme, attributes), cert_bag,
                                bags.cert_bag(ca.certificate.dump(), None)])
    auth_safe = asn1_pkcs12.AuthenticatedSafe([data_content(plain)]).dump()
    data = pfx_of(auth_safe, mac_data(auth_safe, PASSWORD, "sha256", 2048, 16))
    assert open_pfx(data, PASSWORD).signer.private_key == key_a

    rewritten = change_pfx_password(data, PASSWORD, "Yangi-Parol-456")
    assert cert_bag in rewritten  # copied byte for byte (the container is not encrypted)
    opened = open_pfx(rewritten, "Yangi-Parol-456")
    assert opened.signer.private_key == key_a and opened.certificate.dump() == cert.dump()
    assert kind_of(open_pfx, rewritten, PASSWORD) is KeyErrorKind.WRONG_PASSWORD


def test_change_password_keeps_a_modern_ozdst_files_scheme_and_name(
        ca: OzdstCa, key_a: OzdstPrivateKey, pfx_a: tuple[bytes, asn1_x509.Certificate]) -> None:
    """Regression: O'zDSt files were rewritten as 3DES / SHA-1 / 2048 with the friendlyName lower-cased."""
    _, cert = pfx_a
    scheme = PbeScheme("1.2.840.113549.1.5.13", 5000, 16, "1.2.840.113549.2.11", "2.16.840.1.101.3.4.1.42")
    attributes = build_attributes("Mixed Case Name", b"key-1")
    key_bag = shrouded_key_bag(key_a.pkcs8_der(), PASSWORD, scheme, attributes)
    certs = bags.safe_contents([bags.cert_bag(cert.dump(), attributes), bags.cert_bag(ca.certificate.dump(), None)])
    auth_safe = asn1_pkcs12.AuthenticatedSafe([
        data_content(asn1_pkcs12.SafeContents([key_bag]).dump()),
        encrypted_content(certs, PASSWORD, scheme),
    ]).dump()
    data = pfx_of(auth_safe, mac_data(auth_safe, PASSWORD, "sha512", 5000, 16))
    expected = {"mac": ("sha512", 5000), "keys": [("pbes2", "sha512", "aes256_cbc", 5000)],
                "containers": [("pbes2", "sha512", "aes256_cbc", 5000)]}
    assert protection(data) == expected
    assert open_pfx(data, PASSWORD, "mixed case name").signer.private_key == key_a

    rewritten = change_pfx_password(data, PASSWORD, "Yangi-Parol-456", "MIXED CASE NAME")
    assert protection(rewritten) == expected
    assert key_bag_attributes(rewritten) == key_bag_attributes(data)
    assert certificate_bags(rewritten, "Yangi-Parol-456") == certificate_bags(data, PASSWORD)
    opened = open_pfx(rewritten, "Yangi-Parol-456", "mixed case name")
    assert opened.signer.private_key == key_a and opened.certificate.dump() == cert.dump()
    assert kind_of(open_pfx, rewritten, PASSWORD) is KeyErrorKind.WRONG_PASSWORD


def test_writer_refuses_empty_password(pfx_a: tuple[bytes, asn1_x509.Certificate], key_a: OzdstPrivateKey) -> None:
    _, cert = pfx_a
    with pytest.raises(ValueError, match="non-empty password"):
        serialize_ozdst_pfx(key_a, cert.dump(), [], "", "alias")


def test_backend_leaves_other_keys_alone(tmp_path: Path) -> None:
    dev_ca = ensure_dev_ca(tmp_path / "ca")
    path = mint_key(dev_ca, tmp_path / "keys", password=PASSWORD, subject=SUBJECT, alg="p256")
    data = path.read_bytes()
    assert OzdstBackend().open(data, PASSWORD) is None
    assert isinstance(open_pfx(data, PASSWORD).signer.private_key, ec.EllipticCurvePrivateKey)
    names = [backend.name for backend in store.registered_backends()]
    assert names.index("cryptography") < names.index("ozdst")


# --------------------------------------------------------------------------------------------- dev CA, mint


def test_dev_ozdst_ca_files_and_self_signature(tmp_path: Path) -> None:
    created = ensure_ozdst_ca(tmp_path / "ca")
    folder = tmp_path / "ca" / "ozdst"
    assert created.directory == folder and mode(folder) == 0o700
    assert mode(folder / "ca.crt.pem") == 0o600 and mode(folder / "ca.key.pem") == 0o600

    cert = created.certificate
    assert cert.subject.native == {"common_name": "eimzo-agent dev O'zDSt CA"}
    assert cert.self_signed == "maybe"  # asn1crypto cannot check the national algorithm itself
    assert cert["signature_algorithm"].dump() == SIGNATURE_ALGORITHM_DER
    assert cert["tbs_certificate"]["signature"].dump() == SIGNATURE_ALGORITHM_DER
    public = certificate_public_key(cert)
    assert public.curve == ozdst.CRYPTOPRO_A
    tbs_digest = gost94_digest(cert["tbs_certificate"].dump())
    signature = cert["signature_value"].native
    assert ozdst.verify_digest(public.curve, public.point, tbs_digest, signature)
    assert gostcrypto_verify(public.curve, public.point, tbs_digest, signature)
    assert cert.ca and cert.max_path_length == 0
    assert cert.basic_constraints_value and cert.critical_extensions >= {"basic_constraints", "key_usage"}
    assert cert.key_usage_value.native == {"key_cert_sign", "crl_sign"}
    assert cert.key_identifier == hashlib.sha1(public.subject_public_key()).digest()

    kind, _, der = pem.unarmor((folder / "ca.key.pem").read_bytes())
    assert kind == "PRIVATE KEY"
    assert load_pkcs8(der) == created.private_key
    reloaded = ensure_ozdst_ca(tmp_path / "ca")
    assert reloaded.certificate.dump() == cert.dump() and reloaded.private_key == created.private_key
    # cryptography (what the rest of the agent uses for X.509) reads it, though it cannot use the key.
    assert x509.load_der_x509_certificate(cert.dump()).subject.rfc4514_string() == "CN=eimzo-agent dev O'zDSt CA"


def test_dev_ozdst_ca_refuses_half_a_ca_and_a_foreign_key(tmp_path: Path) -> None:
    ensure_ozdst_ca(tmp_path / "a")
    ensure_ozdst_ca(tmp_path / "b")
    key_b = tmp_path / "b" / "ozdst" / "ca.key.pem"
    key_b.write_bytes((tmp_path / "a" / "ozdst" / "ca.key.pem").read_bytes())
    assert kind_of(ensure_ozdst_ca, tmp_path / "b") is KeyErrorKind.KEY_MISMATCH
    key_b.unlink()
    assert kind_of(ensure_ozdst_ca, tmp_path / "b") is KeyErrorKind.FILE_NOT_FOUND
    (tmp_path / "a" / "ozdst" / "ca.crt.pem").write_text("not a certificate")
    assert kind_of(ensure_ozdst_ca, tmp_path / "a") is KeyErrorKind.DAMAGED_FILE


def test_mint_ozdst_key_matches_the_rsa_layout(tmp_path: Path) -> None:
    dev_ca = ensure_dev_ca(tmp_path / "ca")
    out = tmp_path / "media" / "DSKEYS"
    path = mint_key(dev_ca, out, password=PASSWORD, subject=SUBJECT, alg="ozdst")
    assert path == out / "DS315059012345670001.pfx" and mode(path) == 0o600
    rsa_path = mint_key(dev_ca, out, password=PASSWORD, subject=SUBJECT, alg="rsa2048")
    assert rsa_path.name == "DS315059012345670002.pfx"

    opened = open_pfx(path.read_bytes(), PASSWORD)
    rsa_cert = open_pfx(rsa_path.read_bytes(), PASSWORD).certificate
    cert = opened.certificate
    assert list_aliases(path.read_bytes()) == [build_alias(cert)] == [opened.alias]
    assert "serialnumber=" in opened.alias and "validfrom=" in opened.alias and "validto=" in opened.alias
    assert opened.alias.startswith("cn=rahimov jasur,name=jasur,surname=rahimov,l=yunusobod,st=toshkent,c=uz,")
    assert cert.subject.dump() == rsa_cert.subject.dump()
    assert cert["tbs_certificate"]["version"].native == "v3"

    def extensions(c: asn1_x509.Certificate) -> list[tuple[str, bool]]:
        return sorted((e["extn_id"].native, e["critical"].native) for e in c["tbs_certificate"]["extensions"])

    assert extensions(cert) == extensions(rsa_cert)
    assert cert.key_usage_value.native == rsa_cert.key_usage_value.native
    ozdst_ca = ensure_ozdst_ca(dev_ca.directory)
    assert [c.dump() for c in opened.chain] == [ozdst_ca.certificate.dump()]
    assert cert.issuer.dump() == ozdst_ca.certificate.subject.dump()
    assert cert.authority_key_identifier == ozdst_ca.certificate.key_identifier
    ca_public = certificate_public_key(ozdst_ca.certificate)
    assert gostcrypto_verify(ca_public.curve, ca_public.point, gost94_digest(cert["tbs_certificate"].dump()),
                             cert["signature_value"].native)
    assert isinstance(opened.signer, OzdstSigner) and opened.signer.private_key.curve == ozdst.CRYPTOPRO_A


def test_cli_mints_ozdst(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eimzo_agent.cli import main

    code = main(["dev", "mint-key", "--alg", "ozdst", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "k"),
                 "--password", PASSWORD, "--cn", "SAIDOV BOBUR", "--tin", "498765432"])
    assert code == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "DS4987654320001.pfx"
    assert store.key_algorithms(parse_pfx(path.read_bytes()), PASSWORD)[0].oid == OZDST.key_oid
    assert (tmp_path / "ca" / "ozdst" / "ca.crt.pem").is_file()



def test_certificate_bags_whose_length_ends_in_0x80_are_written(ca: OzdstCa, key_a: OzdstPrivateKey) -> None:
    """Regression: asn1crypto re-encodes a value whose length octets end in 0x80 (it reads an indefinite length)
    and then fails on the O'zDSt key inside the certificate: minting failed for some names and serials at random.
    A friendlyName is grown until the certificate bag's length is 0x..80; the file must be written and open."""
    cert = issue(ca, key_a, "TEST OZDST")
    for pad in range(200):
        alias = "a" * pad
        # the attributes serialize_pfx gives the end-entity bag: friendlyName and localKeyId = SHA-1 of the cert
        bag = bags.cert_bag(cert.dump(), build_attributes(alias, hashlib.sha1(cert.dump()).digest()))
        if bag[3] == 0x80:  # 30 82 LL 80: the two-octet length ends in 0x80
            break
    else:
        raise AssertionError("no alias length gives a bag length ending in 0x80")
    data = serialize_pfx(key_a, cert, [ca.certificate], PASSWORD, alias)
    assert open_pfx(data, PASSWORD).certificate.dump() == cert.dump()
