"""The development registration authority (`eimzo_agent.dev.registration`): CSR in, certificate chain out."""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from asn1crypto import algos, core
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from eimzo_agent.crypto import ozdst
from eimzo_agent.crypto.ozdst_keys import OZDST, OZMST, OzdstPrivateKey
from eimzo_agent.crypto.x509_info import verify_certificate_signature
from eimzo_agent.dev.registration import CsrError, issue_for_csr
from eimzo_agent.dev.registration_service import start_registration

POLICY = "1.2.860.3.2.2.1.2.1"  # any OID: the dev CA copies what is requested

# A DN as E-IMZO's CAs write it: mixed string types that a re-encoding CA would get wrong.
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "TOSHMATOV ESHMAT"),
        x509.NameAttribute(NameOID.GIVEN_NAME, "ESHMAT"),
        x509.NameAttribute(NameOID.SURNAME, "TOSHMATOV"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "UZ"),
        x509.NameAttribute(NameOID.USER_ID, "123456789"),
        x509.NameAttribute(x509.ObjectIdentifier("1.2.860.3.16.1.2"), "12345678901234"),
    ]
)


def rsa_csr(*, policies: bool = True, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT)
    if policies:
        policy = x509.PolicyInformation(x509.ObjectIdentifier(POLICY), None)
        builder = builder.add_extension(x509.CertificatePolicies([policy]), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def ozdst_csr(key: OzdstPrivateKey, *, tamper: bool = False) -> bytes:
    """A request signed the E-IMZO way (s||r over GOST 34.11-94), built by hand so this test does not depend on
    the agent's own PKCS#10 writer."""
    policies = asn1_x509.Extension(
        {"extn_id": "certificate_policies", "critical": True, "extn_value": [{"policy_identifier": POLICY}]}
    )
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.load(SUBJECT.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(key.public_key().spki_der()),
            "attributes": [{"type": "extension_request", "values": [[policies]]}],
        }
    )
    signature = key.sign(info.dump())
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    algorithm = {"algorithm": key.family.signature_oid, "parameters": core.Null()}
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": algos.SignedDigestAlgorithm(algorithm),
            "signature": signature,
        }
    ).dump()


def test_rsa_request_is_issued_with_exact_subject_and_policies(tmp_path):
    chain = issue_for_csr(tmp_path / "ca", rsa_csr(), days=30)
    cert = x509.load_der_x509_certificate(chain.subject)
    ca = x509.load_der_x509_certificate(chain.ca)
    assert chain.root == chain.ca  # the dev CA is a single self-signed root
    cert.verify_directly_issued_by(ca)
    ca.verify_directly_issued_by(ca)
    assert cert.subject.public_bytes() == SUBJECT.public_bytes()
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert policies.critical and [p.policy_identifier.dotted_string for p in policies.value] == [POLICY]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now - datetime.timedelta(minutes=59)
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=29)


def test_ec_request_without_policies(tmp_path):
    chain = issue_for_csr(tmp_path / "ca", rsa_csr(policies=False, key=ec.generate_private_key(ec.SECP256R1())))
    cert = x509.load_der_x509_certificate(chain.subject)
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(chain.ca))
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CertificatePolicies)


@pytest.mark.parametrize("family", [OZDST, OZMST], ids=["ozdst", "ozmst"])
def test_ozdst_request_is_issued_by_the_ozdst_ca(tmp_path, family):
    key = OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A, family)
    chain = issue_for_csr(tmp_path / "ca", ozdst_csr(key))
    cert = asn1_x509.Certificate.load(chain.subject)
    ca = asn1_x509.Certificate.load(chain.ca)
    assert chain.root == chain.ca
    assert ca.subject.native["common_name"] == "eimzo-agent dev O'zDSt CA"
    assert verify_certificate_signature(cert, ca)
    assert cert["tbs_certificate"]["subject"].dump() == SUBJECT.public_bytes()
    assert cert["tbs_certificate"]["subject_public_key_info"].dump() == key.public_key().spki_der()
    assert cert.certificate_policies_value.native == [{"policy_identifier": POLICY, "policy_qualifiers": None}]
    assert cert.critical_extensions >= {"certificate_policies", "key_usage"}
    assert cert.key_usage_value.native == {"digital_signature", "non_repudiation"}
    # A second request reuses the same CA.
    again = issue_for_csr(tmp_path / "ca", ozdst_csr(OzdstPrivateKey.generate()))
    assert again.ca == chain.ca


