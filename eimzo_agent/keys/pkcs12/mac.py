"""The file's integrity check: HMAC over the authSafe with a key from the PKCS#12 KDF (RFC 7292 Appendix B).

Checked before anything is decrypted, so that a wrong password is reported as such, not as damage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12

from ..errors import KeyErrorKind, KeyStoreError
from .asn1 import ASN1_ERRORS
from .kdf import bmp_passwords, check_iterations, pkcs12_kdf
from .structure import auth_safe_bytes, has_mac

MAC_HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})


def verify_mac(pfx: asn1_pkcs12.Pfx, password: str) -> bool:
    """Check the file's MAC with `password`: True if it verified, False if the file has no MAC.

    Raises WRONG_PASSWORD on mismatch, UNSUPPORTED for a MAC algorithm we do not know (e.g. PBMAC1).
    """
    if not has_mac(pfx):
        return False
    name, iterations, _salt_size = mac_parameters(pfx)
    mac_data = pfx["mac_data"]
    expected, salt = mac_data["mac"]["digest"].native, mac_data["mac_salt"].native
    content = auth_safe_bytes(pfx)
    size = hashlib.new(name).digest_size
    for secret in bmp_passwords(password):
        key = pkcs12_kdf(name, secret, salt, 3, iterations, size)
        if hmac.compare_digest(hmac.new(key, content, name).digest(), expected):
            return True
    raise KeyStoreError(KeyErrorKind.WRONG_PASSWORD, f"the password does not match the file's MAC ({name})")


def mac_parameters(pfx: asn1_pkcs12.Pfx) -> tuple[str, int, int]:
    """(hash name, iterations, salt length) of the file's MAC; DAMAGED_FILE / UNSUPPORTED when unusable."""
    try:
        mac_data = pfx["mac_data"]
        algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"]
        name, iterations = algorithm.native, mac_data["iterations"].native
        salt, digest = mac_data["mac_salt"].native, mac_data["mac"]["digest"].native
        auth_safe_bytes(pfx)
        if not isinstance(salt, bytes) or not isinstance(digest, bytes):
            raise ValueError("MAC salt or digest missing")
    except ASN1_ERRORS as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"malformed MAC data: {exc}") from exc
    if name not in MAC_HASHES:
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"MAC algorithm {algorithm.dotted} is not supported")
    check_iterations(iterations, "MAC")
    return name, iterations, len(salt)


def mac_data(content: bytes, password: str, hash_name: str, iterations: int, salt_size: int) -> asn1_pkcs12.MacData:
    """A MacData for an authSafe `content` under `password`, with a fresh salt."""
    salt = secrets.token_bytes(salt_size)
    key = pkcs12_kdf(hash_name, bmp_passwords(password)[0], salt, 3, iterations, hashlib.new(hash_name).digest_size)
    return asn1_pkcs12.MacData(
        {
            "mac": {
                "digest_algorithm": {"algorithm": hash_name, "parameters": core.Null()},
                "digest": hmac.new(key, content, hash_name).digest(),
            },
            "mac_salt": salt,
            "iterations": iterations,
        }
    )
