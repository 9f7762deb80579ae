"""Writing a brand-new key file: never over an existing one, never half-written under its final name.

A new key (enrollment, save_pfx) must not replace a key the person already has: the file is written complete
under a temporary name in the same folder (the `fsutil` naming, so a power cut's leftover is cleaned up at the
next start) and then hard-linked to its final name, which fails if that name exists. FAT-formatted flash drives
have no hard links: there the file is created with O_EXCL and written in place (a crash can then leave a short
file, which reads as damaged and is never mistaken for a working key).
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import suppress
from pathlib import Path

from ..fsutil import NEW_FILE_MODE, TEMP_MARKER, fsync_directory
from .errors import KeyErrorKind, KeyStoreError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def write_new_key_file(path: Path, data: bytes) -> None:
    """Create `path` with `data` (mode 0600), or raise KeyStoreError FILE_EXISTS / WRITE_FAILED. The folder is
    created if missing, but not its parent: a flash drive pulled out must not turn into a folder on the system disk
    under its old mount point."""
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot create {path.parent}: {exc}") from exc
    if os.path.lexists(path):
        raise KeyStoreError(KeyErrorKind.FILE_EXISTS, f"{path} exists")
    temp = path.parent / f".{path.name}{TEMP_MARKER}{secrets.token_hex(4)}"
    try:
        _write_exclusive(temp, data)
        try:
            os.link(temp, path)
        except FileExistsError:
            raise KeyStoreError(KeyErrorKind.FILE_EXISTS, f"{path} exists") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            _write_exclusive(path, data)  # no hard links here (FAT): O_EXCL is the never-overwrite guarantee
    except FileExistsError:
        raise KeyStoreError(KeyErrorKind.FILE_EXISTS, f"{path} exists") from None
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot write {path}: {exc}") from exc
    finally:
        with suppress(OSError):
            os.unlink(temp)
    fsync_directory(path.parent)


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, NEW_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with suppress(OSError):
            os.unlink(path)
        raise
