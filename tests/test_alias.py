"""E-IMZO aliases: exact format, escaping, parsing back into an owner."""

from __future__ import annotations

import datetime
import json

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from eimzo_agent.keys.alias import (
    Owner,
    build_alias,
    escape_value,
    owner_from_alias,
    owner_from_certificate,
    parse_alias,
)

TASHKENT = datetime.timezone(datetime.timedelta(hours=5))
PINFL = x509.ObjectIdentifier("1.2.860.3.16.1.2")
ORG_TIN = x509.ObjectIdentifier("1.2.860.3.16.1.1")

# The real alias published in the protocol notes (a DIDOX sample).
SAMPLE = (
    "cn=fio,name=имя,surname=фамилия,l=район,st=город,c=uz,o=название компании,uid=324543543,"
    "1.2.860.3.16.1.2=32610793225581,t=direktor,1.2.860.3.16.1.1=242141224,"
    "businesscategory=masʼuliyati cheklangan jamiyat,serialnumber=71c4eb12,"
    "validfrom=2022.04.25 17:42:58,validto=2024.04.25 23:59:59"
)

_KEY = ec.generate_private_key(ec.SECP256R1())


def make_cert(attributes: list[tuple[x509.ObjectIdentifier, str]], *, serial: int = 0x71C4EB12,
              not_before: datetime.datetime = datetime.datetime(2022, 4, 25, 12, 42, 58, tzinfo=datetime.UTC),
              not_after: datetime.datetime = datetime.datetime(2024, 4, 25, 18, 59, 59, tzinfo=datetime.UTC),
              ) -> asn1_x509.Certificate:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(_KEY, hashes.SHA256())
    )
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


# Subject in the order E-IMZO's CA writes it (title before UID), which differs from the alias order.
SAMPLE_SUBJECT = [
    (NameOID.COMMON_NAME, "FIO"),
    (NameOID.GIVEN_NAME, "Имя"),
    (NameOID.SURNAME, "Фамилия"),
    (NameOID.LOCALITY_NAME, "Район"),
    (NameOID.STATE_OR_PROVINCE_NAME, "Город"),
    (NameOID.COUNTRY_NAME, "UZ"),
    (NameOID.ORGANIZATION_NAME, "Название компании"),
    (NameOID.TITLE, "DIREKTOR"),
    (NameOID.USER_ID, "324543543"),
    (PINFL, "32610793225581"),
    (ORG_TIN, "242141224"),
    (NameOID.BUSINESS_CATEGORY, "Masʼuliyati cheklangan jamiyat"),
]


def test_build_alias_reproduces_the_real_sample() -> None:
    assert build_alias(make_cert(SAMPLE_SUBJECT), tz=TASHKENT) == SAMPLE


def test_build_alias_default_zone_is_the_machines() -> None:
    cert = make_cert(SAMPLE_SUBJECT)
    local = datetime.datetime.now().astimezone().tzinfo
    moment = datetime.datetime(2022, 4, 25, 12, 42, 58, tzinfo=datetime.UTC).astimezone()
    assert build_alias(cert) == build_alias(cert, tz=local)
    assert f"validfrom={moment:%Y.%m.%d %H:%M:%S}" in build_alias(cert)


def test_build_alias_escapes_like_bouncycastle() -> None:
    cert = make_cert([
        (NameOID.COMMON_NAME, "Ivanov, Ivan"),
        (NameOID.ORGANIZATION_NAME, 'OOO "Roga + Kopyta" <a;b=c\\d>'),
    ])
    alias = build_alias(cert, tz=datetime.UTC)
    assert alias.startswith(
        'cn=ivanov\\, ivan,o=ooo \\"roga \\+ kopyta\\" \\<a\\;b\\=c\\\\d\\>,serialnumber=71c4eb12,'
    )


def test_other_attributes_follow_with_labels() -> None:
    cert = make_cert([
        (NameOID.EMAIL_ADDRESS, "A@B.UZ"),
        (NameOID.COMMON_NAME, "X"),
        (NameOID.SERIAL_NUMBER, "123"),
        (x509.ObjectIdentifier("1.2.3.4"), "Other"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
    ], serial=0x00AB)
    alias = build_alias(cert, tz=datetime.UTC)
    assert alias == (
        "cn=x,ou=it,e=a@b.uz,2.5.4.5=123,1.2.3.4=other,serialnumber=ab,"
        "validfrom=2022.04.25 12:42:58,validto=2024.04.25 18:59:59"
    )


def test_parse_alias_round_trips_escaped_commas() -> None:
    cert = make_cert([(NameOID.COMMON_NAME, "Ivanov, Ivan"), (NameOID.ORGANIZATION_NAME, "A=B, C\\D")])
    fields = parse_alias(build_alias(cert, tz=datetime.UTC))
    assert fields["cn"] == "ivanov, ivan"
    assert fields["o"] == "a=b, c\\d"
    assert fields["serialnumber"] == "71c4eb12"


def test_parse_alias_keys_lower_case_first_occurrence_wins() -> None:
    assert parse_alias("CN=First,cn=Second, O=Org\\,Inc,novalue,=x") == {"cn": "First", "o": "Org,Inc"}


@given(st.text())
def test_escape_then_parse_gives_the_value_back(value: str) -> None:
    assert parse_alias(f"cn={escape_value(value)},o=x") == {"cn": value, "o": "x"}


def test_owner_from_real_sample() -> None:
    owner = owner_from_alias(SAMPLE)
    assert owner == Owner(
        cn="fio", name="имя", surname="фамилия", pinfl="32610793225581", tin="324543543",
        org="название компании", org_tin="242141224", title="direktor", serial="71c4eb12",
        valid_from=datetime.datetime(2022, 4, 25, 17, 42, 58),
        valid_to=datetime.datetime(2024, 4, 25, 23, 59, 59),
    )
    assert owner.is_legal_entity
    as_dict = owner.to_dict()
    assert as_dict["valid_to"] == "2024-04-25T23:59:59"
    assert (as_dict["given_name"], as_dict["pinfl"]) == ("имя", "32610793225581")
    assert "name" not in as_dict  # "name" is the key file's name in the rows this dict is merged into
    assert as_dict["is_legal_entity"] is True
    json.dumps(as_dict)


def test_individual_is_not_a_legal_entity() -> None:
    owner = owner_from_alias("cn=ali valiyev,name=ali,surname=valiyev,c=uz,uid=123456789,"
                             "1.2.860.3.16.1.2=12345678901234,serialnumber=1f")
    assert not owner.is_legal_entity
    assert owner.tin == "123456789"
    assert owner.pinfl == "12345678901234"
    assert (owner.org_tin, owner.valid_from) == (None, None)


def test_owner_from_alias_tolerates_bad_dates_and_empty_values() -> None:
    owner = owner_from_alias("cn=x,o=,validfrom=not a date,validto=2024.13.01 00:00:00")
    assert (owner.cn, owner.org, owner.valid_from, owner.valid_to) == ("x", None, None, None)


def test_owner_from_certificate_keeps_case_and_localises_dates() -> None:
    owner = owner_from_certificate(make_cert(SAMPLE_SUBJECT), tz=TASHKENT)
    assert (owner.cn, owner.name, owner.org, owner.title) == ("FIO", "Имя", "Название компании", "DIREKTOR")
    assert (owner.tin, owner.pinfl) == ("324543543", "32610793225581")
    assert (owner.org_tin, owner.serial) == ("242141224", "71c4eb12")
    assert owner.valid_from == datetime.datetime(2022, 4, 25, 17, 42, 58)
    assert owner.is_legal_entity
