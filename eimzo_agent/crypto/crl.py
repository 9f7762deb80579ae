"""Certificate revocation lists (RFC 5280 §5): read one, check it was issued and signed by a CA, look up a serial.

Pure library, no network: `portal.revocation` downloads the list and passes the bytes here. Signatures go through
`x509_info.verify_signature`, so O'zDSt-signed lists of the national CAs are checked like RSA and ECDSA ones.
Only complete CRLs are used: a delta CRL, or one with a critical extension this module does not understand, is
refused rather than read as "nothing revoked".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import crl as asn1_crl
from asn1crypto import pem, x509

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.x509_info import AlgorithmError

__all__ = ["REASON_NAMES", "Crl", "CrlError", "Revocation", "check_crl", "load_crl", "reason_name"]

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)

#: asn1crypto's CRLReason names -> RFC 5280's (what revokedStatusInfo.crlReason and the dev tools print).
REASON_NAMES = {
    "unspecified": "unspecified",
    "key_compromise": "keyCompromise",
    "ca_compromise": "cACompromise",
    "affiliation_changed": "affiliationChanged",
    "superseded": "superseded",
    "cessation_of_operation": "cessationOfOperation",
    "certificate_hold": "certificateHold",
    "remove_from_crl": "removeFromCRL",
    "privilege_withdrawn": "privilegeWithdrawn",
    "aa_compromise": "aACompromise",
}

#: Critical CRL extensions whose meaning is handled here (an IDP only narrows scope; we take the CA's word).
_UNDERSTOOD_CRITICAL = frozenset({"issuing_distribution_point"})


class CrlError(ValueError):
    """The bytes are not a usable CRL, or the CRL does not check out against its issuer or the clock."""


def reason_name(native: str | None) -> str | None:
    """RFC 5280's name for an asn1crypto CRLReason value (None stays None)."""
    return None if native is None else REASON_NAMES.get(native, native)


@dataclass(frozen=True)
class Revocation:
    """One entry of a CRL."""

    time: dt.datetime
    reason: str | None  # RFC 5280 name, e.g. "keyCompromise"; None when the entry gives none


@dataclass(frozen=True, eq=False)
class Crl:
    """A parsed CRL: its times and revoked serials, ready for `check_crl` and look-ups."""

    asn1: asn1_crl.CertificateList = field(repr=False)
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: dict[int, Revocation] = field(repr=False)

    def lookup(self, serial: int) -> Revocation | None:
        return self.revoked.get(serial)


def load_crl(data: bytes) -> Crl:
    """Parse a CRL given as DER or PEM ("X509 CRL"); CrlError for anything else or a delta CRL."""
    try:
        if pem.detect(data):
            kind, _, data = pem.unarmor(data)
            if kind != "X509 CRL":
                raise CrlError(f"the PEM file holds a {kind}, not an X509 CRL")
        parsed = asn1_crl.CertificateList.load(bytes(data), strict=True)
        tbs = parsed["tbs_cert_list"]
        this_update = tbs["this_update"].native
        next_update = tbs["next_update"].native
        if parsed.delta_crl_indicator_value is not None:
            raise CrlError("a delta CRL cannot be used alone")
        unknown = parsed.critical_extensions - _UNDERSTOOD_CRITICAL
        if unknown:
            raise CrlError(f"the CRL has critical extensions this checker does not understand: {sorted(unknown)}")
        revoked: dict[int, Revocation] = {}
        for entry in tbs["revoked_certificates"]:
            reason = entry.crl_reason_value
            revoked[entry["user_certificate"].native] = Revocation(
                entry["revocation_date"].native, reason_name(reason.native if reason is not None else None))
        if not isinstance(this_update, dt.datetime):
            raise CrlError("the CRL has no thisUpdate")
    except CrlError:
        raise
    except _ASN1_ERRORS as exc:
        raise CrlError(f"not a CRL: {exc}") from exc
    return Crl(parsed, this_update, next_update, revoked)


def check_crl(crl: Crl, issuer: x509.Certificate, *, now: dt.datetime, skew: dt.timedelta) -> None:
    """Raise CrlError unless `issuer` issued and signed `crl` and the CRL is current at `now` (± `skew`)."""
    tbs = crl.asn1["tbs_cert_list"]
    try:
        if tbs["issuer"] != issuer["tbs_certificate"]["subject"]:
            raise CrlError("the CRL was issued by another CA")
        usage = issuer.key_usage_value
        if usage is not None and "crl_sign" not in usage.native:
            raise CrlError("the issuer's key usage does not allow signing CRLs")
        signature_oid = crl.asn1["signature_algorithm"]["algorithm"].dotted
        if signature_oid != tbs["signature"]["algorithm"].dotted:
            raise CrlError("the CRL's two signature algorithm fields differ")
        valid = x509_info.verify_signature(x509_info.spki_der(issuer), signature_oid, tbs.dump(),
                                           crl.asn1["signature"].native)
    except AlgorithmError as exc:
        raise CrlError(f"the CRL's signature cannot be checked: {exc}") from exc
    except _ASN1_ERRORS as exc:
        raise CrlError(f"the CRL cannot be read: {exc}") from exc
    if not valid:
        raise CrlError("the CRL's signature does not verify with the issuer's key")
    if crl.this_update > now + skew:
        raise CrlError(f"the CRL was issued in the future ({crl.this_update:%Y-%m-%d %H:%M:%S} UTC)")
    if crl.next_update is not None and crl.next_update < now - skew:
        raise CrlError(f"the CRL is out of date (next update was due {crl.next_update:%Y-%m-%d %H:%M:%S} UTC)")
