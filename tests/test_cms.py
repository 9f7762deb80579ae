"""CMS SignedData builder, checked against OpenSSL as the independent verifier (no mocks)."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eimzo_agent.crypto.cms import (
    CmsError,
    SignatureResult,
    append_signer,
    create_pkcs7,
    read_signed_data,
)
from eimzo_agent.crypto.signer import CryptographySigner

OPENSSL = "/usr/bin/openssl"
RSA_SERIAL = 0x8A1B2C3D4E5F  # high bit set: DER needs a leading 00 octet, the hex must not show it
EC_SERIAL = 0x7283D8CA
DOC = "Hujjat matni — тестовый документ\n".encode() * 50


# ---------------------------------------------------------------------------------------------- test PKI


@dataclass
class Pki:
    ca_pem: Path
    signers: dict[str, CryptographySigner]
    pem_files: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # name -> (cert.pem, key.pem)


def _name(common_name: str) -> x509.Name:
    # The comma in O checks RFC 4514 escaping of the issuer string.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "UZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test PKI, LLC"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: str, issuer: x509.Name, public_key, serial: int) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def _make_pki(folder: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder("Test Root CA", _name("Test Root CA"), ca_key.public_key(), 0x01)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = folder / "ca.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_asn1 = asn1_x509.Certificate.load(ca_cert.public_bytes(serialization.Encoding.DER))
    pki = Pki(ca_pem, {})
    keys = {
        "rsa": (rsa.generate_private_key(65537, 2048), RSA_SERIAL),
        "ec": (ec.generate_private_key(ec.SECP256R1()), EC_SERIAL),
    }
    for kind, (key, serial) in keys.items():
        cert = (
            _builder(f"Signer {kind.upper()}", ca_cert.subject, key.public_key(), serial)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        pki.signers[kind] = CryptographySigner(key, asn1_x509.Certificate.load(der), (ca_asn1,))
        cert_pem, key_pem = folder / f"{kind}.pem", folder / f"{kind}.key"
        cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        pki.pem_files[kind] = (cert_pem, key_pem)
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Sha384EcdsaSigner:
    """A Signer with other algorithms than CryptographySigner: proves the builder takes them from the Signer."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: asn1_x509.Certificate
    chain: Sequence[asn1_x509.Certificate] = ()
    digest_algorithm: algos.DigestAlgorithm = field(
        default_factory=lambda: algos.DigestAlgorithm({"algorithm": "sha384"})
    )
    signature_algorithm: algos.SignedDigestAlgorithm = field(
        default_factory=lambda: algos.SignedDigestAlgorithm({"algorithm": "sha384_ecdsa"})
    )

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha384(data).digest()

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA384()))


@dataclass
class NationalOidSigner:
    """Carries E-IMZO's O'z DSt AlgorithmIdentifiers (unknown to asn1crypto) to check the OID plumbing only.

    NULL parameters must be given as core.Null(): asn1crypto omits parameters given as `None`.

    The real O'z DSt algorithms come later; the values here are real ECDSA/SHA-256 so the bytes are genuine,
    but no verifier knows these OIDs, so nothing here is checked cryptographically.
    """

    private_key: ec.EllipticCurvePrivateKey
    certificate: asn1_x509.Certificate
    chain: Sequence[asn1_x509.Certificate] = ()
    digest_algorithm: algos.DigestAlgorithm = field(
        default_factory=lambda: algos.DigestAlgorithm(
            {"algorithm": "1.2.860.3.15.1.3.2.1.1", "parameters": core.Null()}
        )
    )
    signature_algorithm: algos.SignedDigestAlgorithm = field(
        default_factory=lambda: algos.SignedDigestAlgorithm(
            {"algorithm": "1.2.860.3.15.1.1.2.2.2.2", "parameters": core.Null()}
        )
    )

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha256(b"national:" + data).digest()

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


# ---------------------------------------------------------------------------------------------- helpers


def openssl_verify(
    folder: Path, pki: Pki, cms_der: bytes, detached_content: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    p7s, out = folder / "verify.p7s", folder / "verify.out"
    p7s.write_bytes(cms_der)
    out.unlink(missing_ok=True)
    args = [OPENSSL, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s)]
    args += ["-CAfile", str(pki.ca_pem), "-out", str(out)]
    if detached_content is not None:
        doc = folder / "verify.doc"
        doc.write_bytes(detached_content)
        args += ["-content", str(doc)]
    return subprocess.run(args, capture_output=True, check=False)


