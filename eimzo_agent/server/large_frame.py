"""A large request frame taken in as it arrives, chunk by chunk, instead of whole from websockets' parser.

Why: websockets' sans-I/O parser hands over complete frames only. For a 10 MB document (a 13 MB frame) it copies
the frame into its buffer, copies it out again once the last byte is there, and unmasks it in one more call: three
passes over fresh memory, each one C call holding the GIL for 5-15 ms, and the last two only after the whole frame
has arrived. Here each chunk is unmasked as it comes and kept; the chunks are joined into the request once, in the
thread that parses it (`protocol.large_request.FramePieces`), so that work overlaps the transfer and no step of the
event loop handles more than a chunk.

Only the plain case is taken, and only where the caller knows a frame starts (nothing partly handed to websockets):
a final (FIN), masked TEXT frame with no reserved bits, whose announced length is at least LARGE_FRAME and within
the frame limit. Everything else, every malformed header and every frame over the limit included, stays with
websockets, which answers it as before. Sans-I/O: bytes in, bytes out; the session (server/listener.py) does the
socket and the accounting.
"""

from __future__ import annotations

from collections.abc import Callable

from eimzo_agent.protocol.large_request import FramePieces

try:  # the same C routine websockets' own parser uses; its pure-Python twin otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

#: Frames at least this long are taken here; smaller ones cost websockets little.
LARGE_FRAME = 1024 * 1024
#: FIN + opcode TEXT, no reserved bits: the only first octet taken.
_FIN_TEXT = 0x81
#: Mask bit + "64-bit length follows": a frame of LARGE_FRAME bytes or more from a client has this second octet.
_MASKED_LONG = 0x80 | 127
#: 2 octets, the 8-octet length, the 4-octet mask.
HEADER_SIZE = 14


class LargeFrame:
    """The payload of one large text frame, unmasked as its bytes are fed."""

    def __init__(self, length: int, mask: bytes) -> None:
        self.length = length
        self._mask = mask
        self._chunks: list[bytes] = []
        self._received = 0
        #: Called with each unmasked piece and its offset in the payload (server/prehash.py reads along).
        self.observer: Callable[[bytes, int], None] | None = None

    @classmethod
    def start(cls, data: bytes | memoryview, max_size: int) -> LargeFrame | None:
        """A LargeFrame when `data` begins with the header of a frame taken here (see the module's docstring); None
        for anything else, including a header not yet complete in `data`."""
        if len(data) < HEADER_SIZE or data[0] != _FIN_TEXT or data[1] != _MASKED_LONG:
            return None
        length = int.from_bytes(data[2:10], "big")
        if not LARGE_FRAME <= length <= max_size:  # over the limit: websockets refuses it (close 1009)
            return None
        return cls(length, bytes(data[10:14]))

    @property
    def received(self) -> int:
        return self._received

    @property
    def complete(self) -> bool:
        return self._received == self.length

    def payload(self) -> FramePieces:
        """The unmasked payload, complete, as its chunks (joined where the request is parsed)."""
        return FramePieces(self._chunks, self._received)

    def feed(self, data: bytes | memoryview) -> memoryview:
        """Take the frame's share of `data` (after the header); returns what follows the frame (the next frame's
        bytes, for websockets), empty while the frame is incomplete."""
        view = memoryview(data)
        take = min(len(view), self.length - self._received)
        offset = self._received % 4  # where in the 4-byte mask this chunk starts
        mask = self._mask[offset:] + self._mask[:offset]
        chunk = apply_mask(view[:take], mask)
        if chunk:
            if self.observer is not None:
                self.observer(chunk, self._received)
            self._chunks.append(chunk)
            self._received += len(chunk)
        return view[take:]
