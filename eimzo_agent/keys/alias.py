"""E-IMZO certificate aliases: build them from a certificate, read them back into an owner record.

The alias is what `pfx.list_all_certificates` returns and what `load_key` matches, so its format is part of
the wire contract: sites parse it (some naively) to show the owner, TIN, PINFL and validity of each key.
E-IMZO writes it into the key file's friendlyName at enrollment; Java's PKCS12 keystore lower-cases it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from asn1crypto import x509

OID_PINFL = "1.2.860.3.16.1.2"  # personal identification number of an individual (14 digits)
OID_ORG_TIN = "1.2.860.3.16.1.1"  # TIN of a legal entity (9 digits)
OID_UID = "0.9.2342.19200300.100.1.1"  # E-IMZO puts the person's TIN here

#: Subject attributes E-IMZO writes first, in this order, with these labels.
_PRIMARY: tuple[tuple[str, str], ...] = (
    ("2.5.4.3", "cn"),
    ("2.5.4.42", "name"),
    ("2.5.4.4", "surname"),
    ("2.5.4.7", "l"),
    ("2.5.4.8", "st"),
    ("2.5.4.6", "c"),
    ("2.5.4.10", "o"),
    ("2.5.4.11", "ou"),
    (OID_UID, "uid"),
    (OID_PINFL, OID_PINFL),
    ("2.5.4.12", "t"),
    (OID_ORG_TIN, OID_ORG_TIN),
    ("2.5.4.15", "businesscategory"),
)

#: BouncyCastle-style labels for the rarer attributes; anything else is written as its dotted OID.
#: The subject's own serialNumber (2.5.4.5) deliberately stays dotted: "serialnumber" is the certificate
#: serial in an alias and a second one would shadow it for parsers taking the first occurrence.
_SECONDARY: dict[str, str] = {
    "1.2.840.113549.1.9.1": "e",
    "2.5.4.9": "street",
    "2.5.4.17": "postalcode",
    "2.5.4.43": "initials",
    "2.5.4.44": "generation",
    "2.5.4.46": "dnqualifier",
    "2.5.4.65": "pseudonym",
    "0.9.2342.19200300.100.1.25": "dc",
}

_ESCAPED = frozenset(',+"\\<>;=')
_DATE_FORMAT = "%Y.%m.%d %H:%M:%S"


def _attribute_value(value: Any) -> str:
    """The text of an attribute value; non-string values as BouncyCastle prints them (#hex of the DER)."""
    try:
        native = value.native
    except (ValueError, TypeError, KeyError):
        native = None
    if isinstance(native, str):
        return native
    return "#" + value.dump().hex()


def subject_attributes(cert: x509.Certificate) -> list[tuple[str, str]]:
    """(dotted OID, text) for every subject attribute, in certificate order (multi-valued RDNs flattened)."""
    return [
        (atv["type"].dotted, _attribute_value(atv["value"]))
        for rdn in cert.subject.chosen
        for atv in rdn
    ]


def escape_value(value: str) -> str:
    """Backslash-escape the characters BouncyCastle escapes in a DN value."""
    return "".join("\\" + ch if ch in _ESCAPED else ch for ch in value)


def _format_time(moment: datetime.datetime, tz: datetime.tzinfo | None) -> str:
    local = moment.astimezone(tz) if tz is not None else moment.astimezone()
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"{local.year:04d}.{local.month:02d}.{local.day:02d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def _ordered_pairs(attributes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """E-IMZO's fixed order first, then the remaining attributes as they appear in the certificate."""
    pairs: list[tuple[str, str]] = []
    primary_oids = {oid for oid, _ in _PRIMARY}
    for oid, label in _PRIMARY:
        pairs.extend((label, value) for attr_oid, value in attributes if attr_oid == oid)
    pairs.extend(
        (_SECONDARY.get(oid, oid), value) for oid, value in attributes if oid not in primary_oids
    )
    return pairs


def build_alias(cert: x509.Certificate, *, tz: datetime.tzinfo | None = None) -> str:
    """The alias E-IMZO gives a key with this certificate (validity in `tz`, default the machine's zone)."""
    validity = cert["tbs_certificate"]["validity"]
    pairs = _ordered_pairs(subject_attributes(cert))
    pairs.append(("serialnumber", format(cert.serial_number, "x")))
    pairs.append(("validfrom", _format_time(validity["not_before"].native, tz)))
    pairs.append(("validto", _format_time(validity["not_after"].native, tz)))
    return ",".join(f"{label}={escape_value(value)}" for label, value in pairs).lower()


def parse_alias(alias: str) -> dict[str, str]:
    """Split an alias into {lower-case key: value}, honouring backslash escapes; the first occurrence wins."""
    result: dict[str, str] = {}
    key: list[str] = []
    value: list[str] = []
    current = key
    chars = iter(alias)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, ""))
        elif ch == "=" and current is key:
            current = value
        elif ch == ",":
            _store_pair(result, key, value, current is value)
            key, value = [], []
            current = key
        else:
            current.append(ch)
    _store_pair(result, key, value, current is value)
    return result


