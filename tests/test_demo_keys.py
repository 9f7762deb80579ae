"""`eimzo-agent serve --demo`'s key set: made once; an individual, a legal entity and an expired key (RSA), an O'zDSt
individual and an O'zDSt officer of a legal entity (the keys Uzbek citizens hold), and a P-256 key."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from eimzo_agent.crypto.ozdst_keys import certificate_public_key
from eimzo_agent.dev.demo import DEMO_PASSWORD, demo_path, ensure_demo_keys
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.disks import discover_disks
from eimzo_agent.keys.errors import KeyStoreError
from eimzo_agent.keys.pfx_files import list_all_certificates
from eimzo_agent.keys.pkcs12 import open_pfx, parse_pfx, verify_mac

OZDST_SIGNATURE = "1.2.860.3.15.1.1.2.2.2.2"  # O'zDSt 1092 with O'zDSt 1106 (the national root's algorithm)


def test_demo_keys_are_made_once_in_the_user_data_dir(isolated_dirs: Path) -> None:
    first = ensure_demo_keys()
    assert first.created and first.root == demo_path()
    assert demo_path().is_relative_to(isolated_dirs)
    assert [p.parent.name for p in first.keys] == ["DSKEYS"] * 6
    assert first.ca_certificate.is_file()
    again = ensure_demo_keys()
    assert not again.created
    assert sorted(again.keys) == sorted(first.keys)
    assert again.ca_certificate.read_bytes() == first.ca_certificate.read_bytes()


def test_demo_keys_cover_individual_legal_entity_and_expired(tmp_path: Path) -> None:
    demo = ensure_demo_keys(tmp_path / "demo")
    entries = list_all_certificates(discover_disks([demo.root], system_locations=False))
    owners = {owner_from_alias(e.alias).cn: owner_from_alias(e.alias) for e in entries}
    assert {"aliyev vali anvarovich", "karimova nodira baxtiyorovna", "toshmatov eshmat"} <= set(owners)
    now = datetime.datetime.now()
    individual, legal, expired = (owners["aliyev vali anvarovich"], owners["karimova nodira baxtiyorovna"],
                                  owners["toshmatov eshmat"])
    assert not individual.is_legal_entity and individual.pinfl == "31234567890123" and individual.tin == "512345678"
    assert legal.is_legal_entity and legal.org_tin == "301234567" and legal.org == "yangi texnologiyalar, mchj"
    assert "o=yangi texnologiyalar\\, mchj," in next(e.alias for e in entries if "karimova" in e.alias)
    assert individual.valid_to and individual.valid_to > now
    assert legal.valid_to and legal.valid_to > now
    assert expired.valid_to and expired.valid_to < now
    for path in demo.keys:
        pfx = parse_pfx(path.read_bytes())
        assert verify_mac(pfx, DEMO_PASSWORD)
        with pytest.raises(KeyStoreError):
            verify_mac(pfx, "wrong")


def _anchor(path: Path) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def test_demo_keys_include_ozdst_individual_and_officer_and_p256(tmp_path: Path) -> None:
    demo = ensure_demo_keys(tmp_path / "demo")
    opened = {}
    for path in demo.keys:
        key = open_pfx(path.read_bytes(), DEMO_PASSWORD)
        opened[owner_from_alias(key.alias).cn] = key
    individual, officer = opened["qodirov jasur bahodirovich"], opened["rahimova dilnoza shavkatovna"]
    p256 = opened["saidov bobur alisherovich"]
    rsa_ca, ozdst_ca = (_anchor(path) for path in demo.ca_certificates)
    for key in (individual, officer):
        cert = key.certificate
        assert cert["signature_algorithm"]["algorithm"].dotted == OZDST_SIGNATURE
        assert certificate_public_key(cert).curve is not None  # raises for anything but an O'zDSt key
        assert cert.issuer == ozdst_ca.subject, "O'zDSt keys come from the dev O'zDSt CA, a trust anchor of the set"
    owner = owner_from_alias(officer.alias)
    assert owner.is_legal_entity and owner.org_tin == "302345678" and owner.pinfl == "42345678901236"
    person = owner_from_alias(individual.alias)
    assert not person.is_legal_entity and person.pinfl == "32345678901235" and person.tin == "523456789"
    assert p256.certificate.public_key.algorithm == "ec" and p256.certificate.issuer == rsa_ca.subject
    assert owner_from_alias(p256.alias).pinfl == "33345678901237"
    assert demo.ca_certificates[0] == demo.ca_certificate


def test_an_older_demo_folder_gains_the_keys_added_since(tmp_path: Path) -> None:
    demo = ensure_demo_keys(tmp_path / "demo")
    before = {p.name: p.read_bytes() for p in demo.keys}
    newer = [p for p in demo.keys if p.name.startswith(("DS3234", "DS4234", "DS3334"))]
    assert len(newer) == 3
    for path in newer:
        path.unlink()  # what a folder made by an earlier version holds
    again = ensure_demo_keys(tmp_path / "demo")
    assert again.created and sorted(p.name for p in again.keys) == sorted(before)
    for path in again.keys:
        if path not in newer:
            assert path.read_bytes() == before[path.name], "keys already there are kept as they are"
