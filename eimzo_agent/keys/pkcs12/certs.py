"""Certificates between asn1crypto and `cryptography`, key/certificate matching and chain order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from asn1crypto import x509 as asn1_x509

from ...lazy_module import lazy_module

if TYPE_CHECKING:
    from cryptography import exceptions, x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
else:  # imported when a file's RSA/EC key is first opened (see lazy_module)
    exceptions = lazy_module("cryptography.exceptions")
    x509 = lazy_module("cryptography.x509")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def to_cryptography(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def certificate_der(cert: x509.Certificate | asn1_x509.Certificate) -> bytes:
    if isinstance(cert, asn1_x509.Certificate):
        return cert.dump()
    return cert.public_bytes(serialization.Encoding.DER)


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_public_key(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    try:
        return _public_der(private_key.public_key()) == _public_der(cert.public_key())
    except (ValueError, exceptions.UnsupportedAlgorithm):
        return False


def issuer_order(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """`others` in issuer order (leaf's issuer, its issuer, ...), unrelated ones after; leaf dropped.

    Only `.subject` and `.issuer` are compared, so asn1crypto certificates work too (with DN matching).
    """
    remaining = [cert for cert in others if cert != leaf]
    chain: list[x509.Certificate] = []
    current = leaf
    while current.subject != current.issuer:
        issuer = next((cert for cert in remaining if cert.subject == current.issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return chain + remaining
