"""Key files on disks and the safe lookup of page-supplied (disk, path, name), on real temp directories.

Key files are real PKCS#12 made by `cryptography`; aliases are read by a small local reader (or injected
fakes), so these tests don't depend on eimzo_agent.keys.pkcs12.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent.keys.disks import Disk
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pfx_files import (
    MAX_KEY_FILE_SIZE,
    PfxFileEntry,
    key_folders,
    list_all_certificates,
    list_certificates,
    read_key_file,
    resolve_key_file,
)

PASSWORD = b"Test-Password-1"
_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(_KEY, hashes.SHA256())
    )


def make_pfx(alias: str) -> bytes:
    cert = _cert(alias)
    return pkcs12.serialize_key_and_certificates(alias.encode(), _KEY, cert, None, BestAvailableEncryption(PASSWORD))


def make_cert_only_pfx() -> bytes:
    return pkcs12.serialize_key_and_certificates(None, None, None, [_cert("ca")], BestAvailableEncryption(PASSWORD))


def read_aliases(data: bytes) -> list[str]:
    """Friendly name of the key entry, lower-cased like Java's keystore; raises ValueError for garbage."""
    p12 = pkcs12.load_pkcs12(data, PASSWORD)
    if p12.key is None or p12.cert is None:
        return []
    return [(p12.cert.friendly_name or b"").decode().lower()]


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    root = tmp_path / "FLASH"
    root.mkdir()
    return Disk(label=f"{root}/", root=root)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _simple(entries: list[PfxFileEntry]) -> list[tuple[str, str, str]]:
    return [(e.path, e.name, e.alias) for e in entries]


# --- listing -------------------------------------------------------------------------------------------------


def test_lists_root_and_dskeys(disk: Disk) -> None:
    _write(disk.root / "DS1000.pfx", make_pfx("cn=root key"))
    _write(disk.root / "DSKEYS" / "DS2000.pfx", make_pfx("cn=dskeys key"))
    entries = list_certificates(disk, read_aliases=read_aliases)
    assert _simple(entries) == [("", "DS1000", "cn=root key"), ("DSKEYS", "DS2000", "cn=dskeys key")]
    assert entries[0].disk == disk.label
    assert entries[0].file == disk.root / "DS1000.pfx"
    assert entries[1].file == disk.root / "DSKEYS" / "DS2000.pfx"
    assert all(e.file.is_absolute() for e in entries)


def test_lower_case_dskeys_and_upper_case_extension(disk: Disk) -> None:
    _write(disk.root / "dskeys" / "DS3000.PFX", make_pfx("cn=upper ext"))
    _write(disk.root / "Key.Pfx", make_pfx("cn=mixed"))
    entries = list_certificates(disk, read_aliases=read_aliases)
    assert _simple(entries) == [("", "Key", "cn=mixed"), ("DSKEYS", "DS3000", "cn=upper ext")]


def test_key_folders_are_the_roots_and_their_dskeys(disk: Disk, tmp_path: Path) -> None:
    (disk.root / "dskeys").mkdir()
    bare = Disk(label=f"{tmp_path}/bare/", root=tmp_path / "bare")
    assert key_folders([disk, bare]) == [disk.root, disk.root / "dskeys", bare.root]


def test_sorted_by_path_then_name(disk: Disk) -> None:
    for name in ("b", "a-b", "a", "C"):
        _write(disk.root / f"{name}.pfx", make_pfx(f"cn={name}"))
        _write(disk.root / "DSKEYS" / f"{name}.pfx", make_pfx(f"cn=d{name}"))
    names = [(e.path, e.name) for e in list_certificates(disk, read_aliases=read_aliases)]
    assert names == sorted(names)
    assert [n for p, n in names if p == ""] == ["C", "a", "a-b", "b"]


