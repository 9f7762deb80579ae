"""A `Signer` whose private key stays on a PKCS#11 token: the CMS builder hashes, the token signs.

RSA keys sign with CKM_RSA_PKCS over a DigestInfo we build (raw PKCS#1 v1.5 is the mechanism every token
has; CKM_SHA256_RSA_PKCS is missing on many), EC keys with CKM_ECDSA over the digest; the token returns r‖s,
which CMS wants DER-encoded (RFC 5753 ECDSA-Sig-Value).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from asn1crypto import algos, core, x509

from eimzo_agent.crypto.signer import CmsProfile
from eimzo_agent.lazy_module import lazy_module

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import utils as asymmetric_utils
else:  # imported at the first token signature (see lazy_module)
    asymmetric_utils = lazy_module("cryptography.hazmat.primitives.asymmetric.utils")

#: DER prefix of DigestInfo{sha256, NULL} (RFC 8017 §9.2 note 1); the 32-byte digest follows.
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class UnsupportedTokenKey(Exception):
    """The certificate's key algorithm is one we cannot sign with on a token (e.g. O'zDSt, GOST)."""


@dataclass
class TokenSigner:
    """Signs through an open, logged-in session; lives only inside `Pkcs11Store.sign`."""

    session: Any
    private_key: Any
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate]
    key_algorithm: str  # "rsa" or "ec"

    cms_profile: ClassVar[CmsProfile] = "cades"

    @classmethod
    def for_session(cls, session: Any, cka_id: bytes, certificate: x509.Certificate,
                    chain: Sequence[x509.Certificate]) -> TokenSigner:
        """Find the private key with `cka_id` in the logged-in `session` (NoSuchKey if the token lacks it)."""
        from pkcs11 import Attribute, ObjectClass
        from pkcs11.exceptions import NoSuchKey

        algorithm = certificate.public_key.algorithm
        if algorithm not in ("rsa", "ec"):
            raise UnsupportedTokenKey(algorithm)
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: cka_id}))
        if not keys:
            raise NoSuchKey(f"no private key with CKA_ID {cka_id.hex()}")
        return cls(session, keys[0], certificate, tuple(chain), algorithm)

    def __post_init__(self) -> None:
        self.digest_algorithm = algos.DigestAlgorithm({"algorithm": "sha256", "parameters": None})
        if self.key_algorithm == "rsa":
            self.signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa",
                                                                   "parameters": core.Null()})
        else:
            self.signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def sign(self, message: bytes) -> bytes:
        from pkcs11 import Mechanism

        digest = self.digest(message)
        if self.key_algorithm == "rsa":
            return bytes(self.private_key.sign(SHA256_DIGEST_INFO_PREFIX + digest, mechanism=Mechanism.RSA_PKCS))
        raw = bytes(self.private_key.sign(digest, mechanism=Mechanism.ECDSA))
        half = len(raw) // 2
        r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        return asymmetric_utils.encode_dss_signature(r, s)
