"""Which "disks" the agent offers to pages (E-IMZO `pfx.list_disks`).

E-IMZO's model is a list of folders, each searched for key files in its root and its `DSKEYS` subfolder.
On Windows those are the drive roots (`C:\\`); the Java agent on Linux/macOS looks at mounted sticks under
`/media` or `/Volumes`. Pages only ever see the `label` string, and hand it back to pick a disk.

Discovery only lists the immediate children of a few fixed folders: it never recurses, because it runs on
every `list_disks`/`list_all_certificates` call and a slow or huge mount must not stall the agent.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The folder E-IMZO keeps keys in, inside a disk (and the name of the vendor's local-key folders).
DSKEYS = "DSKEYS"


@dataclass(frozen=True)
class Disk:
    """One place to look for key files."""

    label: str  # what pages see: absolute, trailing separator ("C:\\", "/media/alice/FLASH/")
    root: Path


def discover_disks(
    extra_roots: Sequence[str | os.PathLike[str]] = (),
    *,
    system_locations: bool = True,
    platform: str | None = None,
    home: Path | None = None,
    user: str | None = None,
    windows_drives: Callable[[], list[str]] | None = None,
    fs_root: Path = Path("/"),
) -> list[Disk]:
    """The disks to offer: `extra_roots` first (in order), then the system's usual key locations.

    Only existing, readable directories are returned, each real directory once (the first label wins).
    `platform`, `home`, `user`, `windows_drives` and `fs_root` exist so tests can describe a machine.
    """
    found = _DiskList()
    for root in extra_roots:
        found.add(os.path.abspath(os.fspath(root)))
    if system_locations:
        platform = platform or sys.platform
        if platform.startswith(("win32", "cygwin")):
            with _no_windows_error_dialogs():
                for drive in (windows_drives or windows_drive_roots)():
                    found.add(drive, sep="\\")
        else:
            home = home if home is not None else _default_home()
            for candidate in _unix_candidates(platform, fs_root, home, user if user else _default_user()):
                found.add(str(candidate))
    return found.disks


class _DiskList:
    """Collects disks in order, skipping missing, unreadable and already seen directories."""

    def __init__(self) -> None:
        self.disks: list[Disk] = []
        self._seen: set[str] = set()

    def add(self, path: str, sep: str = os.sep) -> None:
        if not _usable_dir(path):
            return
        real = os.path.normcase(os.path.realpath(path))
        if real in self._seen:
            return
        self._seen.add(real)
        label = path if path.endswith(("/", "\\")) else path + sep
        self.disks.append(Disk(label=label, root=Path(path)))


def _usable_dir(path: str) -> bool:
    # os.access, not a listing: a disk that is there but closed to us (another user's /media/bob) is useless.
    try:
        return os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)
    except (OSError, ValueError):  # ValueError: NUL in a configured path
        return False


def _unix_candidates(platform: str, fs_root: Path, home: Path | None, user: str | None) -> list[Path]:
    """Linux/macOS folders that may be disks, in the order they are offered."""
    if platform == "darwin":
        containers: list[tuple[Path, set[str]]] = [(fs_root / "Volumes", set())]
    else:
        # /media/$USER (udisks2) and /run/media/$USER (Fedora, Arch) hold the user's sticks; plain /media
        # holds sticks on older systems and the vendor's /media/DSKEYS folder for keys kept on the machine.
        # /media/$USER itself is a container, not a stick.
        containers = [(fs_root / "media", {user} if user else set())]
        if user:
            containers += [(fs_root / "media" / user, set()), (fs_root / "run" / "media" / user, set())]
        containers.append((fs_root / "mnt", set()))
    candidates = [child for container, skip in containers for child in _child_dirs(container, skip)]
    if home is not None:
        candidates.append(home / DSKEYS)
    return candidates


def _child_dirs(container: Path, skip: set[str]) -> list[Path]:
    """Non-hidden entries of `container`, sorted by name; existence is checked by the caller."""
    try:
        with os.scandir(container) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(".") and e.name not in skip)
    except OSError:  # missing, not a directory, or unreadable: nothing to offer from here
        return []
    return [container / name for name in names]


def _default_home() -> Path | None:
    try:
        return Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (some service accounts)
        return None


def _default_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


def drive_roots_from_mask(mask: int) -> list[str]:
    """`GetLogicalDrives` bit mask to drive roots; A: and B: are skipped (floppy probing takes seconds)."""
    return [f"{chr(ord('A') + bit)}:\\" for bit in range(2, 26) if mask & (1 << bit)]


def windows_drive_roots() -> list[str]:
    """The drive roots Windows knows of right now (`C:\\`, `D:\\`, …)."""
    import ctypes

    return drive_roots_from_mask(ctypes.windll.kernel32.GetLogicalDrives())  # type: ignore[attr-defined]


@contextlib.contextmanager
def _no_windows_error_dialogs() -> Iterator[None]:
    """Keep Windows from popping up "There is no disk in the drive" while empty card readers are probed."""
    if sys.platform != "win32":
        yield
        return
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    old = ctypes.c_uint(0)
    sem_failcriticalerrors = 0x0001
    changed = kernel32.SetThreadErrorMode(sem_failcriticalerrors, ctypes.byref(old))
    try:
        yield
    finally:
        if changed:
            kernel32.SetThreadErrorMode(old.value, None)