def test_non_key_files_ignored(disk: Disk) -> None:
    _write(disk.root / "DS1.pfx", make_pfx("cn=k"))
    _write(disk.root / "DS1.pfx.bak", make_pfx("cn=bak"))
    _write(disk.root / "notes.txt", b"hello")
    _write(disk.root / "cert.cer", b"x")
    _write(disk.root / "pfx", make_pfx("cn=no dot"))
    (disk.root / "folder.pfx").mkdir()
    _write(disk.root / "deeper" / "DS9.pfx", make_pfx("cn=too deep"))  # only root and DSKEYS are searched
    _write(disk.root / "DSKEYS" / "sub" / "DS8.pfx", make_pfx("cn=too deep"))
    assert _simple(list_certificates(disk, read_aliases=read_aliases)) == [("", "DS1", "cn=k")]


def test_unresolvable_names_are_not_listed(disk: Disk) -> None:
    # Whatever is listed must be loadable by name: names resolve_key_file would refuse are left out.
    _write(disk.root / "DS1.pfx", make_pfx("cn=k"))
    for bad in (".hidden.pfx", ".pfx", "a..b.pfx", "a:b.pfx", "a\\b.pfx", "tab\there.pfx"):
        _write(disk.root / bad, make_pfx("cn=bad"))
    assert [e.name for e in list_certificates(disk, read_aliases=read_aliases)] == ["DS1"]


def test_corrupt_file_skipped_with_warning(disk: Disk, caplog: pytest.LogCaptureFixture) -> None:
    _write(disk.root / "DS1.pfx", make_pfx("cn=good"))
    _write(disk.root / "DS2.pfx", b"\x30\x82garbage, not PKCS#12")
    _write(disk.root / "DSKEYS" / "DS3.pfx", b"")
    _write(disk.root / "DSKEYS" / "DS4.pfx", make_pfx("cn=good too"))
    with caplog.at_level(logging.WARNING, logger="eimzo_agent.keys.pfx_files"):
        entries = list_certificates(disk, read_aliases=read_aliases)
    assert _simple(entries) == [("", "DS1", "cn=good"), ("DSKEYS", "DS4", "cn=good too")]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "DS2.pfx" in warned and "DS3.pfx" in warned


def test_any_parser_exception_only_drops_that_file(disk: Disk) -> None:
    _write(disk.root / "a.pfx", b"a")
    _write(disk.root / "b.pfx", b"b")

    def reader(data: bytes) -> list[str]:
        if data == b"a":
            raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, "bad")
        raise IndexError("parser bug")

    assert list_certificates(disk, read_aliases=reader) == []


def test_file_without_key_entry_skipped(disk: Disk) -> None:
    _write(disk.root / "certs.pfx", make_cert_only_pfx())
    _write(disk.root / "key.pfx", make_pfx("cn=k"))
    assert _simple(list_certificates(disk, read_aliases=read_aliases)) == [("", "key", "cn=k")]


def test_big_file_skipped_without_reading(disk: Disk, caplog: pytest.LogCaptureFixture) -> None:
    _write(disk.root / "big.pfx", b"\0" * (MAX_KEY_FILE_SIZE + 1))
    _write(disk.root / "edge.pfx", b"\0" * MAX_KEY_FILE_SIZE)
    seen: list[int] = []

    def reader(data: bytes) -> list[str]:
        seen.append(len(data))
        return ["alias"]

    with caplog.at_level(logging.WARNING):
        entries = list_certificates(disk, read_aliases=reader)
    assert [e.name for e in entries] == ["edge"]
    assert seen == [MAX_KEY_FILE_SIZE]
    assert "big.pfx" in caplog.text


def test_one_entry_per_alias(disk: Disk) -> None:
    _write(disk.root / "multi.pfx", b"multi")
    _write(disk.root / "single.pfx", b"single")
    aliases = {b"multi": ["cn=one", "cn=two", "cn=one"], b"single": ["cn=three"]}
    entries = list_certificates(disk, read_aliases=aliases.__getitem__)
    assert _simple(entries) == [("", "multi", "cn=one"), ("", "multi", "cn=two"), ("", "single", "cn=three")]


def test_names_differing_only_in_case_listed_once(disk: Disk) -> None:
    _write(disk.root / "DS1.PFX", make_pfx("cn=upper"))
    _write(disk.root / "ds1.pfx", make_pfx("cn=lower"))
    entries = list_certificates(disk, read_aliases=read_aliases)
    assert len(entries) == 1
    # ...and the page gets back exactly the file it was shown.
    assert resolve_key_file([disk], disk.label, "", entries[0].name)[1] == entries[0].file
    assert resolve_key_file([disk], disk.label, "", "ds1")[1] == entries[0].file


