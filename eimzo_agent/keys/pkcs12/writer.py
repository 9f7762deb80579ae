"""Writing a new key file from a key and its certificates (`dev mint-key`, the demo keys, tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from asn1crypto import x509 as asn1_x509

from ...crypto.ozdst_keys import OzdstPrivateKey
from ...lazy_module import lazy_module
from ..errors import KeyErrorKind, KeyStoreError
from .certs import certificate_der, same_public_key, to_cryptography
from .ozdst_writer import WRITE_ITERATIONS, serialize_ozdst_pfx

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
else:  # imported when an RSA/EC key file is first written (see lazy_module)
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    pkcs12 = lazy_module("cryptography.hazmat.primitives.serialization.pkcs12")


def serialize_pfx(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | OzdstPrivateKey,
                  certificate: x509.Certificate | asn1_x509.Certificate,
                  chain: Sequence[x509.Certificate | asn1_x509.Certificate], password: str, alias: str) -> bytes:
    """A PFX the vendor's Java 8 agent can open: 3DES-encrypted bags, SHA-1 MAC, friendlyName = alias.

    PFX files written by Java ≥ 17 defaults (PBES2/AES, HMAC-SHA256) do not open in Java 8, the Windows
    E-IMZO or the mobile app, so new files use the legacy algorithms. O'zDSt keys, which `cryptography` cannot
    write, go through the national writer (same layout, E-IMZO's PKCS#8 key encoding).
    """
    if isinstance(private_key, OzdstPrivateKey):
        return serialize_ozdst_pfx(
            private_key, certificate_der(certificate), [certificate_der(cert) for cert in chain], password, alias
        )
    if not password:
        raise ValueError("a key file needs a non-empty password")
    certificate = _cryptography_certificate(certificate)
    if not same_public_key(private_key, certificate):
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(WRITE_ITERATIONS)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # the PKCS#12 MAC Java 8 understands
        .build(password.encode("utf-8"))
    )
    name = alias.lower().encode("utf-8") or None
    cas = [_cryptography_certificate(cert) for cert in chain] or None
    return pkcs12.serialize_key_and_certificates(name, private_key, certificate, cas, encryption)


def _cryptography_certificate(cert: x509.Certificate | asn1_x509.Certificate) -> x509.Certificate:
    return to_cryptography(cert) if isinstance(cert, asn1_x509.Certificate) else cert
