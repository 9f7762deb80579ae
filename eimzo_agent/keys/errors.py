"""Errors of the key stores, by kind.

Key stores know nothing of the wire protocol: they say *what* went wrong, and the plugins map each kind to
E-IMZO's status code and reason text. `detail` is for logs and for the person at the keyboard (CLI), never
for a web page: it may hold file system paths.
"""

from __future__ import annotations

import enum


class KeyErrorKind(enum.Enum):
    DISK_NOT_FOUND = "disk_not_found"  # the disk argument is not one of the discovered disks
    BAD_PATH = "bad_path"  # the path argument is neither "" nor "DSKEYS"
    BAD_FILE_NAME = "bad_file_name"  # the name holds separators, "..", NUL or other forbidden characters
    FILE_NOT_FOUND = "file_not_found"  # no such key file (or it vanished, or points outside its disk)
    ALIAS_NOT_FOUND = "alias_not_found"  # the file holds no key entry with that alias
    DAMAGED_FILE = "damaged_file"  # not a well-formed PKCS#12 file
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a kind, not a password; integrity check (MAC) or decryption failed for this password
    UNSUPPORTED = "unsupported"  # well-formed, password right, but an algorithm we cannot handle
    KEY_MISMATCH = "key_mismatch"  # the private key does not belong to the certificate
    FILE_EXISTS = "file_exists"
    WRITE_FAILED = "write_failed"


class KeyStoreError(Exception):
    """A key store operation failed; `kind` tells why, `detail` says it precisely for logs and the CLI."""

    def __init__(self, kind: KeyErrorKind, detail: str = "") -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail
