"""The subject of a test certificate in E-IMZO's terms, shared by both development CAs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..keys.alias import OID_ORG_TIN, OID_PINFL

_DIGITS_14 = re.compile(r"[0-9]{14}")
_DIGITS_9 = re.compile(r"[0-9]{9}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True)
class SubjectFields:
    """Subject of a test certificate, in E-IMZO's terms."""

    cn: str
    name: str | None = None  # givenName
    surname: str | None = None
    pinfl: str | None = None  # 14 digits
    tin: str | None = None  # person's TIN, 9 digits (goes into UID)
    org: str | None = None
    org_tin: str | None = None  # legal entity's TIN, 9 digits
    title: str | None = None
    locality: str | None = None
    region: str | None = None
    country: str = "UZ"
    business_category: str | None = None

    def validate(self) -> None:
        """Raise ValueError with a message fit for the command line if a field is malformed."""
        if not self.cn.strip():
            raise ValueError("the common name (cn) must not be empty")
        _check_digits(self.pinfl, _DIGITS_14, "PINFL", 14)
        _check_digits(self.tin, _DIGITS_9, "TIN", 9)
        _check_digits(self.org_tin, _DIGITS_9, "organisation TIN", 9)
        if not _COUNTRY.fullmatch(self.country):
            raise ValueError(f"country must be a two-letter code, got {self.country!r}")

    def x509_name(self) -> x509.Name:
        """The subject in E-IMZO's RDN order, present fields only."""
        fields: list[tuple[x509.ObjectIdentifier, str | None]] = [
            (NameOID.COMMON_NAME, self.cn),
            (NameOID.GIVEN_NAME, self.name),
            (NameOID.SURNAME, self.surname),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.STATE_OR_PROVINCE_NAME, self.region),
            (NameOID.COUNTRY_NAME, self.country.upper()),
            (NameOID.ORGANIZATION_NAME, self.org),
            (NameOID.TITLE, self.title),
            (NameOID.USER_ID, self.tin),
            (x509.ObjectIdentifier(OID_PINFL), self.pinfl),  # UTF8String, cryptography's default
            (x509.ObjectIdentifier(OID_ORG_TIN), self.org_tin),
            (NameOID.BUSINESS_CATEGORY, self.business_category),
        ]
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in fields if value])

    def file_id(self) -> str:
        """The number E-IMZO puts into key file names: PINFL, else TIN, else the organisation's TIN."""
        return self.pinfl or self.tin or self.org_tin or ""


def _check_digits(value: str | None, pattern: re.Pattern[str], label: str, count: int) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"{label} must be exactly {count} digits, got {value!r}")
