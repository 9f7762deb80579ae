"""Replacing key files on disk: the password change as one safe step, and atomic writes with key-store errors.

A password change must never leave the person without a working key: the new bytes are proved to open with the
new password before they replace the old ones, atomically. It must not lose to a second change of the same file
running at the same time either (two tabs, a double click): changes of one file run one after the other, and the
second one reads what the first wrote — with the old password it then fails as WRONG_PASSWORD instead of
silently undoing the first. The lock is per process; the agent is the only writer of its user's key files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..fsutil import write_atomically
from .errors import KeyErrorKind, KeyStoreError
from .pfx_files import read_key_file
from .pkcs12 import change_pfx_password

_registry_lock = threading.Lock()
#: One lock per real file path. Never pruned: a process changes the passwords of a handful of files at most.
_file_locks: dict[str, threading.Lock] = {}


def change_key_file_password(path: Path, alias: str, old_password: str, new_password: str) -> None:
    """Change the password of the key file at `path` (a symlink is followed: its target is rewritten).

    The file keeps its encryption scheme, friendlyName and everything else (see `pkcs12.rewrite`). Raises
    KeyStoreError: FILE_NOT_FOUND / DAMAGED_FILE for the file, WRONG_PASSWORD when `old_password` does not open
    it (also when another change of the same file just finished), ALIAS_NOT_FOUND when `alias` is not in it,
    UNSUPPORTED for a scheme that cannot be re-created, WRITE_FAILED when it cannot be replaced. On any error
    the file is unchanged. ValueError for an empty new password.
    """
    target = os.path.realpath(path)
    with _lock_for(target):
        data = read_key_file(Path(target))
        rewritten = change_pfx_password(data, old_password, new_password, alias)
        write_key_file(Path(target), rewritten)


def write_key_file(path: Path, data: bytes) -> None:
    """`fsutil.write_atomically` with its OSError turned into KeyStoreError(WRITE_FAILED)."""
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot write {path}: {exc}") from exc


def _lock_for(real_path: str) -> threading.Lock:
    key = os.path.normcase(real_path)
    with _registry_lock:
        return _file_locks.setdefault(key, threading.Lock())
