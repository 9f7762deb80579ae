"""Ask whatever listens on an agent port what it is, the way a portal does: a WebSocket to /service/cryptapi and
E-IMZO's `version` call.

Our agent answers with `"agent": "eimzo-agent"`; E-IMZO answers the same call without that field; anything else
that accepts the connection is another program. For wss the TLS handshake is made without trusting anything (a
portal's browser would check the certificate; here we want to know who answers), and the certificate it presents
is returned so the caller can compare it with the local CA.
"""

from __future__ import annotations

import contextlib
import enum
import json
import socket
import ssl
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

PATH = "/service/cryptapi"
#: Our own agent answers in milliseconds; E-IMZO (Java) may take a moment when busy.
TIMEOUT = 5.0


class Speaker(enum.Enum):
    AGENT = "eimzo-agent"
    EIMZO = "E-IMZO"
    OTHER = "other program"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Probe:
    url: str
    speaker: Speaker
    version: str | None = None
    certificate: bytes | None = None  #: DER of the certificate a wss port presented
    error: str | None = None  #: why it is not an agent (another program) or cannot be reached


def probe(port: int, *, tls: bool = False, timeout: float = TIMEOUT, host: str = "127.0.0.1") -> Probe:
    url = f"{'wss' if tls else 'ws'}://{host}:{port}{PATH}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return Probe(url, Speaker.NOTHING, error="connection refused")
    except OSError as exc:
        return Probe(url, Speaker.NOTHING, error=str(exc))
    certificate = None
    try:
        if tls:
            # The TLS handshake is ours (the certificate is read before anyone may close the socket); websockets
            # then speaks over it as over a plain one.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # we only want to know who answers; trust is checked separately
            sock = context.wrap_socket(sock, server_hostname=host)
            certificate = sock.getpeercert(binary_form=True)
        # Our own socket: no proxy from the environment may stand between us and 127.0.0.1.
        with connect(f"ws://{host}:{port}{PATH}", sock=sock, origin="http://localhost", open_timeout=timeout,
                     close_timeout=1, compression=None, max_size=1024 * 1024) as ws:
            # An agent that refuses us answers right after the handshake and closes: its reply is still queued.
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"name": "version", "arguments": []}))
            reply = ws.recv(timeout)
    except (OSError, TimeoutError, WebSocketException, ssl.SSLError) as exc:
        sock.close()
        return Probe(url, Speaker.OTHER, error=f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
    return _classify(url, reply, certificate)


def _classify(url: str, reply: str | bytes, certificate: bytes | None) -> Probe:
    try:
        data = json.loads(reply)
    except ValueError:
        return Probe(url, Speaker.OTHER, certificate=certificate, error="the reply is not JSON")
    if not isinstance(data, dict) or "major" not in data or "minor" not in data:
        # An agent that refuses us (another user's eimzo-agent does) says why in "reason".
        reason = data.get("reason") if isinstance(data, dict) else None
        return Probe(url, Speaker.OTHER, certificate=certificate,
                     error=str(reason) if reason else "the reply is not E-IMZO's version reply")
    if data.get("agent") == "eimzo-agent":
        return Probe(url, Speaker.AGENT, str(data.get("agent_version", "?")), certificate)
    version = ".".join(str(data[part]) for part in ("major", "minor", "patch") if part in data)
    return Probe(url, Speaker.EIMZO, version, certificate)
