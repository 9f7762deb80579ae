"""Disk discovery on fake file system trees built under tmp_path (fs_root / home injected)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from other_user import other_user, scratch_dir

from eimzo_agent.keys.disks import Disk, discover_disks, drive_roots_from_mask


def _mkdirs(base: Path, *paths: str) -> None:
    for p in paths:
        (base / p).mkdir(parents=True, exist_ok=True)


def _labels(disks: list[Disk]) -> list[str]:
    return [d.label for d in disks]


@pytest.fixture
def linux_tree(tmp_path: Path) -> tuple[Path, Path]:
    fs = tmp_path / "fs"
    home = tmp_path / "home" / "alice"
    _mkdirs(
        fs,
        "media/alice/FLASH",
        "media/alice/.hidden",
        "media/DSKEYS",
        "media/OLDSTICK",
        "media/.trash",
        "run/media/alice/USB",
        "run/media/bob/OTHER",  # another user's sticks are not ours
        "mnt/usb",
        "mnt/usb/deep/deeper",
    )
    (fs / "media" / "notes.txt").write_text("not a disk")
    _mkdirs(home, "DSKEYS")
    return fs, home


def test_linux_labels_and_order(linux_tree: tuple[Path, Path]) -> None:
    fs, home = linux_tree
    disks = discover_disks(platform="linux", fs_root=fs, home=home, user="alice")
    assert _labels(disks) == [
        f"{fs}/media/DSKEYS/",
        f"{fs}/media/OLDSTICK/",
        f"{fs}/media/alice/FLASH/",
        f"{fs}/run/media/alice/USB/",
        f"{fs}/mnt/usb/",
        f"{home}/DSKEYS/",
    ]
    assert all(d.label.endswith("/") and Path(d.label) == d.root for d in disks)
    assert all(d.root.is_absolute() for d in disks)


def test_linux_user_container_only_skipped_under_media(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    _mkdirs(fs, "media/alice/STICK", "mnt/alice")
    labels = _labels(discover_disks(platform="linux", fs_root=fs, home=tmp_path / "nohome", user="alice"))
    assert labels == [f"{fs}/media/alice/STICK/", f"{fs}/mnt/alice/"]


def test_missing_locations_give_nothing(tmp_path: Path) -> None:
    assert discover_disks(platform="linux", fs_root=tmp_path, home=tmp_path / "nohome", user="alice") == []


def test_extra_roots_first_in_given_order(linux_tree: tuple[Path, Path], tmp_path: Path) -> None:
    fs, home = linux_tree
    _mkdirs(tmp_path, "keys/b", "keys/a")
    extra = [tmp_path / "keys" / "b", str(tmp_path / "keys" / "a") + "/", tmp_path / "keys" / "missing"]
    disks = discover_disks(extra, platform="linux", fs_root=fs, home=home, user="alice")
    assert _labels(disks)[:2] == [f"{tmp_path}/keys/b/", f"{tmp_path}/keys/a/"]
    assert len(disks) == 2 + 6


def test_system_locations_off_returns_only_extra_roots(linux_tree: tuple[Path, Path], tmp_path: Path) -> None:
    fs, home = linux_tree
    _mkdirs(tmp_path, "kiosk")
    disks = discover_disks([tmp_path / "kiosk"], system_locations=False, platform="linux", fs_root=fs, home=home)
    assert disks == [Disk(label=f"{tmp_path}/kiosk/", root=tmp_path / "kiosk")]
    assert discover_disks(system_locations=False) == []


def test_relative_extra_root_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mkdirs(tmp_path, "rel")
    monkeypatch.chdir(tmp_path)
    assert _labels(discover_disks(["rel"], system_locations=False)) == [f"{tmp_path}/rel/"]


def test_filesystem_root_label_has_one_separator() -> None:
    assert _labels(discover_disks(["/"], system_locations=False)) == ["/"]


def test_duplicates_by_real_path_keep_first_label(linux_tree: tuple[Path, Path], tmp_path: Path) -> None:
    fs, home = linux_tree
    # The same stick reachable twice (a bind/symlink in /mnt) and given again as an extra root.
    (fs / "mnt" / "same-stick").symlink_to(fs / "media" / "alice" / "FLASH")
    (tmp_path / "my-keys").symlink_to(fs / "media" / "alice" / "FLASH")
    disks = discover_disks([tmp_path / "my-keys"], platform="linux", fs_root=fs, home=home, user="alice")
    labels = _labels(disks)
    assert labels[0] == f"{tmp_path}/my-keys/"
    assert disks[0].root == tmp_path / "my-keys"
    assert f"{fs}/media/alice/FLASH/" not in labels
    assert f"{fs}/mnt/same-stick/" not in labels
    assert len({os.path.realpath(d.root) for d in disks}) == len(disks)


def test_symlinked_child_dir_is_a_disk_but_symlinked_file_is_not(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    _mkdirs(fs, "media", "elsewhere/stick")
    (fs / "elsewhere" / "file").write_text("x")
    (fs / "media" / "link").symlink_to(fs / "elsewhere" / "stick")
    (fs / "media" / "filelink").symlink_to(fs / "elsewhere" / "file")
    (fs / "media" / "dangling").symlink_to(fs / "nowhere")
    labels = _labels(discover_disks(platform="linux", fs_root=fs, home=tmp_path / "nohome", user="alice"))
    assert labels == [f"{fs}/media/link/"]


UNREADABLE_CHECK = """
import json, sys
from pathlib import Path
from eimzo_agent.keys.disks import discover_disks
fs, home = Path(sys.argv[1]), Path(sys.argv[2])
print(json.dumps([d.label for d in discover_disks(platform="linux", fs_root=fs, home=home, user="alice")]))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_dirs_skipped_silently(tmp_path: Path) -> None:
    # Root reads every folder, so as root (CI) the discovery runs as a second, unprivileged user.
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:
            user = other_user()
            base = stack.enter_context(scratch_dir())  # tmp_path is in a folder only root may enter
        else:
            user, base = None, tmp_path
        fs = base / "fs"
        _mkdirs(fs, "media/alice/FLASH", "media/LOCKED", "mnt/usb")
        (fs / "media" / "alice").chmod(0)
        (fs / "media" / "LOCKED").chmod(0)
        try:
            if user is None:
                labels = _labels(discover_disks(platform="linux", fs_root=fs, home=base / "nohome", user="alice"))
            else:
                result = subprocess.run(
                    user.python_command("-c", UNREADABLE_CHECK, str(fs), str(base / "nohome")),
                    env=user.env(base), cwd=base, capture_output=True, text=True, timeout=60, check=False,
                )
                assert result.returncode == 0, result.stderr
                labels = json.loads(result.stdout)
        finally:
            (fs / "media" / "alice").chmod(0o755)
            (fs / "media" / "LOCKED").chmod(0o755)
    assert labels == [f"{fs}/mnt/usb/"]


