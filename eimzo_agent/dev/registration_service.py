"""`eimzo-agent dev registration`: the development registration authority over HTTP, for the demo portal and tests.

POST /issue with a base64 (or PEM) PKCS#10 body answers {"subject_certificate_64", "ca_certificate_64",
"root_certificate_64"}: the three arguments `pki.enroll_pfx_step2` and `pfx.save_pfx` take. Errors answer
{"error": text} with status 400. CORS is open to any origin: a browser page (the demo portal on the agent's port)
calls it directly, and it only ever listens on 127.0.0.1. Stdlib http.server in a thread: one request at a time
is plenty for a developer, and it needs no new dependency.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import pem

from ..keys.errors import KeyStoreError
from .common import serve_in_background
from .registration import CsrError, issue_for_csr

__all__ = ["MAX_BODY", "RegistrationServer", "start_registration"]

MAX_BODY = 64 * 1024  # a PKCS#10 is ~1 KiB; anything near this is not one

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    # Chrome's private/local network preflight; loopback to loopback needs none today, but it costs nothing.
    "Access-Control-Allow-Private-Network": "true",
    "Access-Control-Max-Age": "600",
}


class RegistrationServer(ThreadingHTTPServer):
    """An HTTP server that knows its CA folder; issuing is serialised so the first requests create one CA."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], ca_dir: Path) -> None:
        super().__init__(address, _Handler)
        self.ca_dir = Path(ca_dir)
        self.issue_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: RegistrationServer
    server_version = "eimzo-agent-dev-registration"

    def log_message(self, format: str, *args: object) -> None:
        pass  # a quiet tool: the caller prints the URL, the page shows the outcome

    def do_OPTIONS(self) -> None:  # http.server dispatches on do_<METHOD>
        self._reply(HTTPStatus.NO_CONTENT, None)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self._reply(HTTPStatus.OK, {"service": "eimzo-agent dev registration", "issue": "POST /issue"})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/issue":
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found; POST the request to /issue"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self.close_connection = True  # the body, if any, is not read
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"the body must be a PKCS#10 of 1..{MAX_BODY} bytes"})
            return
        body = self.rfile.read(length)
        try:
            with self.server.issue_lock:
                chain = issue_for_csr(self.server.ca_dir, _request_der(body))
        except (CsrError, KeyStoreError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._reply(
            HTTPStatus.OK,
            {
                "subject_certificate_64": _b64(chain.subject),
                "ca_certificate_64": _b64(chain.ca),
                "root_certificate_64": _b64(chain.root),
            },
        )

    def _reply(self, status: HTTPStatus, document: dict[str, str] | None) -> None:
        data = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        for name, value in _CORS.items():
            self.send_header(name, value)
        if document is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


def _request_der(body: bytes) -> bytes:
    """The DER of a base64 or PEM PKCS#10 body; CsrError for anything else."""
    text = body.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            return pem.unarmor(text)[2]
        except ValueError as exc:
            raise CsrError(f"the PEM body is malformed: {exc}") from exc
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CsrError("the body is not base64 (send pkcs10_64 as it is)") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def start_registration(ca_dir: Path, port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve in a background thread; return the base URL and a function that stops the server."""
    server = RegistrationServer((host, port), ca_dir)
    return server.url, serve_in_background(server, "dev-registration")
