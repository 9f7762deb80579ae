"""Development CA and test keys: real files, checked by our reader, cryptography and the OpenSSL CLI."""

from __future__ import annotations

import datetime
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from eimzo_agent.dev.mint import DevCa, SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.keys.alias import build_alias, owner_from_alias
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pkcs12 import list_aliases, open_pfx

PASSWORD = "Test-Pass123"
OPENSSL = shutil.which("openssl")

EMPLOYEE = SubjectFields(
    cn="Valiyev Ali", name="Ali", surname="Valiyev", pinfl="31329645500012", tin="313296455",
    org="OOO \"Test, Co\"", org_tin="242141224", title="Direktor", locality="Chilonzor", region="Toshkent",
    business_category="Masʼuliyati cheklangan jamiyat",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> DevCa:
    return ensure_dev_ca(tmp_path / "ca")


def test_ensure_dev_ca_creates_then_reloads(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    created = ensure_dev_ca(folder)
    assert mode(folder) == 0o700
    assert mode(folder / "ca.crt.pem") == 0o600
    assert mode(folder / "ca.key.pem") == 0o600
    assert created.cert_pem_path == folder / "ca.crt.pem"

    cert = created.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "eimzo-agent dev CA"
    assert isinstance(created.private_key, ec.EllipticCurvePrivateKey)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > datetime.timedelta(days=3650 - 2)
    cert.verify_directly_issued_by(cert)

    reloaded = ensure_dev_ca(folder)
    assert reloaded.certificate == cert
    assert reloaded.private_key.private_numbers() == created.private_key.private_numbers()


def test_ensure_dev_ca_refuses_half_a_ca(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ensure_dev_ca(folder)
    (folder / "ca.key.pem").unlink()
    with pytest.raises(KeyStoreError) as caught:
        ensure_dev_ca(folder)
    assert caught.value.kind is KeyErrorKind.FILE_NOT_FOUND


@pytest.mark.parametrize("alg", ["rsa2048", "p256"])
def test_mint_key_produces_a_usable_file(ca: DevCa, tmp_path: Path, alg: str) -> None:
    out = tmp_path / "media" / "DSKEYS"
    path = mint_key(ca, out, password=PASSWORD, subject=EMPLOYEE, alg=alg)
    assert path == out / "DS313296455000120001.pfx"
    assert mode(path) == 0o600
    data = path.read_bytes()

    unlocked = open_pfx(data, PASSWORD)
    cert = x509.load_der_x509_certificate(unlocked.certificate.dump())
    cert.verify_directly_issued_by(ca.certificate)
    assert [c.dump() for c in unlocked.chain] == [ca.certificate.public_bytes(serialization.Encoding.DER)]
    assert unlocked.alias == build_alias(unlocked.certificate)
    assert list_aliases(data) == [unlocked.alias]

    expected_key = rsa.RSAPublicKey if alg == "rsa2048" else ec.EllipticCurvePublicKey
    assert isinstance(cert.public_key(), expected_key)
    message = b"to be signed"
    signature = unlocked.signer.sign(message)
    if alg == "rsa2048":
        cert.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        cert.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_minted_certificate_looks_like_e_imzo(ca: DevCa, tmp_path: Path) -> None:
    path = mint_key(ca, tmp_path / "keys", password=PASSWORD, subject=EMPLOYEE, alg="p256")
    unlocked = open_pfx(path.read_bytes(), PASSWORD)
    cert = x509.load_der_x509_certificate(unlocked.certificate.dump())
    assert [attr.oid.dotted_string for attr in cert.subject] == [
        "2.5.4.3", "2.5.4.42", "2.5.4.4", "2.5.4.7", "2.5.4.8", "2.5.4.6", "2.5.4.10", "2.5.4.12",
        "0.9.2342.19200300.100.1.1", "1.2.860.3.16.1.2", "1.2.860.3.16.1.1", "2.5.4.15",
    ]
    pinfl = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)).subject.chosen[9][0]
    assert pinfl["value"].parse().__class__.__name__ == "UTF8String"
    assert cert.serial_number > 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=729) < lifetime < datetime.timedelta(days=732)

    owner = owner_from_alias(unlocked.alias)
    assert (owner.pinfl, owner.tin, owner.org_tin, owner.org) == ("31329645500012", "313296455", "242141224",
                                                                  'ooo "test, co"')
    assert owner.is_legal_entity


