"""server/large_frame.py against websockets' own parser: the same payload for any chunking of the bytes, and only the
plain case taken (everything else left to websockets, which answers it as before)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from eimzo_agent.server.large_frame import HEADER_SIZE, LARGE_FRAME, LargeFrame

LIMIT = 8 * LARGE_FRAME
#: One random payload, sliced: hypothesis then varies lengths and chunkings, not megabytes of data.
PAYLOAD = os.urandom(LARGE_FRAME + 4099)
HANDSHAKE = (b"GET /service/cryptapi HTTP/1.1\r\nHost: 127.0.0.1:64646\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def masked(payload: bytes, opcode: Opcode = Opcode.TEXT, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=True, extensions=[])


def with_rsv1(wire: bytes) -> bytes:
    return bytes([wire[0] | 0x40]) + wire[1:]


def websockets_payload(wire: bytes) -> bytes:
    """What websockets' server-side parser makes of `wire` (one frame, on an open connection)."""
    protocol = ServerProtocol(max_size=None, extensions=None)
    protocol.receive_data(HANDSHAKE)
    (request,) = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    assert protocol.state is State.OPEN
    protocol.receive_data(wire)
    (frame,) = protocol.events_received()
    return frame.data


@settings(max_examples=40, deadline=None)
@given(extra=st.integers(0, 4099), cuts=st.lists(st.integers(1, LARGE_FRAME + 4099), max_size=12),
       tail=st.binary(max_size=40))
def test_same_payload_as_websockets_for_any_chunking(extra: int, cuts: list[int], tail: bytes) -> None:
    payload = PAYLOAD[:LARGE_FRAME + extra]
    wire = masked(payload)
    frame = LargeFrame.start(wire, LIMIT)
    assert frame is not None and frame.length == len(payload)
    stream = wire[HEADER_SIZE:] + tail  # the next frame's bytes may follow in the same chunk
    points = sorted({c for c in cuts if c < len(stream)})
    rest = b""
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        if frame.complete:  # a cut right at the payload's end: what follows is the next frame's, not this one's
            rest += stream[start:end]
            continue
        rest = bytes(frame.feed(stream[start:end]))
        assert frame.received == min(end, len(payload))
    assert frame.complete
    assert bytes(frame.payload().join()) == payload == websockets_payload(wire)
    assert rest == tail


@pytest.mark.parametrize(("wire", "why"), [
    (masked(PAYLOAD[:LARGE_FRAME], Opcode.BINARY), "binary frames are ignored by websockets' path"),
    (masked(PAYLOAD[:LARGE_FRAME], fin=False), "the first fragment of a message"),
    (with_rsv1(masked(PAYLOAD[:LARGE_FRAME])), "a reserved bit (websockets refuses it)"),
    (Frame(Opcode.TEXT, PAYLOAD[:LARGE_FRAME]).serialize(mask=False, extensions=[]), "unmasked (refused)"),
    (masked(PAYLOAD[:LARGE_FRAME - 1]), "below LARGE_FRAME"),
    (masked(b"x" * 200), "a 16-bit length"),
    (masked(PAYLOAD[:LARGE_FRAME])[:HEADER_SIZE - 1], "a header not complete yet"),
    (bytes([0x81, 0xFF]) + (LIMIT + 1).to_bytes(8, "big") + b"mask", "over the limit (websockets closes 1009)"),
    (bytes([0x81, 0xFF]) + (1 << 63).to_bytes(8, "big") + b"mask", "a length with the top bit set"),
])
def test_anything_but_the_plain_case_is_left_to_websockets(wire: bytes, why: str) -> None:
    assert LargeFrame.start(wire, LIMIT) is None, why


def test_a_frame_at_the_limit_is_taken() -> None:
    wire = bytes([0x81, 0xFF]) + LIMIT.to_bytes(8, "big") + b"mask"
    frame = LargeFrame.start(wire, LIMIT)
    assert frame is not None and frame.length == LIMIT and not frame.complete
