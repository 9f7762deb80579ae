"""Changing a key file's password on disk: one safe step, through symlinks, one change of a file at a time."""

from __future__ import annotations

import datetime
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.key_file_writer import change_key_file_password, write_key_file
from eimzo_agent.keys.pkcs12 import list_aliases, open_pfx, serialize_pfx

OLD = "Eski-Parol-123"
NEW = "Yangi-Parol-456"
ALIAS = "cn=test user,c=uz"


@pytest.fixture(scope="module")
def key_file_bytes() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test User"),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "UZ")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return serialize_pfx(key, cert, [], OLD, ALIAS)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    root = tmp_path / "flash"
    (root / "DSKEYS").mkdir(parents=True)
    return root


def kind_of(call, *args) -> KeyErrorKind:
    with pytest.raises(KeyStoreError) as caught:
        call(*args)
    return caught.value.kind


def opens_with(path: Path, password: str) -> bool:
    try:
        open_pfx(path.read_bytes(), password, ALIAS)
    except KeyStoreError as exc:
        assert exc.kind is KeyErrorKind.WRONG_PASSWORD
        return False
    return True


def test_change_replaces_the_file_in_place(disk: Path, key_file_bytes: bytes) -> None:
    path = disk / "DSKEYS" / "DS1234.pfx"
    path.write_bytes(key_file_bytes)
    path.chmod(0o640)
    change_key_file_password(path, ALIAS.upper(), OLD, NEW)
    assert opens_with(path, NEW) and not opens_with(path, OLD)
    assert list_aliases(path.read_bytes()) == [ALIAS]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["DS1234.pfx"]  # no temporary file left


def test_change_through_a_symlink_rewrites_its_target(disk: Path, key_file_bytes: bytes) -> None:
    """Regression: the link itself was replaced by a regular file, leaving the real key file unchanged."""
    real = disk / "store" / "mine.pfx"
    real.parent.mkdir()
    real.write_bytes(key_file_bytes)
    link = disk / "DSKEYS" / "DS1234.pfx"
    link.symlink_to(Path("..") / "store" / "mine.pfx")
    change_key_file_password(link, ALIAS, OLD, NEW)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert opens_with(real, NEW) and not opens_with(real, OLD)


def test_concurrent_changes_of_one_file_are_serialised(disk: Path, key_file_bytes: bytes) -> None:
    """Regression: two changes at once both "succeeded", and the file kept only one of the new passwords."""
    path = disk / "DSKEYS" / "DS1234.pfx"
    path.write_bytes(key_file_bytes)
    link = disk / "same-file.pfx"  # the same file under another name is the same file
    link.symlink_to(path)
    start = threading.Barrier(2)
    outcomes: dict[str, KeyErrorKind | None] = {}

    def change(via: Path, new: str) -> None:
        start.wait()
        try:
            change_key_file_password(via, ALIAS, OLD, new)
            outcomes[new] = None
        except KeyStoreError as exc:
            outcomes[new] = exc.kind

    threads = [threading.Thread(target=change, args=args) for args in ((path, "Birinchi-1"), (link, "Ikkinchi-2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes.values(), key=str) == [KeyErrorKind.WRONG_PASSWORD, None]
    winner = next(new for new, kind in outcomes.items() if kind is None)
    loser = next(new for new, kind in outcomes.items() if kind is not None)
    assert opens_with(path, winner) and not opens_with(path, loser)


def test_a_wrong_password_or_alias_changes_nothing(disk: Path, key_file_bytes: bytes) -> None:
    path = disk / "DSKEYS" / "DS1234.pfx"
    path.write_bytes(key_file_bytes)
    assert kind_of(change_key_file_password, path, ALIAS, "wrong", NEW) is KeyErrorKind.WRONG_PASSWORD
    assert kind_of(change_key_file_password, path, "cn=someone else", OLD, NEW) is KeyErrorKind.ALIAS_NOT_FOUND
    assert kind_of(change_key_file_password, disk / "gone.pfx", ALIAS, OLD, NEW) is KeyErrorKind.FILE_NOT_FOUND
    with pytest.raises(ValueError, match="non-empty password"):
        change_key_file_password(path, ALIAS, OLD, "")
    assert path.read_bytes() == key_file_bytes
    assert [p.name for p in path.parent.iterdir()] == ["DS1234.pfx"]


def test_write_failures_are_key_store_errors(disk: Path) -> None:
    assert kind_of(write_key_file, disk / "missing" / "DS1.pfx", b"x") is KeyErrorKind.WRITE_FAILED
    (disk / "DS2.pfx").mkdir()
    assert kind_of(write_key_file, disk / "DS2.pfx", b"x") is KeyErrorKind.WRITE_FAILED