def test_default_names_count_up_and_prefer_pinfl(ca: DevCa, tmp_path: Path) -> None:
    out = tmp_path / "keys"
    person = SubjectFields(cn="A", pinfl="12345678901234", tin="123456789")
    names = [mint_key(ca, out, password=PASSWORD, subject=person, alg="p256").name for _ in range(2)]
    assert names == ["DS123456789012340001.pfx", "DS123456789012340002.pfx"]
    (out / "DS123456789012340001.pfx").unlink()  # the first free number is reused
    assert mint_key(ca, out, password=PASSWORD, subject=person, alg="p256").name == "DS123456789012340001.pfx"
    (out / "ds1234567890003.PFX").write_bytes(b"")  # taken, whatever the letter case
    by_tin = [
        mint_key(ca, out, password=PASSWORD, subject=SubjectFields(cn="B", tin="123456789"), alg="p256").name
        for _ in range(2)
    ]
    assert by_tin == ["DS1234567890001.pfx", "DS1234567890002.pfx"]
    org = SubjectFields(cn="C", org="Org", org_tin="987654321")
    assert mint_key(ca, out, password=PASSWORD, subject=org, alg="p256").name == "DS9876543210001.pfx"
    nobody = mint_key(ca, out, password=PASSWORD, subject=SubjectFields(cn="D"), alg="p256")
    assert nobody.name == "DSKEY0001.pfx"


def test_mint_refuses_to_overwrite(ca: DevCa, tmp_path: Path) -> None:
    out = tmp_path / "keys"
    first = mint_key(ca, out, password=PASSWORD, subject=SubjectFields(cn="A"), alg="p256", file_name="MYKEY")
    assert first == out / "MYKEY.pfx"
    before = first.read_bytes()
    with pytest.raises(KeyStoreError) as caught:
        mint_key(ca, out, password=PASSWORD, subject=SubjectFields(cn="B"), alg="p256", file_name="MYKEY.pfx")
    assert caught.value.kind is KeyErrorKind.FILE_EXISTS
    assert first.read_bytes() == before


def test_custom_validity(ca: DevCa, tmp_path: Path) -> None:
    start = datetime.datetime(2024, 1, 1, 9, 0, tzinfo=datetime.UTC)
    end = datetime.datetime(2024, 12, 31, 18, 59, 59, tzinfo=datetime.UTC)
    path = mint_key(ca, tmp_path / "k", password=PASSWORD, subject=SubjectFields(cn="Old"), alg="p256",
                    valid_from=start, valid_to=end)
    cert = x509.load_der_x509_certificate(open_pfx(path.read_bytes(), PASSWORD).certificate.dump())
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)


@pytest.mark.parametrize(("changes", "message"), [
    ({"subject": SubjectFields(cn="A", pinfl="123")}, "PINFL must be exactly 14 digits"),
    ({"subject": SubjectFields(cn="A", tin="12345678a")}, "TIN must be exactly 9 digits"),
    ({"subject": SubjectFields(cn="A", org_tin="1234567890")}, "organisation TIN must be exactly 9 digits"),
    # Arabic-Indic digits match \d but are no PINFL.
    ({"subject": SubjectFields(cn="A", pinfl="١٢٣٤٥٦٧٨٩٠١٢٣٤")}, "PINFL"),
    ({"subject": SubjectFields(cn="  ")}, "common name"),
    ({"subject": SubjectFields(cn="A", country="UZB")}, "country"),
    ({"file_name": "../evil"}, "file name"),
    ({"file_name": ""}, "file name"),
    ({"alg": "dsa"}, "unknown key algorithm"),
    ({"password": ""}, "password"),
    ({"valid_from": datetime.datetime(2030, 1, 1), "valid_to": datetime.datetime(2029, 1, 1)}, "valid_to"),
])
def test_mint_validates_input(ca: DevCa, tmp_path: Path, changes: dict, message: str) -> None:
    arguments = {"password": PASSWORD, "subject": SubjectFields(cn="A"), "alg": "p256"} | changes
    with pytest.raises(ValueError, match=message):
        mint_key(ca, tmp_path / "keys", **arguments)
    assert not (tmp_path / "keys").exists()


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_openssl_reads_minted_file(ca: DevCa, tmp_path: Path) -> None:
    path = mint_key(ca, tmp_path / "keys", password=PASSWORD, subject=EMPLOYEE, alg="rsa2048")
    certs = subprocess.run(
        [OPENSSL, "pkcs12", "-in", str(path), "-nokeys", "-passin", f"pass:{PASSWORD}"],
        check=True, capture_output=True,
    ).stdout.decode("utf-8", "replace")  # OpenSSL prints subject bytes in its own escaping
    assert certs.count("BEGIN CERTIFICATE") == 2
    assert "eimzo-agent dev CA" in certs
    result = subprocess.run(
        [OPENSSL, "pkcs12", "-in", str(path), "-info", "-noout", "-passin", f"pass:{PASSWORD}"],
        check=True, capture_output=True,
    )
    info = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert "MAC: sha1" in info
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info
    # And the key really decrypts with that password (not only the certificates).
    subprocess.run(
        [OPENSSL, "pkcs12", "-in", str(path), "-nocerts", "-nodes", "-passin", f"pass:{PASSWORD}"],
        check=True, capture_output=True,
    )
