"""The backend for O'zDSt / OZMST keys in .pfx files (keys `cryptography` cannot parse).

E-IMZO's .pfx is ordinary PKCS#12 (3DES / RC2 / PBES2 bags, HMAC MAC); only the PKCS#8 key algorithm is
national, which is why `cryptography` refuses the whole file. `open_pfx` has verified the MAC before a backend
runs, so this one just decrypts the key bags with the shared building blocks, finds each key's certificate and
checks that d·G is the certificate's point. It declines (returns None) every file whose keys are not
O'zDSt/OZMST; `backends.default_backends` puts it after the `cryptography` backend.
"""

from __future__ import annotations

from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509

from ...crypto import ozdst
from ...crypto.ozdst_keys import (
    OzdstPrivateKey,
    OzdstPublicKey,
    OzdstSigner,
    Pkcs8Key,
    certificate_public_key,
    is_ozdst_key_oid,
    read_pkcs8,
)
from ..alias import build_alias
from ..errors import KeyErrorKind, KeyStoreError
from .asn1 import ASN1_ERRORS
from .certs import issuer_order
from .entries import UnlockedKey
from .keybags import decrypt_key_bag, key_bags, pkcs8_algorithm
from .structure import bag_attributes, bag_certificate, iter_safe_bags, parse_pfx

_Cert = asn1_x509.Certificate
_CertEntry = tuple[asn1_x509.Certificate, bytes | None]  # certificate, localKeyId


class OzdstBackend:
    """Opens .pfx files whose key bags hold O'zDSt or OZMST keys."""

    name = "ozdst"

    def open(self, data: bytes, password: str) -> list[UnlockedKey] | None:
        pfx = parse_pfx(data)
        keys = []
        for bag in key_bags(pfx, password):
            der = _decrypted_ozdst_key(pfx, bag, password)
            if der is None:
                return None  # not (only) national keys: not ours, open_pfx reports it as unsupported
            keys.append((bag, der))
        if not keys:
            return None
        certs = [(cert, bag_attributes(bag)[1]) for bag in iter_safe_bags(pfx, password)
                 if (cert := bag_certificate(bag)) is not None]
        return [_entry(bag, der, certs) for bag, der in keys]


def _decrypted_ozdst_key(pfx: asn1_pkcs12.Pfx, bag: asn1_pkcs12.SafeBag, password: str) -> bytes | None:
    """The PKCS#8 DER of an O'zDSt/OZMST key bag, None for any other key (or a cipher we do not know)."""
    try:
        der = decrypt_key_bag(pfx, bag, password)
    except KeyStoreError as exc:
        if exc.kind is KeyErrorKind.UNSUPPORTED:
            return None
        raise
    try:
        algorithm = pkcs8_algorithm(der)
    except ASN1_ERRORS:
        return None
    return der if is_ozdst_key_oid(algorithm.oid) else None


def _entry(bag: asn1_pkcs12.SafeBag, der: bytes, certs: list[_CertEntry]) -> UnlockedKey:
    # The alias is read by the same function `list_aliases` uses (same friendlyName quirks), or `load_key` and
    # signing would disagree.
    name, key_id = bag_attributes(bag)
    key, cert = _key_and_certificate(der, key_id, certs)
    chain = tuple(issuer_order(cert, [other for other, _ in certs if other is not cert]))  # type: ignore[arg-type]
    # The same rule as list_aliases: friendlyName lower-cased, else E-IMZO's alias of the certificate.
    alias = name.lower() if name is not None else build_alias(cert)
    return UnlockedKey(alias, OzdstSigner(key, cert, chain), cert, chain)


def _key_and_certificate(der: bytes, key_id: bytes | None,
                         certs: list[_CertEntry]) -> tuple[OzdstPrivateKey, _Cert]:
    """The key and its certificate: the one with the same localKeyId, else any whose point is d·G."""
    pkcs8 = _read_key(der)
    paired = [cert for cert, cert_key_id in certs if key_id is not None and cert_key_id == key_id]
    by_curve: dict[str, OzdstPrivateKey] = {}  # d·G is costly: computed once per curve, not per certificate
    if pkcs8.point is not None:  # E-IMZO's encoding: the key says its curve (and its point must be d·G)
        key = _bind(pkcs8)
        by_curve = {curve.name: key for curve in ozdst.CURVES}
    for cert in paired or [cert for cert, _ in certs]:
        public = certificate_ozdst_key(cert)
        if public is None:
            continue
        key = by_curve.get(public.curve.name) or _bound_or_none(pkcs8, public)
        if key is None:
            continue
        by_curve[public.curve.name] = key
        if key.curve == public.curve and key.public_point == public.point:
            return key, cert
    detail = "the private key does not belong to its certificate" if paired else \
        "no certificate in the file belongs to the key"
    raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, detail)


def certificate_ozdst_key(cert: _Cert) -> OzdstPublicKey | None:
    """The certificate's O'zDSt public key, None when it has another kind of key (or a broken one)."""
    try:
        return certificate_public_key(cert)
    except ValueError:
        return None


def _read_key(der: bytes) -> Pkcs8Key:
    try:
        return read_pkcs8(der)
    except ValueError as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"unreadable O'zDSt private key: {exc}") from exc


def _bind(pkcs8: Pkcs8Key) -> OzdstPrivateKey:
    try:
        return pkcs8.bind()
    except ValueError as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"inconsistent O'zDSt private key: {exc}") from exc


def _bound_or_none(pkcs8: Pkcs8Key, public: OzdstPublicKey) -> OzdstPrivateKey | None:
    """The key on `public`'s curve; None when d cannot be a key there (then that certificate is not its own)."""
    try:
        return pkcs8.bind(public)
    except ValueError:
        return None
