"""What the development CAs (`mint` for RSA/P-256, `ozdst_ca` for O'zDSt) share: file names, folders, times."""

from __future__ import annotations

import datetime
import os
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from ..fsutil import write_atomically
from ..keys.errors import KeyErrorKind, KeyStoreError

CA_CERT_FILE = "ca.crt.pem"
CA_KEY_FILE = "ca.key.pem"


def make_private_directory(directory: Path) -> None:
    """Create `directory` (and parents) with mode 0700; an existing folder is someone's: left as it is."""
    if directory.is_dir():
        return
    directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered through the umask


def write_ca_file(path: Path, data: bytes) -> None:
    """Write a CA file atomically, mode 0600; WRITE_FAILED on failure."""
    try:
        write_atomically(path, data, mode=0o600)
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot write {path}: {exc}") from exc


def missing_half(cert_path: Path, key_path: Path) -> KeyStoreError:
    """The error for a CA folder holding only one of its two files."""
    present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
    detail = f"{present} exists but {missing} is missing; restore it or remove both"
    return KeyStoreError(KeyErrorKind.FILE_NOT_FOUND, detail)


# Dev certificates start an hour in the past: a portal server whose clock lags the developer's machine, or a test
# that fixed its signing time before the CA was minted, still finds them valid.
BACKDATE = datetime.timedelta(hours=1)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def add_years(moment: datetime.datetime, years: int) -> datetime.datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def serve_in_background(server: socketserver.BaseServer, name: str) -> Callable[[], None]:
    """Run a development HTTP service in a daemon thread; returns the function that stops it and frees the port."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop
