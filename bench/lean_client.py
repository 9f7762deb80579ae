"""A WebSocket client without a thread: websockets' sans-I/O `ClientProtocol` over a blocking socket.

Why the benches need it: `websockets.sync.client.connect` starts a background thread for every connection, and
that thread hand-off plus its locks costs the measuring process about a millisecond per call, as much as the
agent's whole side of a `version` round trip. This client does the same handshake, masking and close through the
same library, so the figures it gives are the agent's plus what any lean client (a browser's C++ code) pays.
"""

from __future__ import annotations

import socket
import time

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri


def call(port: int, origin: str | None, request: str, timeout: float = 60) -> str:
    """One E-IMZO request on a new connection, as e-imzo.js makes it: handshake, request, reply, the agent's close
    answered, until the agent ends the TCP connection. Returns the reply text."""
    return call_timed(port, origin, request, timeout)[0]


def call_timed(port: int, origin: str | None, request: str, timeout: float = 60) -> tuple[str, float]:
    """`call`, and the seconds from opening the connection to having the whole reply: what a page waits for
    (e-imzo.js hands the reply to its callback in `onmessage`; the close that follows does not delay it). The
    close is still completed before this returns, so a loop of calls never overlaps one call's close with the
    next call."""
    start = time.perf_counter()
    replied = 0.0
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/service/cryptapi"),
                              origin=Origin(origin) if origin else None, max_size=None)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protocol.send_request(protocol.connect())
        _send(sock, protocol)
        parts: list[bytes] = []
        reply: str | None = None
        sent = False
        while True:
            for event in protocol.events_received():
                if isinstance(event, Response):
                    if event.status_code != 101:
                        raise ConnectionError(f"handshake refused: {event.status_code}")
                elif event.opcode in (Opcode.TEXT, Opcode.CONT):
                    parts.append(event.data)
                    if event.fin:
                        reply = b"".join(parts).decode()
                        replied = time.perf_counter() - start
            if protocol.state is State.OPEN and not sent:
                protocol.send_text(request.encode())
                sent = True
            _send(sock, protocol)
            data = sock.recv(1 << 20)
            if not data:
                protocol.receive_eof()
                if reply is None:
                    raise ConnectionError("the agent closed the connection without a reply")
                return reply, replied
            protocol.receive_data(data)


def _send(sock: socket.socket, protocol: ClientProtocol) -> None:
    for chunk in protocol.data_to_send():
        if chunk:
            sock.sendall(chunk)
