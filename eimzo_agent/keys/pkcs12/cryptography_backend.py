"""The backend for RSA and NIST EC (P-256/384/521) keys: `cryptography`'s PKCS#12 loader (3DES, RC2, PBES2/AES)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509

from ...crypto.signer import CryptographySigner
from ...lazy_module import lazy_module
from ..alias import build_alias
from ..errors import KeyErrorKind, KeyStoreError
from .certs import issuer_order, same_public_key, to_asn1
from .entries import UnlockedKey
from .keybags import KeyAlgorithm, key_algorithms, key_bag_names
from .structure import has_mac, iter_safe_bags, parse_pfx

if TYPE_CHECKING:
    from cryptography import exceptions
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
else:  # imported when an RSA/EC key file is first opened (see lazy_module)
    exceptions = lazy_module("cryptography.exceptions")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")
    pkcs12 = lazy_module("cryptography.hazmat.primitives.serialization.pkcs12")

OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
_EC_CURVES = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1", "1.3.132.0.35": "secp521r1"}
_EC_CURVE_NAMES = frozenset(_EC_CURVES.values())


class CryptographyBackend:
    """RSA and NIST EC keys; declines (None) files whose keys `cryptography` cannot use."""

    name = "cryptography"

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None:
        pfx = parse_pfx(data)
        unsupported: KeyStoreError | None = None
        try:
            found = key_algorithms(pfx, password)
        except KeyStoreError as exc:
            if exc.kind is not KeyErrorKind.UNSUPPORTED:
                raise
            found, unsupported = [], exc
        if any(algorithm is not None and not _loadable(algorithm) for algorithm in found):
            return None
        loaded = self._load(pfx, data, password, unsupported)
        if loaded is None:
            return None  # a cipher neither we nor cryptography know: perhaps another backend does
        if loaded.key is None:
            if found:
                raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "the key bag did not yield a private key")
            return []
        if not _usable_key(loaded.key):
            return None
        return [self._entry(pfx, loaded)]

    @staticmethod
    def _load(pfx: asn1_pkcs12.Pfx, data: bytes, password: str,
              unsupported: KeyStoreError | None) -> pkcs12.PKCS12KeyAndCertificates | None:
        # cryptography hands b"" and None (NULL) to OpenSSL differently; "no password" files use either.
        attempts: list[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
        error: Exception | None = None
        for attempt in attempts:
            try:
                return pkcs12.load_pkcs12(data, attempt)
            except (ValueError, TypeError, exceptions.UnsupportedAlgorithm) as exc:
                error = exc
        if unsupported is not None:
            return None
        if not has_mac(pfx):
            # Nothing vouched for the password yet: decrypting every container ourselves tells a wrong
            # password (raises WRONG_PASSWORD) from a file that cryptography cannot parse.
            for _bag in iter_safe_bags(pfx, password):
                pass
        reason = f"{type(error).__name__}: {error}"
        detail = f"the password is right, but cryptography cannot load the file ({reason})"
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail)

    @staticmethod
    def _entry(pfx: asn1_pkcs12.Pfx, loaded: pkcs12.PKCS12KeyAndCertificates) -> UnlockedKey:
        key = loaded.key
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        others = [item.certificate for item in loaded.additional_certs]
        if loaded.cert is not None:
            cert, name = loaded.cert.certificate, loaded.cert.friendly_name
        else:
            # No certificate paired with the key: take one whose public key is the key's, if any.
            cert = next((c for c in others if same_public_key(key, c)), None)
            if cert is None:
                detail = "no certificate in the file belongs to the key"
                raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, detail)
            others, name = [c for c in others if c is not cert], None
        asn1_cert = to_asn1(cert)
        chain = tuple(to_asn1(c) for c in issuer_order(cert, others))
        alias = _entry_alias(pfx, name, asn1_cert)
        return UnlockedKey(alias, CryptographySigner(key, asn1_cert, chain), asn1_cert, chain)


def _entry_alias(pfx: asn1_pkcs12.Pfx, cert_name: bytes | None, cert: asn1_x509.Certificate) -> str:
    """What `list_aliases` shows for the key: its bag's friendlyName, else E-IMZO's alias of its certificate.

    (`list_aliases` shows "" when that certificate is encrypted; `open_pfx` then picks the file's only key.)
    """
    names = key_bag_names(pfx)
    if len(names) == 1:
        return names[0].lower() if names[0] is not None else build_alias(cert)
    if cert_name:
        return cert_name.decode("utf-8", "replace").lower()
    return build_alias(cert)


def _loadable(algorithm: KeyAlgorithm) -> bool:
    if algorithm.oid == OID_RSA:
        return True
    # EC parameters other than a named curve (explicit, or implicit in SEC1) are judged after loading.
    return algorithm.oid == OID_EC and (algorithm.parameter is None or algorithm.parameter in _EC_CURVES)


def _usable_key(key: object) -> bool:
    if isinstance(key, rsa.RSAPrivateKey):
        return True
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_CURVE_NAMES