def test_darwin_volumes_and_home(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    home = tmp_path / "Users" / "alice"
    _mkdirs(fs, "Volumes/KEYS", "Volumes/alice", "Volumes/.Spotlight", "media/ignored", home.name)
    _mkdirs(home, "DSKEYS")
    labels = _labels(discover_disks(platform="darwin", fs_root=fs, home=home, user="alice"))
    # On macOS a volume named like the user is just a volume; /media is not looked at.
    assert labels == [f"{fs}/Volumes/KEYS/", f"{fs}/Volumes/alice/", f"{home}/DSKEYS/"]


def test_home_without_dskeys_adds_nothing(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    _mkdirs(fs, "Volumes/KEYS", "home/alice")
    labels = _labels(discover_disks(platform="darwin", fs_root=fs, home=fs / "home" / "alice"))
    assert labels == [f"{fs}/Volumes/KEYS/"]


def test_drive_roots_from_mask_skips_floppies() -> None:
    a, b, c, d, z = (1 << (ord(letter) - ord("A")) for letter in "ABCDZ")
    assert drive_roots_from_mask(a | b | c | d | z) == ["C:\\", "D:\\", "Z:\\"]
    assert drive_roots_from_mask(a | b) == []
    assert drive_roots_from_mask(0) == []


def test_windows_branch_uses_drive_list_and_backslash_labels(tmp_path: Path) -> None:
    # The Windows drive roots can't exist here; tmp dirs stand in for them to check existence filtering,
    # order and the label separator. Linux /media trees must not be consulted on Windows.
    _mkdirs(tmp_path, "D", "C", "fs/media/STICK")
    drives = [str(tmp_path / "D"), str(tmp_path / "C"), str(tmp_path / "missing"), "Q:\\"]
    disks = discover_disks(platform="win32", windows_drives=lambda: drives, fs_root=tmp_path / "fs", home=tmp_path)
    assert _labels(disks) == [str(tmp_path / "D") + "\\", str(tmp_path / "C") + "\\"]
    assert disks[0].root == tmp_path / "D"


def test_windows_extra_roots_still_first(tmp_path: Path) -> None:
    _mkdirs(tmp_path, "extra", "D")
    disks = discover_disks([tmp_path / "extra"], platform="win32", windows_drives=lambda: [str(tmp_path / "D")])
    assert [d.root for d in disks] == [tmp_path / "extra", tmp_path / "D"]
