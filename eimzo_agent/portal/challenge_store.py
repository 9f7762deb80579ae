"""Where issued login challenges wait for their signature: process memory for one node, Redis for several.

A challenge is single use: `take` gets and deletes it in one step (Redis GETDEL), so of two nodes that receive the
same signed challenge at once exactly one finds it. Expiry is the store's job (Redis EX, a heap here), so a
challenge past its TTL is simply absent. A store that cannot answer raises `ChallengeStoreUnavailable` quickly
(short socket timeouts, one retry) instead of holding the login until the browser gives up: the server turns it
into HTTP 503 with a message an admin can act on.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

#: Unanswered challenges one in-memory node keeps (a flood of /frontend/challenge evicts the oldest first; rate
#: limits stop a flood long before, this only bounds memory: ~300 bytes each).
DEFAULT_MAX_ENTRIES = 200_000
#: Seconds for connecting to Redis and for each reply; with one retry a dead Redis is reported within ~2 s.
REDIS_TIMEOUT = 1.0
DEFAULT_KEY_PREFIX = "eimzo-portal:challenge:"


@dataclass(frozen=True)
class ChallengeBinding:
    """What a challenge was issued to: the site's Host, the client's IP, and when (unix time)."""

    host: str
    ip: str
    issued: float


class ChallengeStoreUnavailable(Exception):
    """The store could not answer (Redis down, unreachable, refusing); the message names it without secrets."""


class ChallengeStore(Protocol):
    async def put(self, challenge: str, binding: ChallengeBinding, ttl: float) -> None: ...

    async def take(self, challenge: str) -> ChallengeBinding | None: ...

    async def close(self) -> None: ...


def open_store(url: str | None, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> ChallengeStore:
    """None or "memory" → this process's memory; "redis://", "rediss://" or "unix://" → a shared Redis."""
    if url is None or url == "memory":
        return MemoryChallengeStore()
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        return RedisChallengeStore(url, key_prefix=key_prefix)
    raise ValueError(f"challenge store: expected 'memory' or a redis:// URL, got {redact_url(url)!r}")


class MemoryChallengeStore:
    """One node's challenges: a dict for lookup, a heap of expiry times for dropping the stale ones in order."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, ChallengeBinding]] = {}
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, challenge: str, binding: ChallengeBinding, ttl: float) -> None:
        now = time.monotonic()
        self._drop_expired(now)
        while len(self._entries) >= self._max_entries:
            self._drop_first()
        expires = now + ttl
        self._entries[challenge] = (expires, binding)
        heapq.heappush(self._expiry, (expires, challenge))

    async def take(self, challenge: str) -> ChallengeBinding | None:
        entry = self._entries.pop(challenge, None)  # removed before anyone validates: single use even on failure
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]  # its heap item stays until it expires; _drop_* skip items whose entry is gone

    async def close(self) -> None:
        self._entries.clear()
        self._expiry.clear()

    def _drop_expired(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            self._drop_first()
        if len(self._expiry) > 2 * len(self._entries) + 1024:  # taken challenges' heap items: rebuild, keep it small
            self._expiry = [(entry[0], key) for key, entry in self._entries.items()]
            heapq.heapify(self._expiry)

    def _drop_first(self) -> None:
        expires, key = heapq.heappop(self._expiry)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == expires:
            del self._entries[key]


class RedisChallengeStore:
    """Challenges shared by every node that points at one Redis: SET … PX … NX to issue, GETDEL to consume.

    Keys are the prefix plus SHA-256 of the challenge, so looking up whatever a signature carried (up to the body
    limit) costs Redis a fixed-size key; the value is the binding as JSON.
    """

    def __init__(self, url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX, timeout: float = REDIS_TIMEOUT) -> None:
        from redis.asyncio import Redis  # the `portal` extra; imported here so the module loads without it
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._shown_url = redact_url(url)
        self._prefix = key_prefix
        self._deadline = 2 * timeout + 0.5  # one try, one retry on a fresh connection, then give up
        # One retry: a pooled connection that went stale when Redis restarted is replaced without a failed login.
        self._redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                     retry=Retry(NoBackoff(), 1), decode_responses=False)

    async def put(self, challenge: str, binding: ChallengeBinding, ttl: float) -> None:
        value = json.dumps(asdict(binding), separators=(",", ":"))
        # NX: never overwrite another binding (with 32 random bytes a clash means our own retried SET landed).
        await self._run(self._redis.set(self._key(challenge), value, px=max(1, round(ttl * 1000)), nx=True))

    async def take(self, challenge: str) -> ChallengeBinding | None:
        raw = await self._run(self._redis.getdel(self._key(challenge)))
        if raw is None:
            return None
        try:
            fields = json.loads(raw)
            return ChallengeBinding(host=str(fields["host"]), ip=str(fields["ip"]), issued=float(fields["issued"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ChallengeStoreUnavailable(f"challenge store {self._shown_url}: unreadable entry ({exc})") from exc

    async def close(self) -> None:
        await self._redis.aclose()

    def _key(self, challenge: str) -> str:
        return self._prefix + hashlib.sha256(challenge.encode("utf-8", "surrogatepass")).hexdigest()

    async def _run(self, command: Awaitable[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self._deadline):
                return await command
        except (RedisError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise ChallengeStoreUnavailable(f"challenge store {self._shown_url} is not answering: {detail}") from exc


def redact_url(url: str) -> str:
    """`url` without its password (redis://:secret@host → redis://:***@host), for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"