def assert_verifies(
    folder: Path, pki: Pki, cms_der: bytes, content: bytes, *, detached: bool = False
) -> None:
    result = openssl_verify(folder, pki, cms_der, content if detached else None)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert (folder / "verify.out").read_bytes() == content


def signed_data(cms_der: bytes) -> cms.SignedData:
    return cms.ContentInfo.load(cms_der)["content"]


def signer_info_ders(cms_der: bytes) -> list[bytes]:
    return [info.dump() for info in signed_data(cms_der)["signer_infos"]]


def attribute_types(signer_info: cms.SignerInfo) -> list[str]:
    return [attr["type"].native for attr in signer_info["signed_attrs"]]


def cert_der(signer: CryptographySigner) -> bytes:
    return signer.certificate.dump()


def public_key(signer: CryptographySigner):
    return x509.load_der_x509_certificate(cert_der(signer)).public_key()


# ---------------------------------------------------------------------------------------------- create_pkcs7


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_attached_verifies_and_content_is_recovered(pki: Pki, tmp_path: Path, kind: str) -> None:
    result = create_pkcs7(DOC, pki.signers[kind], detached=False)

    assert isinstance(result, SignatureResult)
    assert_verifies(tmp_path, pki, result.cms_der, DOC)
    info = read_signed_data(result.cms_der)
    assert info.content == DOC
    assert len(info.signers) == 1
    assert info.signers[0].signature == result.signature
    assert info.signers[0].message_digest == hashlib.sha256(DOC).digest()
    # The document is one of the CMS's pieces as it was given, not a copy (a 10 MB one is never copied into it).
    before, content, after = result.cms_parts
    assert content is DOC and result.cms_der == before + DOC + after


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_detached_verifies_with_external_content(pki: Pki, tmp_path: Path, kind: str) -> None:
    result = create_pkcs7(DOC, pki.signers[kind], detached=True)

    assert DOC not in result.cms_der and result.cms_parts == (result.cms_der,)
    assert_verifies(tmp_path, pki, result.cms_der, DOC, detached=True)
    assert read_signed_data(result.cms_der).content is None


def test_structure_is_signed_data_v1_with_issuer_and_serial(pki: Pki) -> None:
    signer = pki.signers["rsa"]
    sd = signed_data(create_pkcs7(DOC, signer, detached=False).cms_der)

    assert sd["version"].native == "v1"
    assert [alg.dump() for alg in sd["digest_algorithms"]] == [signer.digest_algorithm.dump()]
    assert sd["encap_content_info"]["content_type"].native == "data"
    assert [c.chosen.dump() for c in sd["certificates"]] == sorted([cert_der(signer), signer.chain[0].dump()])
    (info,) = sd["signer_infos"]
    assert info["version"].native == "v1"
    assert info["sid"].name == "issuer_and_serial_number"
    assert info["sid"].chosen["serial_number"].native == RSA_SERIAL
    assert info["sid"].chosen["issuer"] == signer.certificate.issuer
    assert info["digest_algorithm"].dump() == signer.digest_algorithm.dump()
    assert info["signature_algorithm"].dump() == signer.signature_algorithm.dump()
    assert isinstance(info["unsigned_attrs"], type(cms.SignerInfo()["unsigned_attrs"]))  # absent (Void)


def test_certificates_are_not_duplicated(pki: Pki) -> None:
    base = pki.signers["ec"]
    signer = CryptographySigner(
        base.private_key, base.certificate, (base.chain[0], base.certificate, base.chain[0])
    )

    sd = signed_data(create_pkcs7(DOC, signer, detached=False).cms_der)

    assert len(sd["certificates"]) == 2


def test_der_output_is_canonical(pki: Pki) -> None:
    der = create_pkcs7(DOC, pki.signers["ec"], detached=False).cms_der
    # Re-encoding every node with asn1crypto (sorted SETs, definite lengths) must give the same bytes.
    assert cms.ContentInfo.load(der).dump(force=True) == der


def test_signer_serial_hex_like_java_biginteger(pki: Pki) -> None:
    rsa_cert = pki.signers["rsa"].certificate
    # The DER INTEGER carries a leading zero octet because the high bit is set ...
    assert rsa_cert["tbs_certificate"]["serial_number"].contents[:1] == b"\x00"
    rsa_result = create_pkcs7(DOC, pki.signers["rsa"], detached=True)
    ec_result = create_pkcs7(DOC, pki.signers["ec"], detached=True)

    # ... which BigInteger.toString(16) does not show.
    assert rsa_result.signer_serial_hex == "8a1b2c3d4e5f"
    assert ec_result.signer_serial_hex == "7283d8ca"
    assert read_signed_data(rsa_result.cms_der).signers[0].serial_hex == "8a1b2c3d4e5f"


