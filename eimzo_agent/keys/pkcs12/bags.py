"""Building the encrypted parts of a PFX: shrouded key bags, certificate bags and encrypted containers."""

from __future__ import annotations

from asn1crypto import cms as asn1_cms
from asn1crypto import keys as asn1_keys
from asn1crypto import pkcs12 as asn1_pkcs12

from ...crypto.der import tlv
from .pbe import PbeScheme, encrypt_pbe


def build_attributes(name: str | None, local_key_id: bytes | None) -> asn1_pkcs12.Attributes | None:
    """friendlyName (BMPString, as RFC 7292 says) and localKeyId attributes; None when both are absent."""
    attributes = []
    if name is not None:
        attributes.append({"type": "friendly_name", "values": [name]})
    if local_key_id is not None:
        attributes.append({"type": "local_key_id", "values": [local_key_id]})
    return asn1_pkcs12.Attributes(attributes) if attributes else None


def shrouded_key_bag(pkcs8: bytes, password: str, scheme: PbeScheme,
                     attributes: asn1_pkcs12.Attributes | None) -> asn1_pkcs12.SafeBag:
    """A pkcs8ShroudedKeyBag of the PKCS#8 DER `pkcs8`, encrypted under `scheme`, carrying `attributes` as given."""
    algorithm, ciphertext = encrypt_pbe(scheme, pkcs8, password)
    value = asn1_keys.EncryptedPrivateKeyInfo({"encryption_algorithm": algorithm, "encrypted_data": ciphertext})
    return _safe_bag("pkcs8_shrouded_key_bag", value, attributes)


def cert_bag(der: bytes, attributes: asn1_pkcs12.Attributes | None) -> bytes:
    """A certBag SafeBag (x509Certificate) around the certificate DER `der`, as DER.

    Written by hand on purpose: asn1crypto re-encodes any value whose length octets end in 0x80 (it reads that as
    an indefinite length), and re-encoding a certificate bag makes it parse the certificate — which fails for key
    algorithms it does not know (O'zDSt). Whether a bag's length ends in 0x80 depends on the name and serial, so
    that failed at random. Here the certificate goes in as the bytes it is.
    """
    cert_value = tlv(0xA0, tlv(0x04, der))  # certValue [0] EXPLICIT OCTET STRING
    value = tlv(0x30, _OID_X509_CERTIFICATE + cert_value)
    body = _OID_CERT_BAG + tlv(0xA0, value)  # bagValue [0] EXPLICIT CertBag
    if attributes is not None:
        body += attributes.dump()
    return tlv(0x30, body)


def safe_contents(bags: list[asn1_pkcs12.SafeBag | bytes]) -> bytes:
    """SafeContents DER of bags given as objects or as DER (bags with certificates must be DER: see `cert_bag`)."""
    return tlv(0x30, b"".join(bag if isinstance(bag, bytes) else bag.dump() for bag in bags))


#: DER of the OIDs certBag (1.2.840.113549.1.12.10.1.3) and x509Certificate (1.2.840.113549.1.9.22.1).
_OID_CERT_BAG = bytes.fromhex("060b2a864886f70d010c0a0103")
_OID_X509_CERTIFICATE = bytes.fromhex("060a2a864886f70d01091601")


def _safe_bag(bag_id: str, value: object, attributes: asn1_pkcs12.Attributes | None) -> asn1_pkcs12.SafeBag:
    bag: dict[str, object] = {"bag_id": bag_id, "bag_value": value}
    if attributes is not None:
        bag["bag_attributes"] = attributes
    return asn1_pkcs12.SafeBag(bag)


def data_content(safe_contents: bytes) -> asn1_cms.ContentInfo:
    """An authSafe `data` ContentInfo holding the SafeContents DER `safe_contents` unencrypted."""
    return asn1_cms.ContentInfo({"content_type": "data", "content": safe_contents})


def encrypted_content(safe_contents: bytes, password: str, scheme: PbeScheme) -> asn1_cms.ContentInfo:
    """An authSafe `encrypted_data` ContentInfo holding the SafeContents DER `safe_contents`."""
    algorithm, ciphertext = encrypt_pbe(scheme, safe_contents, password)
    encrypted = asn1_cms.EncryptedData(
        {
            "version": "v0",
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": algorithm,
                "encrypted_content": ciphertext,
            },
        }
    )
    return asn1_cms.ContentInfo({"content_type": "encrypted_data", "content": encrypted})


def pfx_of(auth_safe: bytes, mac: asn1_pkcs12.MacData | None) -> bytes:
    """A PFX v3 around the AuthenticatedSafe DER `auth_safe`, with `mac` when given."""
    pfx: dict[str, object] = {"version": "v3", "auth_safe": data_content(auth_safe)}
    if mac is not None:
        pfx["mac_data"] = mac
    return asn1_pkcs12.Pfx(pfx).dump()
