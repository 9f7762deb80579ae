"""Key files (`*.pfx`) on disks, and the safe lookup of the file a web page names.

A page picks a key by (disk, path, name) strings it got from `list_*_certificates`. Those strings are hostile
input: `resolve_key_file` never joins them into a path. It matches `disk` against the discovered labels,
`path` against "" / "DSKEYS", and `name` against the entries of a directory listing, then checks that the
file really lies inside the disk. Listing and lookup share one selection of files, so every listed entry
resolves, and nothing that is not listed does.
"""

from __future__ import annotations

import logging
import os
import stat
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eimzo_agent.keys.disks import DSKEYS, Disk
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError

log = logging.getLogger(__name__)

#: Real key files are a few KiB; anything bigger is not one, and must not be read into memory on every listing.
MAX_KEY_FILE_SIZE = 1024 * 1024
MAX_NAME_LENGTH = 255
PFX_SUFFIX = ".pfx"

AliasReader = Callable[[bytes], list[str]]


@dataclass(frozen=True)
class PfxFileEntry:
    """One key entry of one key file, as `list_certificates` reports it."""

    disk: str  # Disk.label
    path: str  # "" (disk root) or "DSKEYS"
    name: str  # file name without ".pfx", case as on disk
    alias: str
    file: Path  # absolute path of the directory entry; for the agent only, never sent to pages


def list_certificates(disk: Disk, *, read_aliases: AliasReader | None = None) -> list[PfxFileEntry]:
    """Every key entry in the key files of `disk` (root and DSKEYS), sorted by (path, name).

    A file that can't be read or parsed is logged and skipped: one broken file must not hide the others.
    """
    if read_aliases is None:
        from eimzo_agent.keys.pkcs12 import list_aliases  # lazy: pkcs12 pulls in the crypto stack

        read_aliases = list_aliases
    entries: list[PfxFileEntry] = []
    for path in ("", DSKEYS):
        for file in _key_files(disk, path).values():
            stem = file.name[: -len(PFX_SUFFIX)]
            for alias in _aliases_of(file, read_aliases):
                entries.append(PfxFileEntry(disk=disk.label, path=path, name=stem, alias=alias, file=file))
    return entries


def list_all_certificates(disks: Sequence[Disk], **kw: Any) -> list[PfxFileEntry]:
    """`list_certificates` of every disk, in disk order."""
    return [entry for disk in disks for entry in list_certificates(disk, **kw)]


def resolve_key_file(disks: Sequence[Disk], disk: str, path: str, name: str) -> tuple[Disk, Path]:
    """The key file a page asks for, as (disk, absolute path); KeyStoreError says which argument failed.

    This is the security boundary between page-supplied strings and the file system. The path returned is the
    directory entry (its stem is the listed name); its real path was checked to be a regular file on the disk.
    """
    found = _find_disk(disks, disk)
    if not isinstance(path, str) or not path.isascii() or path.upper() not in ("", DSKEYS):
        raise KeyStoreError(KeyErrorKind.BAD_PATH, f"path {path!r}")
    stem = _check_name(name)
    file = _key_files(found, path.upper()).get(stem.casefold())
    if file is None:
        raise KeyStoreError(KeyErrorKind.FILE_NOT_FOUND, f"{stem}{PFX_SUFFIX} in {found.label} {path!r}")
    return found, file


def key_folders(disks: Sequence[Disk]) -> list[Path]:
    """The folders key files are listed from: each disk's root and its DSKEYS folder (when it has one).

    For housekeeping such as `fsutil.remove_leftover_temp_files` at start-up.
    """
    folders: list[Path] = []
    for disk in disks:
        dskeys = _find_dskeys(disk.root)
        folders += [disk.root] if dskeys is None else [disk.root, dskeys]
    return folders


def read_key_file(path: Path) -> bytes:
    """The bytes of a key file, refusing anything but a regular file of at most MAX_KEY_FILE_SIZE."""
    # O_NONBLOCK: a FIFO planted in place of a key file would otherwise block open() forever.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.FILE_NOT_FOUND, f"{path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, device or FIFO swapped in for the key file
            raise KeyStoreError(KeyErrorKind.FILE_NOT_FOUND, f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_KEY_FILE_SIZE + 1)  # +1 tells "too big" from "exactly the limit"
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"{path}: bigger than {MAX_KEY_FILE_SIZE} bytes")
    return data