def test_signature_covers_signed_attributes_as_set_of(pki: Pki) -> None:
    signer = pki.signers["rsa"]
    result = create_pkcs7(DOC, signer, detached=False)
    info = signed_data(result.cms_der)["signer_infos"][0]
    stored = info["signed_attrs"].dump()

    assert stored[0] == 0xA0  # [0] IMPLICIT in the SignerInfo ...
    as_set = b"\x31" + stored[1:]  # ... but signed as a SET OF (RFC 5652 §5.4)
    public_key(signer).verify(result.signature, as_set, padding.PKCS1v15(), hashes.SHA256())
    assert info["signature"].native == result.signature


def test_eimzo_mode_has_exactly_the_three_attributes_in_order(pki: Pki, tmp_path: Path) -> None:
    result = create_pkcs7(DOC, pki.signers["ec"], detached=False, signed_attributes="eimzo")
    info = signed_data(result.cms_der)["signer_infos"][0]

    assert attribute_types(info) == ["content_type", "signing_time", "message_digest"]
    attrs = {attr["type"].native: attr["values"] for attr in info["signed_attrs"]}
    assert [v.native for v in attrs["content_type"]] == ["data"]
    assert attrs["signing_time"][0].name == "utc_time"
    assert [v.native for v in attrs["message_digest"]] == [hashlib.sha256(DOC).digest()]
    assert_verifies(tmp_path, pki, result.cms_der, DOC)


def test_cades_mode_adds_signing_certificate_v2(pki: Pki, tmp_path: Path) -> None:
    signer = pki.signers["rsa"]
    result = create_pkcs7(DOC, signer, detached=False, signed_attributes="cades")
    info = signed_data(result.cms_der)["signer_infos"][0]

    assert attribute_types(info) == [
        "content_type",
        "signing_time",
        "message_digest",
        "signing_certificate_v2",
    ]
    (value,) = info["signed_attrs"][3]["values"]
    assert isinstance(value, tsp.SigningCertificateV2)
    (ess,) = value["certs"]
    assert ess.dump()[2] == 0x04  # hashAlgorithm omitted (DEFAULT sha256): the first field is certHash
    assert ess["cert_hash"].native == hashlib.sha256(cert_der(signer)).digest()
    (general_name,) = ess["issuer_serial"]["issuer"]
    assert general_name.name == "directory_name"
    issuer = signer.certificate.issuer.dump()
    assert (
        general_name.dump() == b"\xa4" + bytes([len(issuer)]) + issuer
    )  # [4] EXPLICIT Name, bytes as in cert
    assert ess["issuer_serial"]["serial_number"].native == RSA_SERIAL
    assert_verifies(tmp_path, pki, result.cms_der, DOC)


def test_default_mode_is_cades(pki: Pki) -> None:
    result = create_pkcs7(DOC, pki.signers["ec"], detached=True)
    assert "signing_certificate_v2" in attribute_types(signed_data(result.cms_der)["signer_infos"][0])


def test_signing_time_is_honoured_in_utc_with_seconds(pki: Pki) -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 987654, tzinfo=timezone(timedelta(hours=5)))  # Tashkent

    result = create_pkcs7(DOC, pki.signers["ec"], detached=True, signing_time=moment)

    assert b"\x17\x0d240506020809Z" in result.cms_der
    assert read_signed_data(result.cms_der).signers[0].signing_time == datetime(
        2024, 5, 6, 2, 8, 9, tzinfo=UTC
    )


def test_signing_time_defaults_to_now(pki: Pki) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = create_pkcs7(DOC, pki.signers["ec"], detached=True)
    after = datetime.now(UTC)

    signing_time = read_signed_data(result.cms_der).signers[0].signing_time
    assert signing_time is not None
    assert before <= signing_time <= after


