"""E-IMZO's reply shapes: flat JSON, `success` and `status` first, payload fields beside them, `reason` on
failure. Used by the dispatcher and by the server for the replies it gives before any dispatch."""

from __future__ import annotations

import json
import secrets
from typing import Any

from eimzo_agent.protocol.base64data import Base64Pieces, Base64Text
from eimzo_agent.protocol.errors import Status

#: Base64 values longer than this are spliced into the JSON text instead of going through json.dumps.
_SPLICE_AT = 64 * 1024


def encode_reply(payload: dict[str, Any] | list[Any]) -> str:
    return "".join(encode_reply_parts(payload))


def encode_reply_parts(payload: dict[str, Any] | list[Any]) -> list[str]:
    """The reply's JSON text as pieces to be sent one after another (their concatenation is `encode_reply`):
    a large Base64 value stays its own piece, so a 13 MB signature is never copied into one more string."""
    if isinstance(payload, dict):
        big = [key for key, value in payload.items()
               if isinstance(value, Base64Pieces) or (isinstance(value, Base64Text) and len(value) > _SPLICE_AT)]
        if big:
            return _spliced(payload, big)
    return [json.dumps(payload, ensure_ascii=False, separators=(",", ":"))]


def _spliced(payload: dict[str, Any], big: list[str]) -> list[str]:
    """The same JSON json.dumps gives, with large Base64 values put in as they are rather than escaped char by char:
    each is first replaced by a random marker that no other value of the reply can know in advance."""
    markers = {key: f"\0{secrets.token_hex(16)}\0" for key in big}
    small = {key: markers.get(key, value) for key, value in payload.items()}
    text = json.dumps(small, ensure_ascii=False, separators=(",", ":"))
    parts = []
    for key in big:
        quoted = json.dumps(markers[key])  # '"\\u0000…"' as it appears in the text
        before, _, text = text.partition(quoted)
        parts.append(before + '"')
        value = payload[key]
        parts.extend(value.pieces if isinstance(value, Base64Pieces) else [value])
        text = '"' + text
    parts.append(text)
    return parts


def success(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": True, "status": Status.OK, **(payload or {})}


def failure(status: int, reason: str) -> dict[str, Any]:
    return {"success": False, "status": status, "reason": reason}
