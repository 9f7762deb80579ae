"""A scripted smart card for vpcd (vsmartcard's virtual reader driver for pcscd), in pure Python.

vpcd listens on 127.0.0.1:35963 (reader "Virtual PCD 00 00"); a card is "inserted" by connecting to it and
"removed" by closing the connection. Every message is a 2-byte big-endian length plus payload; a 1-byte
payload is a control code (0 power off, 1 power on, 2 reset, 4 get ATR — answered with the ATR), anything
longer is a command APDU answered with the response APDU.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

VPCD_PORT = 35963
VPCD_READER = "Virtual PCD 00 00"


def _with_tck(atr: bytes) -> bytes:
    """Append TCK (XOR of T0..the last historical byte), required when T=1 is offered."""
    check = 0
    for byte in atr[1:]:
        check ^= byte
    return atr + bytes([check])


#: An ISO 7816 ATR of no real product: T=0 and T=1, historical bytes spell "EIMZOTEST".
DEFAULT_ATR = _with_tck(bytes.fromhex("3B898001") + b"EIMZOTEST")

Responder = Callable[[bytes], bytes]


def default_responder(apdu: bytes) -> bytes:
    if apdu[1:2] == b"\xa4":  # SELECT: no applet of anyone's here, but the card answers like a card
        return bytes.fromhex("6a82")
    return bytes.fromhex("6d00")  # INS not supported


class VirtualCard:
    def __init__(self, atr: bytes = DEFAULT_ATR, responder: Responder = default_responder,
                 port: int = VPCD_PORT) -> None:
        self.atr = atr
        self.responder = responder
        self.port = port
        self.apdus: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def insert(self) -> None:
        self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(5)

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = _read(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack(">H", header)
                payload = _read(sock, length)
                if payload is None:
                    return
                if length == 1:
                    if payload[0] == 4:
                        sock.sendall(struct.pack(">H", len(self.atr)) + self.atr)
                    continue  # power off/on/reset: no reply
                self.apdus.append(payload)
                reply = self.responder(payload)
                sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            return


def _read(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data
