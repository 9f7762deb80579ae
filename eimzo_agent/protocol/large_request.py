"""Parsing a large request frame without copying its document twice more.

A 10 MB document arrives as one 13 MB frame whose JSON is almost all one Base64 string. `json.loads` of the
decoded frame would copy those 13 MB twice (bytes to str, then the string value) and scan them character by
character, holding the GIL for ≈ 12 ms in one C call: every other page's call waits that out. Here the long
strings are found with `bytes.find` (memchr speed), checked to be plain ASCII without escapes, cut out of the frame
once, and only the small rest goes through `json.loads`. When the whole frame is ASCII (E-IMZO's requests are),
the long strings are not even copied out: each stays in the frame as a `LongText`, whose `str` is made only if a
plugin asks for one (`Call.arg`); a document's Base64 is decoded straight from the frame (`Call.long_arg`), so a
10 MB document's 13.6 MB string is never built. Anything unusual (escapes in a string, non-ASCII in a long
one, very many strings) takes the ordinary path, so the result is always what `json.loads` gives, except that a
long string holding raw control characters is not refused here (Base64 decoding refuses it next).

A create_pkcs7 request's document may also come with its digests, computed while the frame arrived
(`document_start`, `PreparedDocument`; the session does that, server/prehash.py): its `LongText` then carries them.
"""

from __future__ import annotations

import json
import re
import secrets
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

#: The start of a create_pkcs7 request as e-imzo.js (`JSON.stringify({plugin, name, arguments})`) and our client
#: (`{name, arguments, plugin}`) write it, up to the opening quote of its document's Base64.
_CREATE_PKCS7_HEAD = re.compile(rb'\{(?:"plugin":"pkcs7",)?"name":"create_pkcs7",(?:"plugin":"pkcs7",)?"arguments":\["')


def document_start(head: bytes | bytearray | memoryview) -> int | None:
    """Where the document's Base64 begins when the frame starting with `head` is a create_pkcs7 request written
    the usual way (no spaces); None otherwise (any other request, or a layout not recognised: nothing is lost)."""
    match = _CREATE_PKCS7_HEAD.match(bytes(head[:128]))
    return match.end() if match else None


@dataclass(frozen=True)
class PreparedDocument:
    """Digests of the long string starting at `start` in a frame, computed while the frame arrived: a future of
    {algorithm name: digest}, or of None when the string was not plain strict Base64 (then nothing is prepared)."""

    start: int
    digests: Future[dict[str, bytes] | None]


class FramePieces:
    """A request's text as the pieces it arrived in (a large frame's unmasked chunks, a fragmented message's
    fragments), put together only where it is parsed: in a worker thread (protocol/dispatcher.py).

    Why: gathering 13.6 MB into one buffer as the pieces come grows it over and over — reallocations that copy
    megabytes into fresh pages — and each of those steps held the event loop for 10-15 ms (measured with the
    agent's steps timed while another page signed 10 MB documents), while other pages' calls waited. Joined once,
    at the size already known, in the thread that parses the request, none of that is on the loop."""

    __slots__ = ("_pieces", "_size")

    def __init__(self, pieces: list[bytes], size: int) -> None:
        self._pieces = pieces
        self._size = size

    def __len__(self) -> int:
        return self._size

    def join(self) -> bytearray:
        """The whole text, once (the pieces are let go): a bytearray, so that a signature can free it as soon as
        its document is decoded (`LongText.release_frame`)."""
        pieces, self._pieces = self._pieces, []
        return bytearray().join(pieces)


#: Strings longer than this are cut out of the frame instead of going through json.loads.
LONG_STRING = 64 * 1024
#: A frame with more strings than this (E-IMZO requests have a handful) is parsed the ordinary way.
_MOST_STRINGS = 256


