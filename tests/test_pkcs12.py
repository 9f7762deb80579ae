"""PKCS#12 key files: real files from cryptography and the OpenSSL CLI, precise error kinds."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, keys
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pfx_inspect import certificate_bags, key_bag_attributes, protection

from eimzo_agent.crypto.signer import CryptographySigner
from eimzo_agent.keys import pkcs12 as store
from eimzo_agent.keys.alias import build_alias
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pkcs12 import (
    UnlockedKey,
    change_pfx_password,
    list_aliases,
    open_pfx,
    parse_pfx,
    register_backend,
    serialize_pfx,
    unregister_backend,
)
from eimzo_agent.keys.pkcs12 import rc2 as rc2_module

PASSWORD = "Secret-Pass123"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")

_NOW = datetime.datetime.now(datetime.UTC)


def make_cert(key, cn: str, *, issuer_key=None, issuer_name: x509.Name | None = None) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.COUNTRY_NAME, "UZ")
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=1))
        .not_valid_after(_NOW + datetime.timedelta(days=30))
        .sign(issuer_key or key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_cert(key, "Test Root")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(ca, key, cn: str = "Ali Valiyev") -> x509.Certificate:
    ca_key, ca_cert = ca
    return make_cert(key, cn, issuer_key=ca_key, issuer_name=ca_cert.subject)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def verify_signature(cert: asn1_x509.Certificate, signature: bytes, message: bytes) -> None:
    public_key = x509.load_der_x509_certificate(cert.dump()).public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def kind_of(call, *args) -> KeyErrorKind:
    with pytest.raises(KeyStoreError) as caught:
        call(*args)
    return caught.value.kind


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_round_trip(alg: str, ca, rsa_key) -> None:
    key = rsa_key if alg == "rsa" else ec.generate_private_key(ec.SECP256R1())
    cert = issue(ca, key)
    data = serialize_pfx(key, cert, [ca[1]], PASSWORD, "CN=Ali Valiyev,O=Test\\, LLC")

    assert list_aliases(data) == ["cn=ali valiyev,o=test\\, llc"]  # no password needed

    unlocked = open_pfx(data, PASSWORD, "cn=ali valiyev,o=test\\, llc")
    assert unlocked.alias == "cn=ali valiyev,o=test\\, llc"
    assert unlocked.certificate.dump() == der(cert)
    assert [c.dump() for c in unlocked.chain] == [der(ca[1])]
    signer = unlocked.signer
    assert isinstance(signer, CryptographySigner)
    assert [c.dump() for c in signer.chain] == [der(ca[1])]
    message = b"signed attributes"
    verify_signature(unlocked.certificate, signer.sign(message), message)
    assert signer.digest(b"x") == hashlib.sha256(b"x").digest()


def test_alias_lookup_ignores_case_and_defaults_to_the_only_key(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = serialize_pfx(key, issue(ca, key), [], PASSWORD, "My Key")
    assert open_pfx(data, PASSWORD, "MY KEY").alias == "my key"
    assert open_pfx(data, PASSWORD).alias == "my key"
    assert open_pfx(data, PASSWORD, "").alias == "my key"


def test_non_ascii_alias_and_password(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    alias = "cn=Тест Тестов,o=ООО «Ромашка»,businesscategory=masʼuliyati"
    data = serialize_pfx(key, issue(ca, key), [ca[1]], "Пароль-2024", alias)
    assert list_aliases(data) == [alias.lower()]
    assert open_pfx(data, "Пароль-2024").alias == alias.lower()
    assert kind_of(open_pfx, data, "Parol-2024") is KeyErrorKind.WRONG_PASSWORD


def test_serialize_writes_the_legacy_format(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pfx = parse_pfx(serialize_pfx(key, issue(ca, key), [ca[1]], PASSWORD, "a"))
    assert pfx["mac_data"]["mac"]["digest_algorithm"]["algorithm"].native == "sha1"
    schemes = set()
    for info in asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native):
        if info["content_type"].native == "encrypted_data":
            schemes.add(info["content"]["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native)
        else:
            for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
                schemes.add(bag["bag_value"]["encryption_algorithm"]["algorithm"].native)
    assert schemes == {"pkcs12_sha1_tripledes_3key"}


def test_serialize_refuses_a_foreign_certificate_and_empty_password(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    assert kind_of(serialize_pfx, key, issue(ca, other), [], PASSWORD, "a") is KeyErrorKind.KEY_MISMATCH
    with pytest.raises(ValueError, match="password"):
        serialize_pfx(key, issue(ca, key), [], "", "a")


# ---------------------------------------------------------------------------------------------- error kinds


@pytest.fixture(scope="module")
def sample_pfx(ca) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return serialize_pfx(key, issue(ca, key), [ca[1]], PASSWORD, "sample")


def test_wrong_password(sample_pfx: bytes) -> None:
    assert kind_of(open_pfx, sample_pfx, "wrong") is KeyErrorKind.WRONG_PASSWORD
    assert kind_of(open_pfx, sample_pfx, "") is KeyErrorKind.WRONG_PASSWORD


@pytest.mark.parametrize("mangle", [
    lambda d: b"",
    lambda d: b"garbage, not DER at all",
    lambda d: d[: len(d) // 2],
    lambda d: d[:-1],
    lambda d: d + b"\x00",
    lambda d: os.urandom(len(d)),
    lambda d: bytes.fromhex("3003020103"),  # SEQUENCE { INTEGER 3 }
    lambda d: core.OctetString(d).dump(),
])
def test_damaged_files(sample_pfx: bytes, mangle) -> None:
    data = mangle(sample_pfx)
    assert kind_of(list_aliases, data) is KeyErrorKind.DAMAGED_FILE
    assert kind_of(open_pfx, data, PASSWORD) is KeyErrorKind.DAMAGED_FILE


def test_a_certificate_is_not_a_key_file(ca) -> None:
    assert kind_of(list_aliases, der(ca[1])) is KeyErrorKind.DAMAGED_FILE


def test_alias_not_found(sample_pfx: bytes) -> None:
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(sample_pfx, PASSWORD, "someone else")
    assert caught.value.kind is KeyErrorKind.ALIAS_NOT_FOUND
    assert "someone else" in caught.value.detail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_corruption_only_ever_raises_key_store_errors(sample_pfx: bytes, data: st.DataObject) -> None:
    corrupted = bytearray(sample_pfx)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[position] = data.draw(st.integers(0, 255))
    for call, args in ((list_aliases, ()), (open_pfx, (PASSWORD,))):
        with contextlib.suppress(KeyStoreError):
            call(bytes(corrupted), *args)


# ---------------------------------------------------------------- hand-built files (no cryptography checks)


def safe_bag(bag_id: str, value, *, name: str | None = None, key_id: bytes | None = None):
    attributes = []
    if name is not None:
        attributes.append({"type": "friendly_name", "values": [name]})
    if key_id is not None:
        attributes.append({"type": "local_key_id", "values": [key_id]})
    bag = {"bag_id": bag_id, "bag_value": value}
    if attributes:
        bag["bag_attributes"] = attributes
    return asn1_pkcs12.SafeBag(bag)


def key_bag(key, **attributes):
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    return safe_bag("key_bag", keys.PrivateKeyInfo.load(pkcs8), **attributes)


def cert_bag(cert: x509.Certificate, **attributes):
    value = asn1_pkcs12.CertBag({"cert_id": "x509", "cert_value": asn1_x509.Certificate.load(der(cert))})
    return safe_bag("cert_bag", value, **attributes)


def assemble(bags, *, mac_password: bytes | None = None, mac_algorithm: str = "sha256") -> bytes:
    """A PFX from plain bags; with `mac_password` (already BMP-encoded) a MAC computed independently here."""
    contents = cms.ContentInfo({"content_type": "data", "content": asn1_pkcs12.SafeContents(bags).dump()})
    auth_safe = asn1_pkcs12.AuthenticatedSafe([contents]).dump()
    pfx = {"version": "v3", "auth_safe": cms.ContentInfo({"content_type": "data", "content": auth_safe})}
    if mac_password is not None:
        salt, iterations = b"saltsalt", 1000
        digest_name = mac_algorithm if mac_algorithm in hashlib.algorithms_available else "sha256"
        size = hashlib.new(digest_name).digest_size
        mac_key = store.pkcs12_kdf(digest_name, mac_password, salt, 3, iterations, size)
        pfx["mac_data"] = asn1_pkcs12.MacData({
            "mac": algos.DigestInfo({
                "digest_algorithm": {"algorithm": mac_algorithm},
                "digest": hmac.new(mac_key, auth_safe, digest_name).digest(),
            }),
            "mac_salt": salt,
            "iterations": iterations,
        })
    return asn1_pkcs12.Pfx(pfx).dump()


def test_key_mismatch(ca) -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    data = assemble([key_bag(key, name="mine", key_id=b"1"), cert_bag(issue(ca, other), key_id=b"1")])
    assert list_aliases(data) == ["mine"]
    assert kind_of(open_pfx, data, "any password") is KeyErrorKind.KEY_MISMATCH


def test_friendly_name_written_as_utf8_string_is_read(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encoded = core.UTF8String("UTF8 Имя").dump()  # RFC 7292 says BMPString; some writers differ
    values = asn1_pkcs12.SetOfBMPString.load(b"\x31" + bytes([len(encoded)]) + encoded)
    bag = key_bag(key)
    bag["bag_attributes"] = [asn1_pkcs12.Attribute({"type": "friendly_name", "values": values})]
    data = assemble([bag, cert_bag(issue(ca, key))])
    assert list_aliases(data) == ["utf8 имя"]
    # OpenSSL's parser refuses such files; we say so rather than blame the password.
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(data, "any", "UTF8 ИМЯ")
    assert caught.value.kind is KeyErrorKind.DAMAGED_FILE
    assert "password is right" in caught.value.detail


def test_file_without_a_key(ca) -> None:
    data = assemble([cert_bag(ca[1], name="just a cert")])
    assert list_aliases(data) == []
    assert kind_of(open_pfx, data, PASSWORD) is KeyErrorKind.ALIAS_NOT_FOUND


def test_unnamed_key_gets_the_alias_of_its_plain_certificate(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(ca, key)
    expected = build_alias(asn1_x509.Certificate.load(der(cert)))
    by_key_id = assemble([cert_bag(ca[1]), cert_bag(cert, key_id=b"k"), key_bag(key, key_id=b"k")])
    assert list_aliases(by_key_id) == [expected]
    # No localKeyId: the only end entity.
    leaf_only = assemble([cert_bag(ca[1]), cert_bag(cert), key_bag(key)])
    assert list_aliases(leaf_only) == [expected]
    unmatched = assemble([cert_bag(cert, key_id=b"x"), key_bag(key, key_id=b"k")])
    assert list_aliases(unmatched) == [""]
    opened = open_pfx(leaf_only, "", expected)
    assert opened.alias == expected
    assert [c.dump() for c in opened.chain] == [der(ca[1])]


@pytest.mark.parametrize("mac_password", [b"\x00\x00", b""])
def test_empty_password_conventions(ca, mac_password: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = assemble([key_bag(key, name="k"), cert_bag(issue(ca, key))], mac_password=mac_password)
    assert open_pfx(data, "").alias == "k"
    assert kind_of(open_pfx, data, "x") is KeyErrorKind.WRONG_PASSWORD


def test_mac_is_checked_independently_of_cryptography(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bmp = "Parol1".encode("utf-16-be") + b"\x00\x00"
    for algorithm in ("sha1", "sha256", "sha512"):
        bags = [key_bag(key, name="k"), cert_bag(issue(ca, key))]
        data = assemble(bags, mac_password=bmp, mac_algorithm=algorithm)
        assert open_pfx(data, "Parol1").alias == "k"
        assert kind_of(open_pfx, data, "Parol2") is KeyErrorKind.WRONG_PASSWORD


def test_unknown_mac_algorithm_is_unsupported(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = assemble([key_bag(key), cert_bag(issue(ca, key))], mac_password=b"\x00\x00", mac_algorithm="md5")
    assert kind_of(open_pfx, data, "") is KeyErrorKind.UNSUPPORTED


def test_unsupported_key_algorithm_names_the_oid(ca) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = assemble([key_bag(key, name="ed")])
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(data, "")
    assert caught.value.kind is KeyErrorKind.UNSUPPORTED
    assert "1.3.101.112" in caught.value.detail


def test_unsupported_curve_is_unsupported(ca) -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    data = assemble([key_bag(key, name="k1"), cert_bag(issue(ca, key))])
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(data, "")
    assert caught.value.kind is KeyErrorKind.UNSUPPORTED
    assert "1.3.132.0.10" in caught.value.detail


# ---------------------------------------------------------------------------------------------- backends


class ClaimingBackend:
    """A backend that claims every file, as a national-algorithm backend would claim its keys."""

    name = "claiming"

    def __init__(self, entries: list[UnlockedKey] | None) -> None:
        self.entries = entries
        self.calls = 0

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None:
        self.calls += 1
        return self.entries


def test_backends_are_tried_in_order(sample_pfx: bytes) -> None:
    declining = ClaimingBackend(None)
    register_backend(declining, first=True)
    try:
        assert open_pfx(sample_pfx, PASSWORD).alias == "sample"
        assert declining.calls == 1
        assert kind_of(open_pfx, sample_pfx, "wrong") is KeyErrorKind.WRONG_PASSWORD
        assert declining.calls == 1  # the MAC is checked before any backend sees the file
        entry = open_pfx(sample_pfx, PASSWORD)
        claiming = ClaimingBackend([UnlockedKey("other", entry.signer, entry.certificate, ())])
        register_backend(claiming, first=True)  # replaces the declining one (same name)
        assert open_pfx(sample_pfx, PASSWORD).alias == "other"
    finally:
        unregister_backend("claiming")
    assert open_pfx(sample_pfx, PASSWORD).alias == "sample"


# ---------------------------------------------------------------------------------------------- OpenSSL CLI


def openssl(*args: str) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def openssl_material(tmp_path_factory, ca, rsa_key) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("openssl")
    cert = issue(ca, rsa_key, "OpenSSL User")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    files = {
        "key.pem": rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()),
        "cert.pem": cert.public_bytes(serialization.Encoding.PEM),
        "ca.pem": ca[1].public_bytes(serialization.Encoding.PEM),
        "ed.pem": ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()),
        "edcert.pem": issue(ca, ed_key, "Ed User").public_bytes(serialization.Encoding.PEM),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return {name: folder / name for name in files} | {"dir": folder}


def export(material: dict[str, Path], name: str, *extra: str, key: str = "key.pem", cert: str = "cert.pem",
           password: str = PASSWORD) -> bytes:
    out = material["dir"] / name
    openssl("pkcs12", "-export", "-inkey", str(material[key]), "-in", str(material[cert]),
            "-certfile", str(material["ca.pem"]), "-passout", f"pass:{password}", "-out", str(out), *extra)
    return out.read_bytes()


def legacy_supported() -> bool:
    if OPENSSL is None:
        return False
    probe = subprocess.run([OPENSSL, "list", "-cipher-algorithms", "-provider", "legacy"],
                           capture_output=True)
    return probe.returncode == 0


@needs_openssl
@pytest.mark.skipif(not legacy_supported(), reason="OpenSSL legacy provider missing")
def test_openssl_legacy_file(openssl_material, ca) -> None:
    data = export(openssl_material, "legacy.pfx", "-legacy", "-name", "Some Alias")
    assert list_aliases(data) == ["some alias"]
    unlocked = open_pfx(data, PASSWORD, "Some Alias")
    assert unlocked.certificate.dump() == der(issue_cert(openssl_material))
    assert [c.dump() for c in unlocked.chain] == [der(ca[1])]
    # The RC2-40 certificate container also decrypts with our own code (what non-cryptography backends use).
    pfx = parse_pfx(data)
    certs = [bag for bag in store.iter_safe_bags(pfx, PASSWORD) if bag["bag_id"].native == "cert_bag"]
    assert len(certs) == 2
    assert kind_of(open_pfx, data, "wrong") is KeyErrorKind.WRONG_PASSWORD


def issue_cert(material: dict[str, Path]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material["cert.pem"].read_bytes())


@needs_openssl
def test_openssl_default_file(openssl_material) -> None:
    data = export(openssl_material, "modern.pfx", "-name", "Some Alias")
    assert parse_pfx(data)["mac_data"]["mac"]["digest_algorithm"]["algorithm"].native == "sha256"
    assert list_aliases(data) == ["some alias"]
    unlocked = open_pfx(data, PASSWORD, "some alias")
    message = b"hello"
    verify_signature(unlocked.certificate, unlocked.signer.sign(message), message)
    assert kind_of(open_pfx, data, "wrong") is KeyErrorKind.WRONG_PASSWORD


@needs_openssl
def test_cipher_unknown_to_us_is_left_to_cryptography(openssl_material) -> None:
    data = export(openssl_material, "camellia.pfx", "-keypbe", "CAMELLIA-256-CBC", "-name", "c")
    assert store.key_algorithms(parse_pfx(data), PASSWORD) == [None]  # not readable by our own decryptor...
    assert open_pfx(data, PASSWORD).alias == "c"  # ...but cryptography reads it
    assert kind_of(open_pfx, data, "wrong") is KeyErrorKind.WRONG_PASSWORD


@needs_openssl
def test_openssl_ed25519_is_unsupported(openssl_material) -> None:
    data = export(openssl_material, "ed.pfx", "-name", "ed", key="ed.pem", cert="edcert.pem")
    assert list_aliases(data) == ["ed"]
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(data, PASSWORD)
    assert caught.value.kind is KeyErrorKind.UNSUPPORTED
    assert caught.value.detail == "key algorithm 1.3.101.112 is not supported"
    assert kind_of(open_pfx, data, "wrong") is KeyErrorKind.WRONG_PASSWORD


@needs_openssl
def test_openssl_file_without_friendly_name(openssl_material) -> None:
    expected = build_alias(asn1_x509.Certificate.load(der(issue_cert(openssl_material))))
    plain_certs = export(openssl_material, "plain.pfx", "-certpbe", "NONE")
    assert list_aliases(plain_certs) == [expected]
    assert open_pfx(plain_certs, PASSWORD, expected).alias == expected
    encrypted_certs = export(openssl_material, "encrypted.pfx")
    assert list_aliases(encrypted_certs) == [""]
    assert open_pfx(encrypted_certs, PASSWORD, "").alias == expected


@needs_openssl
def test_openssl_file_without_mac(openssl_material) -> None:
    data = export(openssl_material, "nomac.pfx", "-nomac", "-name", "n")
    assert open_pfx(data, PASSWORD).alias == "n"
    with pytest.raises(KeyStoreError) as caught:
        open_pfx(data, "wrong")
    assert caught.value.kind is KeyErrorKind.WRONG_PASSWORD  # told by the key bag's padding, not by a MAC
    assert "no MAC" in caught.value.detail


@needs_openssl
def test_openssl_empty_password(openssl_material) -> None:
    data = export(openssl_material, "empty.pfx", "-name", "e", password="")
    assert open_pfx(data, "").alias == "e"
    assert kind_of(open_pfx, data, "x") is KeyErrorKind.WRONG_PASSWORD


# ---------------------------------------------------------------------------------- changing password


def test_change_password(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = serialize_pfx(key, issue(ca, key), [ca[1]], PASSWORD, "Keep Me")
    changed = change_pfx_password(data, PASSWORD, "New-Pass456")
    assert kind_of(open_pfx, changed, PASSWORD) is KeyErrorKind.WRONG_PASSWORD
    unlocked = open_pfx(changed, "New-Pass456")
    assert unlocked.alias == "keep me"
    assert list_aliases(changed) == ["keep me"]
    assert [c.dump() for c in unlocked.chain] == [der(ca[1])]
    assert kind_of(change_pfx_password, data, "wrong", "x") is KeyErrorKind.WRONG_PASSWORD


NEW_PASSWORD = "Другой-пароль1"


@needs_openssl
def test_change_password_keeps_a_modern_files_scheme_names_and_certificates(openssl_material) -> None:
    """Regression: the password change rewrote every file as 3DES / SHA-1 / 2048 with a lower-cased name."""
    data = export(openssl_material, "modern-change.pfx", "-name", "Some Alias", "-iter", "10000")
    before = protection(data)
    assert before == {"mac": ("sha256", 10000), "keys": [("pbes2", "sha256", "aes256_cbc", 10000)],
                      "containers": [("pbes2", "sha256", "aes256_cbc", 10000)]}
    changed = change_pfx_password(data, PASSWORD, NEW_PASSWORD)
    assert protection(changed) == before
    assert key_bag_attributes(changed) == key_bag_attributes(data)  # "Some Alias", case and encoding kept
    assert certificate_bags(changed, NEW_PASSWORD) == certificate_bags(data, PASSWORD)
    assert open_pfx(changed, NEW_PASSWORD, "some alias").certificate.dump() == der(issue_cert(openssl_material))
    assert kind_of(open_pfx, changed, PASSWORD) is KeyErrorKind.WRONG_PASSWORD
    out = openssl_material["dir"] / "modern-changed.pfx"
    out.write_bytes(changed)
    report = subprocess.run([OPENSSL, "pkcs12", "-in", str(out), "-info", "-nodes", "-passin", f"pass:{NEW_PASSWORD}"],
                            capture_output=True, text=True, check=True)
    assert "friendlyName: Some Alias" in report.stdout
    assert "MAC: sha256, Iteration 10000" in report.stderr
    assert "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256" in report.stderr
    assert "PRIVATE KEY-----" in report.stdout  # OpenSSL decrypts the key with the new password


@needs_openssl
@pytest.mark.skipif(not legacy_supported(), reason="OpenSSL legacy provider missing")
def test_change_password_keeps_a_legacy_file_legacy(openssl_material) -> None:
    data = export(openssl_material, "legacy-change.pfx", "-legacy", "-name", "Old Alias")
    assert protection(data) == {"mac": ("sha1", 2048), "keys": [("pkcs12_sha1_tripledes_3key", 2048)],
                                "containers": [("pkcs12_sha1_rc2_40", 2048)]}
    changed = change_pfx_password(data, PASSWORD, NEW_PASSWORD)
    # Still PKCS#12 PBE and an HMAC-SHA1 MAC (what old E-IMZO builds read); RC2-40 is not written again.
    assert protection(changed) == {"mac": ("sha1", 2048), "keys": [("pkcs12_sha1_tripledes_3key", 2048)],
                                   "containers": [("pkcs12_sha1_tripledes_3key", 2048)]}
    assert key_bag_attributes(changed) == key_bag_attributes(data)
    assert certificate_bags(changed, NEW_PASSWORD) == certificate_bags(data, PASSWORD)
    out = openssl_material["dir"] / "legacy-changed.pfx"
    out.write_bytes(changed)
    openssl("pkcs12", "-in", str(out), "-nodes", "-legacy", "-passin", f"pass:{NEW_PASSWORD}")


@needs_openssl
def test_change_password_raises_low_iteration_counts_and_keeps_no_mac(openssl_material) -> None:
    data = export(openssl_material, "weak-change.pfx", "-name", "w", "-iter", "100", "-nomac")
    assert protection(data) == {"mac": None, "keys": [("pbes2", "sha256", "aes256_cbc", 100)], "containers": []}
    changed = change_pfx_password(data, PASSWORD, NEW_PASSWORD)
    assert protection(changed) == {"mac": None, "keys": [("pbes2", "sha256", "aes256_cbc", 2048)], "containers": []}
    assert open_pfx(changed, NEW_PASSWORD).alias == "w"
    assert kind_of(open_pfx, changed, PASSWORD) is KeyErrorKind.WRONG_PASSWORD


@needs_openssl
def test_change_password_refuses_what_it_cannot_re_create(openssl_material) -> None:
    data = export(openssl_material, "camellia-change.pfx", "-keypbe", "CAMELLIA-256-CBC", "-name", "c")
    assert kind_of(change_pfx_password, data, PASSWORD, NEW_PASSWORD) is KeyErrorKind.UNSUPPORTED


def test_change_password_encrypts_an_unencrypted_key(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bmp = PASSWORD.encode("utf-16-be") + b"\x00\x00"
    data = assemble([key_bag(key, name="Plain Key", key_id=b"1"), cert_bag(issue(ca, key), key_id=b"1")],
                    mac_password=bmp)
    assert protection(data)["keys"] == ["unencrypted"]
    changed = change_pfx_password(data, PASSWORD, NEW_PASSWORD)
    assert protection(changed) == {"mac": ("sha256", 2048), "keys": [("pkcs12_sha1_tripledes_3key", 2048)],
                                   "containers": []}
    assert key_bag_attributes(changed) == key_bag_attributes(data)
    assert list_aliases(changed) == ["plain key"]
    assert open_pfx(changed, NEW_PASSWORD).alias == "plain key"


def test_change_password_reaches_keys_in_nested_contents(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    nested = safe_bag("safe_contents", asn1_pkcs12.SafeContents([key_bag(key, name="Nested")]))
    data = assemble([nested, cert_bag(issue(ca, key))], mac_password=PASSWORD.encode("utf-16-be") + b"\x00\x00")
    changed = change_pfx_password(data, PASSWORD, NEW_PASSWORD)
    assert key_bag_attributes(changed) == key_bag_attributes(data)
    assert open_pfx(changed, NEW_PASSWORD).alias == "nested"
    assert kind_of(open_pfx, changed, PASSWORD) is KeyErrorKind.WRONG_PASSWORD


def test_change_password_checks_the_alias_and_the_new_password(sample_pfx: bytes) -> None:
    assert kind_of(change_pfx_password, sample_pfx, PASSWORD, NEW_PASSWORD, "someone else") \
        is KeyErrorKind.ALIAS_NOT_FOUND
    with pytest.raises(ValueError, match="non-empty password"):
        change_pfx_password(sample_pfx, PASSWORD, "")


# ---------------------------------------------------------------------------------------------- RC2


@pytest.mark.parametrize(("key", "bits", "plain", "cipher"), [
    # RFC 2268 section 5 test vectors.
    ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
    ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
    ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
    ("88", 64, "0000000000000000", "61a8a244adacccf0"),
    ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
    ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
])
def test_rc2_decrypts_rfc2268_vectors(key: str, bits: int, plain: str, cipher: str) -> None:
    words = rc2_module.key_schedule(bytes.fromhex(key), bits)
    assert rc2_module.decrypt_block(words, bytes.fromhex(cipher)).hex() == plain


def test_rc2_agrees_with_cryptography_where_cryptography_has_rc2() -> None:
    """cryptography's RC2 (128-bit keys, 128 effective bits) checks ours; only ours does the 40-bit form."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    for _ in range(20):
        key, iv, data = os.urandom(16), os.urandom(8), os.urandom(64)
        encryptor = Cipher(RC2(key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(data) + encryptor.finalize()
        assert rc2_module.cbc_decrypt(key, 128, iv, ciphertext) == data