def _find_disk(disks: Sequence[Disk], label: str) -> Disk:
    if isinstance(label, str) and label:
        for disk in disks:
            if label in (disk.label, disk.label[:-1]):  # clients differ on the trailing separator
                return disk
    raise KeyStoreError(KeyErrorKind.DISK_NOT_FOUND, f"disk {label!r}")


def _check_name(name: str) -> str:
    """The file name stem a page sent (".pfx" removed if present); BAD_FILE_NAME if it could leave its folder."""
    if not isinstance(name, str):
        raise KeyStoreError(KeyErrorKind.BAD_FILE_NAME, f"name {name!r}")
    stem = name[: -len(PFX_SUFFIX)] if _has_pfx_suffix(name) else name
    if not _is_safe_stem(stem) or len(name) > MAX_NAME_LENGTH:
        raise KeyStoreError(KeyErrorKind.BAD_FILE_NAME, f"name {name!r}")
    return stem


def _has_pfx_suffix(name: str) -> bool:
    # Compare the last four characters only: str.lower() of some non-ASCII letters changes the length.
    return name[-len(PFX_SUFFIX) :].lower() == PFX_SUFFIX


def _is_safe_stem(stem: str) -> bool:
    # ":" would reach drives and NTFS alternate data streams; control characters and lone surrogates have no
    # business in a key file name and break logs and file system encodings.
    return (
        bool(stem)
        and not stem.startswith(".")
        and ".." not in stem
        and not any(ch in "/\\:" or unicodedata.category(ch) in ("Cc", "Cs") for ch in stem)
    )


def _key_files(disk: Disk, path: str) -> dict[str, Path]:
    """Key files in one folder of `disk`, sorted by name: case-folded stem -> absolute path of the entry.

    Only names that `resolve_key_file` accepts, only regular files whose real path is inside the disk. When
    names differ only in case (possible on Linux), the first in sorted order wins, in listing and lookup alike.
    """
    disk_real = Path(os.path.realpath(disk.root))
    folder = _find_dskeys(disk.root) if path else disk.root
    if folder is None:
        return {}
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if _has_pfx_suffix(e.name)]
    except OSError as exc:  # unplugged, unreadable: no keys here
        log.debug("cannot list %s: %s", folder, exc)
        return {}
    files: dict[str, Path] = {}
    for entry_name in sorted(names, key=lambda n: (n[: -len(PFX_SUFFIX)], n)):
        stem = entry_name[: -len(PFX_SUFFIX)]
        key = stem.casefold()
        if key in files or not _is_safe_stem(stem) or len(entry_name) > MAX_NAME_LENGTH:
            continue
        file = Path(os.path.abspath(folder / entry_name))
        if _is_regular_file_inside(file, disk_real):
            files[key] = file
    return files


def _find_dskeys(root: Path) -> Path | None:
    """The disk's DSKEYS folder, whatever its case ("DSKEYS" itself preferred when several exist)."""
    try:
        with os.scandir(root) as it:
            names = [e.name for e in it if e.name.isascii() and e.name.upper() == DSKEYS]
    except OSError:
        return None
    return root / min(names, key=lambda n: (n != DSKEYS, n)) if names else None


def _is_regular_file_inside(file: Path, disk_real: Path) -> bool:
    """Whether `file` is (or links to) a regular file inside the disk: symlinks must not lead off the disk."""
    real = os.path.realpath(file)
    if not _is_within(real, disk_real):
        log.warning("ignoring %s: it leads outside its disk, to %s", file, real)
        return False
    try:
        return stat.S_ISREG(os.stat(real).st_mode)
    except OSError:  # dangling symlink, vanished
        return False


def _is_within(path: str, root: Path) -> bool:
    return os.path.normcase(path).startswith(os.path.normcase(os.path.join(root, "")))


def _aliases_of(file: Path, read_aliases: AliasReader) -> list[str]:
    """The key aliases of one file, or [] (with a warning) when it can't be read or isn't a key file."""
    try:
        size = os.stat(file).st_size
        if size > MAX_KEY_FILE_SIZE:
            log.warning("ignoring %s: %d bytes is too big for a key file", file, size)
            return []
        aliases = read_aliases(read_key_file(file))
    except Exception as exc:  # any parser failure on a hostile/broken file must only drop that file
        log.warning("ignoring key file %s: %s", file, exc)
        return []
    if not aliases:
        log.info("ignoring %s: it holds no private key", file)
    return list(dict.fromkeys(aliases))  # one entry per alias, even if a file repeats one