class LongText:
    """A long JSON string of a large request, left where it is in the frame (plain ASCII, no escapes)."""

    __slots__ = ("_end", "_frame", "_start", "_text", "digests")

    def __init__(self, frame: bytes | bytearray, start: int, end: int) -> None:
        self._frame: bytes | bytearray | None = frame
        self._start, self._end = start, end
        self._text: str | None = None
        #: The decoded string's digests, when they were computed as the frame arrived (see `PreparedDocument`).
        self.digests: Future[dict[str, bytes] | None] | None = None

    def __len__(self) -> int:
        return self._end - self._start

    def __repr__(self) -> str:
        return f"LongText({len(self)} characters)"

    def view(self) -> memoryview:
        """The string's bytes in the frame, without a copy."""
        if self._frame is None:
            raise ValueError("the request's frame was released")
        return memoryview(self._frame)[self._start:self._end]

    def text(self) -> str:
        """The string itself: made once (one copy), on the first call."""
        if self._text is None:
            self._text = str(self.view(), "ascii")
        return self._text

    @property
    def in_frame(self) -> bool:
        """Whether reading it still needs the frame (it was not made a `str`, and the frame was not released)."""
        return self._text is None and self._frame is not None

    def release_frame(self) -> bool:
        """Empty the whole frame now, not after the reply (a 10 MB document's frame is 13.6 MB, held while its
        signature is made): for a caller done with every long string of the request (`Call.release_long_arg`).
        True when the frame's memory was freed (reading this string afterwards raises ValueError); False, and
        nothing changed, when it is immutable bytes (freed with the request) or a view of it is still alive."""
        if not isinstance(self._frame, bytearray):
            return False
        try:
            self._frame.clear()
        except BufferError:  # someone still reads it: it goes with the request, as before
            return False
        self._frame = None
        return True


def load_request(frame: bytes | bytearray, prepared: PreparedDocument | None = None) -> Any:
    """The frame's JSON value. Raises ValueError (including UnicodeDecodeError) when it is not JSON in UTF-8.

    Long strings may come back as `LongText` (see the module's docstring); `plain()` turns them into `str`. The one
    starting where `prepared` says carries its digests."""
    spans = _long_strings(frame)
    if not spans:
        return json.loads(frame.decode("utf-8"))
    values: list[str] | list[LongText]
    if frame.isascii():
        values = [LongText(frame, start, end) for start, end in spans]
        if prepared is not None:
            for text in values:
                if text._start == prepared.start:
                    text.digests = prepared.digests
    else:
        try:
            view = memoryview(frame)
            values = [str(view[start:end], "ascii") for start, end in spans]  # one copy each, straight into the str
        except UnicodeDecodeError:
            return json.loads(frame.decode("utf-8"))
    marker = f"\0{secrets.token_hex(16)}:"
    pieces: list[bytes | bytearray] = []
    position = 0
    for index, (start, end) in enumerate(spans):
        pieces.append(frame[position:start])
        pieces.append(f"{marker}{index}".encode().replace(b"\0", b"\\u0000"))
        position = end
    pieces.append(frame[position:])
    skeleton = json.loads(b"".join(pieces).decode("utf-8"))
    return _put_back(skeleton, marker, values)


def _long_strings(frame: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of the contents of each string longer than LONG_STRING; [] when there is none, or when the frame
    needs the ordinary parser (escapes, an unterminated string, too many strings)."""
    spans = []
    position = 0
    for _ in range(_MOST_STRINGS):
        opening = frame.find(b'"', position)
        if opening < 0:
            return spans
        closing = frame.find(b'"', opening + 1)
        if closing < 0 or frame.find(b"\\", opening + 1, closing) >= 0:
            return []
        if closing - opening - 1 > LONG_STRING:
            spans.append((opening + 1, closing))
        position = closing + 1
    return []


def plain(value: Any) -> Any:
    """`value` with every `LongText` in it made a `str`: exactly what `json.loads` gives for the frame."""
    if isinstance(value, LongText):
        return value.text()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def _put_back(value: Any, marker: str, values: list[str] | list[LongText]) -> Any:
    if isinstance(value, str):
        if value.startswith(marker):
            return values[int(value[len(marker):])]
        return value
    if isinstance(value, list):
        return [_put_back(item, marker, values) for item in value]
    if isinstance(value, dict):
        # Keys are always str: a dictionary is looked up by them.
        return {plain(_put_back(key, marker, values)): _put_back(item, marker, values) for key, item in value.items()}
    return value