def test_naive_signing_time_is_rejected(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_pkcs7(DOC, pki.signers["ec"], detached=True, signing_time=datetime(2024, 1, 1))


@pytest.mark.parametrize("detached", [False, True])
def test_empty_content(pki: Pki, tmp_path: Path, detached: bool) -> None:
    result = create_pkcs7(b"", pki.signers["rsa"], detached=detached)

    assert_verifies(tmp_path, pki, result.cms_der, b"", detached=detached)
    assert read_signed_data(result.cms_der).content == (None if detached else b"")


def test_digest_and_signature_algorithms_come_from_the_signer(pki: Pki, tmp_path: Path) -> None:
    base = pki.signers["ec"]
    signer = Sha384EcdsaSigner(base.private_key, base.certificate, base.chain)

    result = create_pkcs7(DOC, signer, detached=False)

    assert_verifies(tmp_path, pki, result.cms_der, DOC)
    (view,) = read_signed_data(result.cms_der).signers
    assert (view.digest_algorithm, view.signature_algorithm) == ("sha384", "sha384_ecdsa")
    assert view.message_digest == hashlib.sha384(DOC).digest()


def test_unknown_national_algorithm_identifiers_pass_through(pki: Pki) -> None:
    base = pki.signers["ec"]
    national = NationalOidSigner(base.private_key, base.certificate, base.chain)

    first = create_pkcs7(DOC, national, detached=False, signed_attributes="eimzo")
    (old_info,) = signer_info_ders(first.cms_der)
    second = append_signer(first.cms_der, pki.signers["rsa"])

    # digestAlgorithms element exactly as in E-IMZO's CMS: {1.2.860.3.15.1.3.2.1.1, NULL}
    assert bytes.fromhex("300e060a2a865c030f01030201010500") in first.cms_der
    assert old_info in second.cms_der
    views = {v.serial_hex: v for v in read_signed_data(second.cms_der).signers}
    assert views["7283d8ca"].digest_algorithm == "1.2.860.3.15.1.3.2.1.1"
    assert views["7283d8ca"].signature_algorithm == "1.2.860.3.15.1.1.2.2.2.2"
    assert views["7283d8ca"].message_digest == national.digest(DOC)
    assert views["8a1b2c3d4e5f"].digest_algorithm == "sha256"
    assert len(signed_data(second.cms_der)["digest_algorithms"]) == 2


def test_tampered_attached_content_is_rejected_by_openssl(pki: Pki, tmp_path: Path) -> None:
    der = create_pkcs7(DOC, pki.signers["rsa"], detached=False).cms_der
    at = der.index(DOC) + 10
    tampered = der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1 :]

    assert openssl_verify(tmp_path, pki, tampered).returncode != 0


def test_tampered_detached_content_is_rejected_by_openssl(pki: Pki, tmp_path: Path) -> None:
    der = create_pkcs7(DOC, pki.signers["ec"], detached=True).cms_der

    assert openssl_verify(tmp_path, pki, der, DOC + b"!").returncode != 0


# ---------------------------------------------------------------------------------------------- append_signer


def test_append_signer_both_verify_and_old_signer_info_is_untouched(pki: Pki, tmp_path: Path) -> None:
    first = create_pkcs7(DOC, pki.signers["rsa"], detached=False)
    (old_info,) = signer_info_ders(first.cms_der)

    second = append_signer(first.cms_der, pki.signers["ec"], signed_attributes="eimzo")

    assert old_info in second.cms_der
    assert old_info in signer_info_ders(second.cms_der)
    assert second.signer_serial_hex == "7283d8ca"
    assert_verifies(tmp_path, pki, second.cms_der, DOC)  # OpenSSL checks every SignerInfo
    sd = signed_data(second.cms_der)
    assert len(sd["digest_algorithms"]) == 1  # both SHA-256: not repeated
    assert len(sd["certificates"]) == 3  # two end entities, the shared CA once
    info = read_signed_data(second.cms_der)
    assert info.content == DOC
    assert sorted(s.serial_hex for s in info.signers) == ["7283d8ca", "8a1b2c3d4e5f"]
    new_view = next(s for s in info.signers if s.serial_hex == "7283d8ca")
    assert new_view.signature == second.signature
    assert new_view.certificate_der == cert_der(pki.signers["ec"])


def test_append_three_signers_keeps_all_previous(pki: Pki, tmp_path: Path) -> None:
    der = create_pkcs7(DOC, pki.signers["ec"], detached=False).cms_der
    der = append_signer(der, pki.signers["rsa"]).cms_der
    before = signer_info_ders(der)

    der = append_signer(
        der, pki.signers["rsa"], signing_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    ).cms_der

    assert all(old in der for old in before)
    assert len(signer_info_ders(der)) == 3
    assert_verifies(tmp_path, pki, der, DOC)


def test_append_adds_missing_digest_algorithm(pki: Pki, tmp_path: Path) -> None:
    base = pki.signers["ec"]
    first = create_pkcs7(DOC, pki.signers["rsa"], detached=False)

    second = append_signer(first.cms_der, Sha384EcdsaSigner(base.private_key, base.certificate, base.chain))

    sd = signed_data(second.cms_der)
    assert sorted(alg["algorithm"].native for alg in sd["digest_algorithms"]) == ["sha256", "sha384"]
    assert_verifies(tmp_path, pki, second.cms_der, DOC)


