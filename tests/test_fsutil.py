"""The one atomic writer: modes, symlinks, no litter on failure, and cleaning up after a crash."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from eimzo_agent.fsutil import is_temp_file_name, remove_leftover_temp_files, write_atomically

LONG_AGO = time.time() - 3600


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of its own (tmp_path also holds the test's HOME)."""
    path = tmp_path / "folder"
    path.mkdir()
    return path


def test_keeps_the_mode_of_the_file_it_replaces(folder: Path) -> None:
    target = folder / "DS1234567890001.pfx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    assert write_atomically(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o640
    assert [p.name for p in folder.iterdir()] == [target.name]


def test_new_file_is_private_unless_a_mode_is_given(folder: Path) -> None:
    write_atomically(folder / "new.pfx", b"data")
    assert mode(folder / "new.pfx") == 0o600
    write_atomically(folder / "public.pem", b"cert", mode=0o644)
    assert mode(folder / "public.pem") == 0o644
    (folder / "public.pem").chmod(0o600)
    write_atomically(folder / "public.pem", b"cert", mode=0o644)  # a given mode wins over the old one
    assert mode(folder / "public.pem") == 0o644


def test_failure_raises_and_leaves_no_trace(folder: Path) -> None:
    target = folder / "occupied"
    target.mkdir()  # os.replace cannot put a file over a directory
    (target / "inside").write_bytes(b"keep")
    with pytest.raises(OSError):
        write_atomically(target, b"data")
    assert sorted(p.name for p in folder.iterdir()) == ["occupied"]
    assert (target / "inside").read_bytes() == b"keep"
    with pytest.raises(OSError):
        write_atomically(folder / "missing" / "f.pfx", b"x")


def test_a_symlink_is_followed_and_stays_a_link(folder: Path) -> None:
    real = folder / "store" / "key.pfx"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = folder / "key.pfx"
    link.symlink_to(Path("store") / "key.pfx")
    assert write_atomically(link, b"new") == real
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "key.pfx")
    assert real.read_bytes() == b"new" and mode(real) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["key.pfx"]  # the temporary file lived beside the target


def test_temporary_names_are_recognisable() -> None:
    assert is_temp_file_name(".DS1234.pfx.eimzo-tmp-0a1b2c3d")
    assert is_temp_file_name(".approved-domains.json.eimzo-tmp-ffffffff")
    for other in ("DS1234.pfx", ".DS1234.pfx.tmp", ".x.eimzo-tmp-0a1b2c3", ".x.eimzo-tmp-0a1b2c3d.pfx",
                  "x.eimzo-tmp-0a1b2c3d", ".x.eimzo-tmp-0A1B2C3D"):
        assert not is_temp_file_name(other), other


def test_a_crash_before_the_rename_leaves_a_temporary_file_that_start_up_removes(folder: Path) -> None:
    target = folder / "DS1.pfx"
    target.write_bytes(b"the key")
    # A real process dies between writing the temporary file and renaming it (power cut, kill -9).
    crash = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from eimzo_agent import fsutil
        os.replace = lambda *args: os._exit(3)
        fsutil.write_atomically(Path({str(target)!r}), b"half of a new key")
    """)
    result = subprocess.run([sys.executable, "-c", crash], check=False, timeout=60)
    assert result.returncode == 3
    assert target.read_bytes() == b"the key"
    (leftover,) = [p for p in folder.iterdir() if p != target]
    assert is_temp_file_name(leftover.name) and leftover.name.startswith(".DS1.pfx.")

    assert remove_leftover_temp_files([folder]) == []  # too fresh: may be a write in progress elsewhere
    os.utime(leftover, (LONG_AGO, LONG_AGO))
    assert remove_leftover_temp_files([folder]) == [leftover]
    assert [p.name for p in folder.iterdir()] == ["DS1.pfx"]


def test_leftover_removal_touches_nothing_else(tmp_path: Path) -> None:
    keys, other = tmp_path / "keys", tmp_path / "elsewhere"
    keys.mkdir()
    other.mkdir()
    old = keys / ".DS1.pfx.eimzo-tmp-00000001"
    fresh = keys / ".DS2.pfx.eimzo-tmp-00000002"
    look_alike = keys / ".DS3.pfx.tmp"
    folder = keys / ".DS4.pfx.eimzo-tmp-00000004"
    victim = other / "precious"
    link = keys / ".DS5.pfx.eimzo-tmp-00000005"
    for path in (old, fresh, look_alike, victim):
        path.write_bytes(b"x")
    folder.mkdir()
    link.symlink_to(victim)
    for path in (old, look_alike, folder, victim):
        os.utime(path, (LONG_AGO, LONG_AGO))
    os.utime(link, (LONG_AGO, LONG_AGO), follow_symlinks=False)

    removed = remove_leftover_temp_files([keys, tmp_path / "unplugged"])
    assert removed == [old]
    assert sorted(p.name for p in keys.iterdir()) == sorted(p.name for p in (fresh, look_alike, folder, link))
    assert victim.read_bytes() == b"x"
