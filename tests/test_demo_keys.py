"""`eimzo-agent serve --demo`'s key set: made once, an individual, a legal entity and an expired key."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from eimzo_agent.dev.demo import DEMO_PASSWORD, demo_path, ensure_demo_keys
from eimzo_agent.keys.alias import owner_from_alias
from eimzo_agent.keys.disks import discover_disks
from eimzo_agent.keys.errors import KeyStoreError
from eimzo_agent.keys.pfx_files import list_all_certificates
from eimzo_agent.keys.pkcs12 import parse_pfx, verify_mac


def test_demo_keys_are_made_once_in_the_user_data_dir(isolated_dirs: Path) -> None:
    first = ensure_demo_keys()
    assert first.created and first.root == demo_path()
    assert demo_path().is_relative_to(isolated_dirs)
    assert [p.parent.name for p in first.keys] == ["DSKEYS"] * 3
    assert first.ca_certificate.is_file()
    again = ensure_demo_keys()
    assert not again.created
    assert sorted(again.keys) == sorted(first.keys)
    assert again.ca_certificate.read_bytes() == first.ca_certificate.read_bytes()


def test_demo_keys_cover_individual_legal_entity_and_expired(tmp_path: Path) -> None:
    demo = ensure_demo_keys(tmp_path / "demo")
    entries = list_all_certificates(discover_disks([demo.root], system_locations=False))
    owners = {owner_from_alias(e.alias).cn: owner_from_alias(e.alias) for e in entries}
    assert set(owners) == {"aliyev vali anvarovich", "karimova nodira baxtiyorovna", "toshmatov eshmat"}
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
