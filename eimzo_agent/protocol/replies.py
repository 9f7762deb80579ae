"""E-IMZO's reply shapes: flat JSON, `success` and `status` first, payload fields beside them, `reason` on
failure. Used by the dispatcher and by the server for the replies it gives before any dispatch."""

from __future__ import annotations

import json
from typing import Any

from eimzo_agent.protocol.errors import Status


def encode_reply(payload: dict[str, Any] | list[Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def success(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": True, "status": Status.OK, **(payload or {})}


def failure(status: int, reason: str) -> dict[str, Any]:
    return {"success": False, "status": status, "reason": reason}
