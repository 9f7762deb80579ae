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
"""

from __future__ import annotations

import json
import secrets
from typing import Any

#: Strings longer than this are cut out of the frame instead of going through json.loads.
LONG_STRING = 64 * 1024
#: A frame with more strings than this (E-IMZO requests have a handful) is parsed the ordinary way.
_MOST_STRINGS = 256


class LongText:
    """A long JSON string of a large request, left where it is in the frame (plain ASCII, no escapes)."""

    __slots__ = ("_end", "_frame", "_start", "_text")

    def __init__(self, frame: bytes | bytearray, start: int, end: int) -> None:
        self._frame, self._start, self._end = frame, start, end
        self._text: str | None = None

    def __len__(self) -> int:
        return self._end - self._start

    def __repr__(self) -> str:
        return f"LongText({len(self)} characters)"

    def view(self) -> memoryview:
        """The string's bytes in the frame, without a copy."""
        return memoryview(self._frame)[self._start:self._end]

    def text(self) -> str:
        """The string itself: made once (one copy), on the first call."""
        if self._text is None:
            self._text = str(self.view(), "ascii")
        return self._text


def load_request(frame: bytes | bytearray) -> Any:
    """The frame's JSON value. Raises ValueError (including UnicodeDecodeError) when it is not JSON in UTF-8.

    Long strings may come back as `LongText` (see the module's docstring); `plain()` turns them into `str`."""
    spans = _long_strings(frame)
    if not spans:
        return json.loads(frame.decode("utf-8"))
    values: list[str] | list[LongText]
    if frame.isascii():
        values = [LongText(frame, start, end) for start, end in spans]
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