def test_bad_signatures_and_garbage_are_refused(tmp_path):
    with pytest.raises(CsrError, match="does not verify"):
        issue_for_csr(tmp_path / "ca", ozdst_csr(OzdstPrivateKey.generate(), tamper=True))
    good = bytearray(rsa_csr())
    good[-5] ^= 1  # inside the RSA signature
    with pytest.raises(CsrError, match="does not verify"):
        issue_for_csr(tmp_path / "ca", bytes(good))
    with pytest.raises(CsrError, match="not a PKCS#10"):
        issue_for_csr(tmp_path / "ca", b"\x30\x03\x02\x01\x00")
    with pytest.raises(CsrError, match="not a PKCS#10"):
        issue_for_csr(tmp_path / "ca", b"hello")


# --------------------------------------------------------------------------------------------------------------
# The HTTP service (`eimzo-agent dev registration`, `start_registration`)


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers={"Origin": "http://127.0.0.1:64646", "Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_cli_service_issues_over_http_with_cors(tmp_path):
    service = subprocess.Popen(
        [sys.executable, "-m", "eimzo_agent", "dev", "registration", "--port", "0", "--ca", str(tmp_path / "ca")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = service.stdout.readline()
        match = re.fullmatch(r"registration: (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, (line, service.stderr.read() if service.poll() is not None else "")
        url = match.group(1)
        status, headers, _ = post(url + "issue", b"", method="OPTIONS")  # the browser's preflight
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        status, headers, body = post(url + "issue", base64.b64encode(rsa_csr()))
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*", body
        reply = json.loads(body)
        assert set(reply) == {"subject_certificate_64", "ca_certificate_64", "root_certificate_64"}
        cert = x509.load_der_x509_certificate(base64.b64decode(reply["subject_certificate_64"]))
        cert.verify_directly_issued_by(x509.load_der_x509_certificate(base64.b64decode(reply["ca_certificate_64"])))
        assert cert.subject.public_bytes() == SUBJECT.public_bytes()
        assert (tmp_path / "ca" / "ca.crt.pem").exists()
    finally:
        service.terminate()
        service.wait(timeout=10)


def test_library_service_reports_errors_as_json(tmp_path):
    url, stop = start_registration(tmp_path / "ca")
    try:
        status, headers, body = post(url + "issue", b"not base64!")
        assert status == 400 and headers["Access-Control-Allow-Origin"] == "*"
        assert "base64" in json.loads(body)["error"]
        status, _, body = post(url + "issue", base64.b64encode(b"\x30\x00"))
        assert status == 400 and "PKCS#10" in json.loads(body)["error"]
        status, _, body = post(url + "issue", base64.b64encode(ozdst_csr(OzdstPrivateKey.generate(), tamper=True)))
        assert status == 400 and "does not verify" in json.loads(body)["error"]
        status, _, body = post(url + "other", b"x")
        assert status == 404
        pem_body = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(
            ozdst_csr(OzdstPrivateKey.generate())) + b"-----END CERTIFICATE REQUEST-----\n"
        status, _, body = post(url + "issue", pem_body)
        assert status == 200, body
        cert = asn1_x509.Certificate.load(base64.b64decode(json.loads(body)["subject_certificate_64"]))
        assert verify_certificate_signature(cert, asn1_x509.Certificate.load(
            base64.b64decode(json.loads(body)["root_certificate_64"])))
    finally:
        stop()