def test_listed_symlink_keeps_entry_name(disk: Disk) -> None:
    _write(disk.root / "store" / "real-name.pfx", make_pfx("cn=k"))
    (disk.root / "DS1.pfx").symlink_to(disk.root / "store" / "real-name.pfx")
    entries = list_certificates(disk, read_aliases=read_aliases)
    assert [(e.name, e.file) for e in entries] == [("DS1", disk.root / "DS1.pfx")]


def test_vanished_disk_lists_nothing(tmp_path: Path) -> None:
    gone = Disk(label=f"{tmp_path}/gone/", root=tmp_path / "gone")
    assert list_certificates(gone, read_aliases=read_aliases) == []


def test_list_all_certificates_in_disk_order(tmp_path: Path) -> None:
    disks = []
    for n in ("B", "A"):
        root = tmp_path / n
        _write(root / "DSKEYS" / f"k{n}.pfx", make_pfx(f"cn={n}"))
        disks.append(Disk(label=f"{root}/", root=root))
    entries = list_all_certificates(disks, read_aliases=read_aliases)
    assert [(e.disk, e.name) for e in entries] == [(disks[0].label, "kB"), (disks[1].label, "kA")]


def test_symlink_leading_off_disk_not_listed(disk: Disk, tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside" / "secret.pfx", make_pfx("cn=outside"))
    (disk.root / "DSKEYS").mkdir()
    (disk.root / "DSKEYS" / "DS1.pfx").symlink_to(outside)
    (disk.root / "DS2.pfx").symlink_to(outside)
    assert list_certificates(disk, read_aliases=read_aliases) == []


# --- resolve_key_file ----------------------------------------------------------------------------------------


@pytest.fixture
def keyed(disk: Disk, tmp_path: Path) -> tuple[list[Disk], Disk]:
    other_root = tmp_path / "OTHER"
    _write(other_root / "DSKEYS" / "DS777.pfx", make_pfx("cn=other"))
    _write(disk.root / "DS100.pfx", make_pfx("cn=root"))
    _write(disk.root / "DSKEYS" / "DS200.pfx", make_pfx("cn=dskeys"))
    return [Disk(label=f"{other_root}/", root=other_root), disk], disk


def _kind(disks: list[Disk], d: object, p: object, n: object) -> KeyErrorKind:
    with pytest.raises(KeyStoreError) as info:
        resolve_key_file(disks, d, p, n)  # type: ignore[arg-type]
    return info.value.kind


def test_resolve_happy_path(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    assert resolve_key_file(disks, disk.label, "", "DS100") == (disk, disk.root / "DS100.pfx")
    assert resolve_key_file(disks, disk.label, "DSKEYS", "DS200") == (disk, disk.root / "DSKEYS" / "DS200.pfx")


def test_resolve_is_case_insensitive_and_accepts_extension(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    expected = (disk, disk.root / "DSKEYS" / "DS200.pfx")
    for path, name in (("dskeys", "ds200"), ("DsKeys", "DS200.pfx"), ("DSKEYS", "ds200.PFX")):
        assert resolve_key_file(disks, disk.label, path, name) == expected


def test_resolve_lower_case_folder_on_disk(disk: Disk) -> None:
    _write(disk.root / "dskeys" / "ds5.PFX", make_pfx("cn=k"))
    assert resolve_key_file([disk], disk.label, "DSKEYS", "DS5")[1] == disk.root / "dskeys" / "ds5.PFX"


def test_resolve_disk_label_without_trailing_separator(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    assert resolve_key_file(disks, disk.label.rstrip("/"), "", "DS100")[0] == disk


def test_resolve_each_disk_only_sees_its_own_files(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    assert _kind(disks, disk.label, "DSKEYS", "DS777") is KeyErrorKind.FILE_NOT_FOUND
    assert resolve_key_file(disks, disks[0].label, "DSKEYS", "DS777")[0] == disks[0]


@pytest.mark.parametrize(
    "label",
    ["", "/", "C:\\", "/etc/", "FLASH", "FLASH/", None, 1, ["x"]],
)
def test_resolve_unknown_disk(keyed: tuple[list[Disk], Disk], label: object) -> None:
    disks, _ = keyed
    assert _kind(disks, label, "", "DS100") is KeyErrorKind.DISK_NOT_FOUND


def test_resolve_disk_must_match_exactly(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    for label in (disk.label + "/", disk.label + "DSKEYS/", disk.label.upper(), disk.label + "../", " " + disk.label):
        assert _kind(disks, label, "", "DS100") is KeyErrorKind.DISK_NOT_FOUND


@pytest.mark.parametrize(
    "path",
    ["../", "..", "DSKEYS/..", "DSKEYS/", "/etc", "/", ".", "DSKEYS\\..", " DSKEYS", "DSKEYS\x00", "DſKEYS", None, 0],
)
def test_resolve_bad_path(keyed: tuple[list[Disk], Disk], path: object) -> None:
    disks, disk = keyed
    assert _kind(disks, disk.label, path, "DS100") is KeyErrorKind.BAD_PATH


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".pfx",
        "../x",
        "..",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        "..\\DS100",
        "DS100\x00",
        "DS\x00100",
        "DS100\n",
        "DS\x7f100",
        "DS\x85100",
        ".hidden",
        "DS..100",
        "/etc/passwd",
        "C:\\Windows\\x",
        "C:DS100",
        "DS100.pfx:stream",
        "\ud800",
        "x" * 256,
        None,
        123,
    ],
)
def test_resolve_bad_file_name(keyed: tuple[list[Disk], Disk], name: object) -> None:
    disks, disk = keyed
    assert _kind(disks, disk.label, "", name) is KeyErrorKind.BAD_FILE_NAME


def test_resolve_absolute_path_of_existing_file_is_refused(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    absolute = str(disk.root / "DS100.pfx")
    assert _kind(disks, disk.label, "", absolute) is KeyErrorKind.BAD_FILE_NAME
    assert _kind(disks, disk.label, "", absolute[:-4]) is KeyErrorKind.BAD_FILE_NAME


@pytest.mark.parametrize("name", ["DS999", "DS100.txt", "DS10", "DS1000", "DS100 ", " DS100", "DS100.pfx.pfx"])
def test_resolve_missing_file(keyed: tuple[list[Disk], Disk], name: str) -> None:
    disks, disk = keyed
    assert _kind(disks, disk.label, "", name) is KeyErrorKind.FILE_NOT_FOUND


def test_resolve_root_file_not_found_under_dskeys_and_vice_versa(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    assert _kind(disks, disk.label, "DSKEYS", "DS100") is KeyErrorKind.FILE_NOT_FOUND
    assert _kind(disks, disk.label, "", "DS200") is KeyErrorKind.FILE_NOT_FOUND


def test_resolve_no_dskeys_folder(disk: Disk) -> None:
    _write(disk.root / "DS1.pfx", make_pfx("cn=k"))
    assert _kind([disk], disk.label, "DSKEYS", "DS1") is KeyErrorKind.FILE_NOT_FOUND


def test_resolve_symlink_pointing_off_disk(keyed: tuple[list[Disk], Disk], tmp_path: Path) -> None:
    disks, disk = keyed
    outside = _write(tmp_path / "outside" / "stolen.pfx", make_pfx("cn=outside"))
    (disk.root / "DSKEYS" / "DS300.pfx").symlink_to(outside)
    (disk.root / "DSKEYS" / "DS301.pfx").symlink_to("../../outside/stolen.pfx")
    (disk.root / "DSKEYS" / "DS302.pfx").symlink_to("/etc/passwd")
    for name in ("DS300", "DS301", "DS302"):
        assert _kind(disks, disk.label, "DSKEYS", name) is KeyErrorKind.FILE_NOT_FOUND


def test_resolve_dskeys_folder_symlinked_off_disk(disk: Disk, tmp_path: Path) -> None:
    _write(tmp_path / "elsewhere" / "DS1.pfx", make_pfx("cn=k"))
    (disk.root / "DSKEYS").symlink_to(tmp_path / "elsewhere")
    assert _kind([disk], disk.label, "DSKEYS", "DS1") is KeyErrorKind.FILE_NOT_FOUND
    assert list_certificates(disk, read_aliases=read_aliases) == []


def test_resolve_symlink_inside_disk_allowed(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    (disk.root / "DSKEYS" / "DS400.pfx").symlink_to(disk.root / "DS100.pfx")
    assert resolve_key_file(disks, disk.label, "DSKEYS", "DS400") == (disk, disk.root / "DSKEYS" / "DS400.pfx")


def test_resolve_disk_root_itself_a_symlink(tmp_path: Path) -> None:
    # ~/DSKEYS or a /Volumes entry may itself be a link; containment is judged against its real folder.
    _write(tmp_path / "real" / "DS1.pfx", make_pfx("cn=k"))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    disk = Disk(label=f"{tmp_path}/link/", root=tmp_path / "link")
    assert resolve_key_file([disk], disk.label, "", "DS1") == (disk, tmp_path / "link" / "DS1.pfx")


def test_resolve_refuses_non_regular_files(disk: Disk) -> None:
    (disk.root / "dir.pfx").mkdir()
    os.mkfifo(disk.root / "fifo.pfx")
    (disk.root / "dangling.pfx").symlink_to(disk.root / "nowhere.pfx")
    for name in ("dir", "fifo", "dangling"):
        assert _kind([disk], disk.label, "", name) is KeyErrorKind.FILE_NOT_FOUND
    assert list_certificates(disk, read_aliases=read_aliases) == []


def test_every_listed_entry_resolves_to_its_file(keyed: tuple[list[Disk], Disk]) -> None:
    disks, disk = keyed
    _write(disk.root / "dskeys2" / "x.pfx", make_pfx("cn=x"))
    entries = list_all_certificates(disks, read_aliases=read_aliases)
    assert len(entries) == 3
    for e in entries:
        assert resolve_key_file(disks, e.disk, e.path, e.name)[1] == e.file


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(["", "DSKEYS", "dskeys"]), name=st.text(max_size=40))
def test_resolve_never_leaves_the_disk(tmp_path_factory: pytest.TempPathFactory, path: str, name: str) -> None:
    root = tmp_path_factory.getbasetemp() / "prop-disk"
    if not root.exists():
        _write(root / "DS1.pfx", b"k")
        _write(root / "DSKEYS" / "DS2.pfx", b"k")
        _write(root.parent / "prop-outside.pfx", b"secret")
    disk = Disk(label=f"{root}/", root=root)
    try:
        found, file = resolve_key_file([disk], disk.label, path, name)
    except KeyStoreError:
        return
    assert found is disk
    assert os.path.realpath(file).startswith(os.path.realpath(root) + os.sep)
    assert file.name.lower() in ("ds1.pfx", "ds2.pfx")


# --- read_key_file -------------------------------------------------------------------------------------------


def test_read_key_file(disk: Disk) -> None:
    data = make_pfx("cn=k")
    assert read_key_file(_write(disk.root / "k.pfx", data)) == data


def test_read_key_file_missing(disk: Disk) -> None:
    with pytest.raises(KeyStoreError) as info:
        read_key_file(disk.root / "gone.pfx")
    assert info.value.kind is KeyErrorKind.FILE_NOT_FOUND


def test_read_key_file_too_big(disk: Disk) -> None:
    with pytest.raises(KeyStoreError) as info:
        read_key_file(_write(disk.root / "big.pfx", b"\0" * (MAX_KEY_FILE_SIZE + 1)))
    assert info.value.kind is KeyErrorKind.DAMAGED_FILE


def test_read_key_file_refuses_fifo_and_dir_without_blocking(disk: Disk) -> None:
    os.mkfifo(disk.root / "fifo.pfx")
    (disk.root / "dir.pfx").mkdir()
    for name in ("fifo.pfx", "dir.pfx"):
        with pytest.raises(KeyStoreError) as info:
            read_key_file(disk.root / name)
        assert info.value.kind is KeyErrorKind.FILE_NOT_FOUND
