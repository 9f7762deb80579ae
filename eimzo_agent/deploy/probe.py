"""Ask whatever listens on an agent port what it is, the way a portal does: a WebSocket to /service/cryptapi and
E-IMZO's `version` call.

Our agent answers with `"agent": "eimzo-agent"`; E-IMZO answers the same call without that field; anything else
that accepts the connection is another program. For wss the TLS handshake is made without trusting anything (a
portal's browser would check the certificate; here we want to know who answers), and the certificate it presents
is returned so the caller can compare it with the local CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import ssl
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

PATH = "/service/cryptapi"
#: No proxy from the environment may stand between us and 127.0.0.1 (websockets 15+ would use one; 13 and 14
#: never do and have no such option).
_NO_PROXY: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(connect.__init__).parameters else {}
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
    """Who answers on `port` (blocking, at most about `timeout` seconds)."""
    return asyncio.run(_probe(port, tls, timeout, host))


async def _probe(port: int, tls: bool, timeout: float, host: str) -> Probe:
    # The asyncio client, not the sync one: over TLS the sync client waits for the socket to become readable,
    # which never happens when the reply already sits decrypted in the TLS layer's buffer (seen as a rare
    # "timed out while waiting for handshake response" against a healthy agent).
    url = f"{'wss' if tls else 'ws'}://{host}:{port}{PATH}"
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # we only want to know who answers; trust is checked separately
    certificate = None
    try:
        async with asyncio.timeout(timeout):
            async with connect(url, ssl=context, origin="http://localhost", compression=None, open_timeout=timeout,
                               close_timeout=1, max_size=1024 * 1024, **_NO_PROXY) as ws:
                if tls:
                    ssl_object = ws.transport.get_extra_info("ssl_object")
                    certificate = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
                # An agent that refuses us answers right after the handshake and closes: its reply is still queued.
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"name": "version", "arguments": []}))
                reply = await ws.recv()
    except ConnectionRefusedError:
        return Probe(url, Speaker.NOTHING, error="connection refused")
    except (OSError, TimeoutError, WebSocketException, ssl.SSLError) as exc:
        return Probe(url, Speaker.OTHER, certificate=certificate,
                     error=f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
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