def _store_pair(result: dict[str, str], key: list[str], value: list[str], has_value: bool) -> None:
    name = "".join(key).strip().lower()
    if name and has_value:
        result.setdefault(name, "".join(value))


def _parse_alias_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text.strip(), _DATE_FORMAT)
    except ValueError:
        return None


@dataclass(frozen=True)
class Owner:
    """Who a key belongs to, as far as the alias or certificate says."""

    cn: str | None = None
    name: str | None = None
    surname: str | None = None
    pinfl: str | None = None
    tin: str | None = None  # the person's TIN (uid)
    org: str | None = None
    org_tin: str | None = None  # the legal entity's TIN: present only on employees' keys
    title: str | None = None
    serial: str | None = None  # certificate serial, lower-case hex
    valid_from: datetime.datetime | None = None  # naive, local time (aliases carry no zone)
    valid_to: datetime.datetime | None = None

    @property
    def is_legal_entity(self) -> bool:
        return bool(self.org_tin)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: dates as ISO 8601 strings.

        The given name goes out as "given_name": in E-IMZO's key listings "name" is the key file's name, and
        callers merge this dict into such rows.
        """
        return {
            "cn": self.cn,
            "given_name": self.name,
            "surname": self.surname,
            "pinfl": self.pinfl,
            "tin": self.tin,
            "org": self.org,
            "org_tin": self.org_tin,
            "title": self.title,
            "serial": self.serial,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "is_legal_entity": self.is_legal_entity,
        }


def _owner_from_fields(fields: dict[str, str], valid_from: datetime.datetime | None,
                       valid_to: datetime.datetime | None) -> Owner:
    def get(key: str) -> str | None:
        return fields.get(key) or None  # an empty value means "not there" to every client

    return Owner(
        cn=get("cn"),
        name=get("name"),
        surname=get("surname"),
        pinfl=get(OID_PINFL),
        tin=get("uid"),
        org=get("o"),
        org_tin=get(OID_ORG_TIN),
        title=get("t"),
        serial=get("serialnumber"),
        valid_from=valid_from,
        valid_to=valid_to,
    )


def owner_from_alias(alias: str) -> Owner:
    """Owner fields from an alias; dates as naive local time (that is how the alias states them)."""
    fields = parse_alias(alias)
    return _owner_from_fields(
        fields, _parse_alias_time(fields.get("validfrom")), _parse_alias_time(fields.get("validto"))
    )


def owner_from_certificate(cert: x509.Certificate, *, tz: datetime.tzinfo | None = None) -> Owner:
    """Owner fields straight from the certificate, original letter case kept.

    Dates are naive local time (in `tz`, default the machine's zone) like `owner_from_alias`, so callers can
    compare owners from either source.
    """
    fields: dict[str, str] = {}
    labels = dict(_PRIMARY)
    for oid, value in subject_attributes(cert):
        if oid in labels:
            fields.setdefault(labels[oid], value)
    fields["serialnumber"] = format(cert.serial_number, "x")
    validity = cert["tbs_certificate"]["validity"]

    def local(moment: datetime.datetime) -> datetime.datetime:
        return moment.astimezone(tz).replace(tzinfo=None)

    return _owner_from_fields(
        fields, local(validity["not_before"].native), local(validity["not_after"].native)
    )