def test_append_onto_openssl_ber_stream_output(pki: Pki, tmp_path: Path) -> None:
    content = bytes(range(256)) * 400  # > OpenSSL's streaming chunk: a constructed, chunked OCTET STRING
    doc, ber = tmp_path / "doc.bin", tmp_path / "ber.p7s"
    doc.write_bytes(content)
    cert_pem, key_pem = pki.pem_files["rsa"]
    subprocess.run(
        [
            *(OPENSSL, "cms", "-sign", "-stream", "-nodetach", "-binary", "-outform", "DER", "-in", str(doc)),
            *(
                "-signer",
                str(cert_pem),
                "-inkey",
                str(key_pem),
                "-certfile",
                str(pki.ca_pem),
                "-out",
                str(ber),
            ),
        ],
        check=True,
        capture_output=True,
    )
    ber_der = ber.read_bytes()
    assert ber_der[:2] == b"\x30\x80"  # indefinite length, as E-IMZO emits too
    (old_info,) = signer_info_ders(ber_der)
    assert read_signed_data(ber_der).content == content

    result = append_signer(ber_der, pki.signers["ec"])

    assert old_info in result.cms_der
    assert cms.ContentInfo.load(result.cms_der).dump(force=True) == result.cms_der  # DER now
    assert_verifies(tmp_path, pki, result.cms_der, content)
    assert [s.serial_hex for s in read_signed_data(result.cms_der).signers].count("8a1b2c3d4e5f") == 1


def test_append_large_content(pki: Pki, tmp_path: Path) -> None:
    content = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)  # 3 MiB

    first = create_pkcs7(content, pki.signers["ec"], detached=False)
    second = append_signer(first.cms_der, pki.signers["rsa"])

    assert read_signed_data(second.cms_der).content == content
    assert_verifies(tmp_path, pki, second.cms_der, content)


def test_append_to_detached_is_refused(pki: Pki) -> None:
    detached = create_pkcs7(DOC, pki.signers["rsa"], detached=True).cms_der

    with pytest.raises(CmsError, match="detached"):
        append_signer(detached, pki.signers["ec"])


# ---------------------------------------------------------------------------------------------- bad input


def _not_signed_data() -> list[bytes]:
    data_content_info = cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    return [b"", b"\x00", b"garbage, not DER at all", b"\x30\x80", b"\x30\x03\x02\x01", data_content_info]


@pytest.mark.parametrize("bad", _not_signed_data())
def test_garbage_raises_cms_error(pki: Pki, bad: bytes) -> None:
    with pytest.raises(CmsError):
        read_signed_data(bad)
    with pytest.raises(CmsError):
        append_signer(bad, pki.signers["ec"])


def test_certificate_instead_of_cms_raises_cms_error(pki: Pki) -> None:
    with pytest.raises(CmsError):
        read_signed_data(cert_der(pki.signers["rsa"]))


def test_truncated_cms_raises_cms_error(pki: Pki) -> None:
    der = create_pkcs7(DOC, pki.signers["rsa"], detached=False).cms_der
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(CmsError):
            read_signed_data(der[:cut])


@pytest.fixture(scope="module")
def sample_cms(pki: Pki) -> bytes:
    return create_pkcs7(b"short document", pki.signers["ec"], detached=False).cms_der


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_cms_never_raises_anything_but_cms_error(sample_cms: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(sample_cms) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=4))
    corrupted = sample_cms[:position] + replacement + sample_cms[position + 1 :]
    with contextlib.suppress(CmsError):  # anything else (TypeError, IndexError, ...) fails the test
        read_signed_data(corrupted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=64))
def test_random_bytes_raise_cms_error(blob: bytes) -> None:
    with pytest.raises(CmsError):
        read_signed_data(blob)


# ---------------------------------------------------------------------------------------------- read_signed_data


def test_read_signed_data_view(pki: Pki) -> None:
    signer = pki.signers["rsa"]
    moment = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    result = create_pkcs7(DOC, signer, detached=False, signing_time=moment)

    (view,) = read_signed_data(result.cms_der).signers

    expected_issuer = x509.load_der_x509_certificate(cert_der(signer)).issuer.rfc4514_string()
    assert view.issuer == expected_issuer == "CN=Test Root CA,O=Test PKI\\, LLC,C=UZ"
    assert view.serial_hex == "8a1b2c3d4e5f"
    assert (view.digest_algorithm, view.signature_algorithm) == ("sha256", "sha256_rsa")
    assert view.signing_time == moment
    assert view.message_digest == hashlib.sha256(DOC).digest()
    assert view.certificate_der == cert_der(signer)
    assert view.signature == result.signature
