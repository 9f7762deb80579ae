"""Listing a file's keys without the password, as E-IMZO's `list_all_certificates` does."""

from __future__ import annotations

from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509

from ..alias import build_alias
from .asn1 import ASN1_ERRORS
from .structure import bag_attributes, bag_certificate, is_key_bag, iter_safe_bags, parse_pfx

_CertEntry = tuple[asn1_x509.Certificate, bytes | None]  # certificate, localKeyId


def list_aliases(data: bytes) -> list[str]:
    """Aliases of the key entries, read without the password: the friendlyName lower-cased, else the alias of
    the key's readable certificate, else "" (its certificate is encrypted)."""
    pfx = parse_pfx(data)
    bags = list(iter_safe_bags(pfx))
    key_bags = [bag for bag in bags if is_key_bag(bag)]
    certs = [(cert, bag_attributes(bag)[1]) for bag in bags if (cert := bag_certificate(bag)) is not None]
    return [_listed_alias(bag, certs, len(key_bags)) for bag in key_bags]


def _listed_alias(bag: asn1_pkcs12.SafeBag, certs: list[_CertEntry], key_count: int) -> str:
    name, key_id = bag_attributes(bag)
    if name is not None:
        return name.lower()
    cert = _certificate_for_key_bag(key_id, certs, key_count)
    if cert is None:
        return ""
    try:
        return build_alias(cert)
    except ASN1_ERRORS:
        return ""


def _certificate_for_key_bag(key_id: bytes | None, certs: list[_CertEntry],
                             key_count: int) -> asn1_x509.Certificate | None:
    """The readable certificate of a key: by localKeyId, or the only end entity of a single-key file."""
    if key_id is not None:
        return next((cert for cert, cert_key_id in certs if cert_key_id == key_id), None)
    if key_count != 1:
        return None
    issuers = {cert.issuer.dump() for cert, _ in certs if cert.subject != cert.issuer}
    leaves = [cert for cert, _ in certs if cert.subject.dump() not in issuers]
    return leaves[0] if len(leaves) == 1 else None
