"""What the development CAs (`mint` for RSA/P-256, `ozdst_ca` for O'zDSt) share: file names, folders, times."""

from __future__ import annotations

import datetime
import http.server
import logging
import os
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class SmallBodyHandler(http.server.BaseHTTPRequestHandler):
    """What the development TSA and OCSP responder share: a bounded request body, a bytes reply, quiet logging."""

    #: Larger (or unknown-length) bodies are not read: the request gets its answer and the connection closes.
    max_body = 64 * 1024
    #: Prefix of this service's lines in the log.
    log_prefix = "dev service"

    def read_small_body(self) -> bytes:
        """The request body, or b"" when its length is unknown or above `max_body`."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if 0 <= length <= self.max_body:
            return self.rfile.read(length)
        self.close_connection = True  # unknown or huge: do not read it, answer and close
        return b""

    def send_bytes(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger(type(self).__module__).info(f"{self.log_prefix}: " + format, *args)
