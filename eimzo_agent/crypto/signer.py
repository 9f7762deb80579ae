"""What the CMS builder needs from a private key, whatever store or algorithm it comes from.

A `Signer` exists only for the few milliseconds of one signing operation: key stores create it after the user
typed the password and drop it right after. The CMS layer never sees where the key lives (file, token, card).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

from asn1crypto import algos, core, x509

from ..lazy_module import lazy_module

if TYPE_CHECKING:
    from cryptography import x509 as crypto_x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
else:  # imported at the first RSA/EC signature: an idle agent stays without `cryptography` (see lazy_module)
    crypto_x509 = lazy_module("cryptography.x509")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")

#: Which signed attributes the signer's CMS carries: "cades" (contentType, signingTime, messageDigest,
#: signingCertificateV2) or "eimzo" (E-IMZO's three, for O'zDSt/OZMST keys).
CmsProfile = Literal["cades", "eimzo"]


@runtime_checkable
class Signer(Protocol):
    """A private key ready to sign, with the certificates that go into the CMS."""

    cms_profile: ClassVar[CmsProfile]

    #: The signer's certificate (end entity).
    certificate: x509.Certificate
    #: Further certificates to embed (issuing CAs), end entity excluded; may be empty.
    chain: Sequence[x509.Certificate]
    #: AlgorithmIdentifier for SignerInfo.digestAlgorithm and SignedData.digestAlgorithms.
    digest_algorithm: algos.DigestAlgorithm
    #: AlgorithmIdentifier for SignerInfo.signatureAlgorithm.
    signature_algorithm: algos.SignedDigestAlgorithm

    def digest(self, data: bytes) -> bytes:
        """Hash `data` with `digest_algorithm` (used for the messageDigest attribute)."""

    def sign(self, message: bytes) -> bytes:
        """Sign `message` (the DER of the signed attributes): hash it and produce the signature value."""


@dataclass
class CryptographySigner:
    """RSA (PKCS#1 v1.5) or ECDSA signer over SHA-256, backed by a `cryptography` private key."""

    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate] = field(default_factory=tuple)

    cms_profile: ClassVar[CmsProfile] = "cades"

    def __post_init__(self) -> None:
        self.digest_algorithm = algos.DigestAlgorithm({"algorithm": "sha256", "parameters": None})
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            self.signature_algorithm = algos.SignedDigestAlgorithm(
                # RFC 4055: sha256WithRSAEncryption carries an explicit NULL.
                {"algorithm": "sha256_rsa", "parameters": core.Null()}
            )
        elif isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            # ECDSA AlgorithmIdentifiers carry no parameters (RFC 5758 §3.2).
            self.signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
        else:  # pragma: no cover - guarded by the key stores
            raise TypeError(f"unsupported key type {type(self.private_key).__name__}")

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def matches_certificate(self) -> bool:
        """The private key belongs to the certificate (same public key)."""
        try:
            public = crypto_x509.load_der_x509_certificate(self.certificate.dump()).public_key()
        except ValueError:
            return False
        return public == self.private_key.public_key()
