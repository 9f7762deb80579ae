"""Writing new O'zDSt .pfx files (`cryptography` cannot write keys it does not know)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509

from ...crypto.ozdst_keys import OzdstPrivateKey
from ..errors import KeyErrorKind, KeyStoreError
from .bags import (
    build_attributes,
    cert_bag,
    data_content,
    encrypted_content,
    pfx_of,
    safe_contents,
    shrouded_key_bag,
)
from .mac import mac_data
from .ozdst_backend import certificate_ozdst_key
from .pbe import OID_PBE_3DES, PbeScheme

#: What the vendor's Java 8 agent reads: PKCS#12 PBE with 3-key 3DES, SHA-1 KDF, HMAC-SHA1 MAC.
WRITE_ITERATIONS = 2048
SALT_BYTES = 20  # Java's PKCS12KeyStore uses 20-byte salts
LEGACY_SCHEME = PbeScheme(OID_PBE_3DES, WRITE_ITERATIONS, SALT_BYTES)


def serialize_ozdst_pfx(private_key: OzdstPrivateKey, certificate_der: bytes, chain_der: Sequence[bytes],
                        password: str, alias: str) -> bytes:
    """An O'zDSt .pfx in the legacy layout the vendor's Java 8 agent opens.

    PKCS#12 v3, authSafe = data holding (i) a plain SafeContents with the pkcs8ShroudedKeyBag
    (pbeWithSHAAnd3-KeyTripleDES-CBC, 2048 iterations, friendlyName = alias, localKeyId) and (ii) an
    encryptedData SafeContents with the certificate bags (3DES too); MAC HMAC-SHA1 with the PKCS#12 KDF.
    The key is PKCS#8 in E-IMZO's own encoding (`OzdstPrivateKey.pkcs8_der`).
    """
    if not password:
        raise ValueError("a key file needs a non-empty password")
    certificate = asn1_x509.Certificate.load(certificate_der)
    public = certificate_ozdst_key(certificate)
    if public is None or public.curve != private_key.curve or public.point != private_key.public_point:
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, "the private key does not belong to the certificate")
    local_key_id = hashlib.sha1(certificate_der).digest()  # noqa: S324 - OpenSSL's localKeyId convention
    attributes = build_attributes(alias.lower(), local_key_id)
    key_bag = shrouded_key_bag(private_key.pkcs8_der(), password, LEGACY_SCHEME, attributes)
    cert_bags = [cert_bag(certificate_der, attributes), *(cert_bag(der, None) for der in chain_der)]
    auth_safe = asn1_pkcs12.AuthenticatedSafe(
        [
            data_content(safe_contents([key_bag])),
            encrypted_content(safe_contents(cert_bags), password, LEGACY_SCHEME),
        ]
    ).dump()
    return pfx_of(auth_safe, mac_data(auth_safe, password, "sha1", WRITE_ITERATIONS, SALT_BYTES))
