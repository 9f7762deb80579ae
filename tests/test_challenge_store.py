"""The challenge store against a real redis-server (started here, in tmp_path) and in memory.

What a login relies on: a challenge put is taken once, never twice, not after its TTL; two store objects on one
Redis (two server nodes) see each other's challenges; of many concurrent takes of one challenge exactly one wins;
a dead Redis is reported as ChallengeStoreUnavailable within seconds, naming the URL without its password.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_services import RedisServer, free_port, start_redis

from eimzo_agent.portal.challenge_store import (
    ChallengeBinding,
    ChallengeStoreUnavailable,
    MemoryChallengeStore,
    open_store,
    redact_url,
)

BINDING = ChallengeBinding(host="portal.example.uz", ip="203.0.113.7", issued=1_780_000_000.5)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    return "memory" if request.param == "memory" else request.getfixturevalue("redis_server").url


def test_put_take_single_use(store_url: str) -> None:
    async def run() -> None:
        store = open_store(store_url)
        try:
            await store.put("challenge-1", BINDING, 60)
            await store.put("challenge-2", BINDING, 60)
            assert await store.take("challenge-1") == BINDING
            assert await store.take("challenge-1") is None  # single use
            assert await store.take("never issued") is None
            assert await store.take("challenge-2") == BINDING
        finally:
            await store.close()

    asyncio.run(run())


def test_expired_challenge_is_gone(store_url: str) -> None:
    async def run() -> None:
        store = open_store(store_url)
        try:
            await store.put("short", BINDING, 0.3)
            await store.put("long", BINDING, 60)
            await asyncio.sleep(0.5)
            assert await store.take("short") is None
            assert await store.take("long") == BINDING
        finally:
            await store.close()

    asyncio.run(run())


def test_concurrent_takes_have_one_winner(store_url: str) -> None:
    async def run() -> None:
        stores = [open_store(store_url)] if store_url == "memory" else [open_store(store_url) for _ in range(4)]
        try:
            for round_ in range(20):
                await stores[0].put(f"race-{round_}", BINDING, 60)
                results = await asyncio.gather(*(stores[i % len(stores)].take(f"race-{round_}") for i in range(16)))
                assert [r for r in results if r is not None] == [BINDING], round_
        finally:
            for store in stores:
                await store.close()

    asyncio.run(run())


def test_two_stores_on_one_redis_share_challenges(redis_server: RedisServer) -> None:
    async def run() -> None:
        node_a, node_b = open_store(redis_server.url), open_store(redis_server.url)
        other_portal = open_store(redis_server.url, key_prefix="other-portal:")
        try:
            await node_a.put("issued-by-a", BINDING, 60)
            assert await other_portal.take("issued-by-a") is None  # another key prefix is another portal
            assert await node_b.take("issued-by-a") == BINDING
            assert await node_a.take("issued-by-a") is None  # consumed on b: gone for a too
        finally:
            for store in (node_a, node_b, other_portal):
                await store.close()

    asyncio.run(run())


def test_long_and_unicode_content_is_a_plain_miss(redis_server: RedisServer) -> None:
    """`take` gets whatever a signature carried: megabytes or odd text are looked up, not errors."""
    async def run() -> None:
        store = open_store(redis_server.url)
        try:
            assert await store.take("x" * 5_000_000) is None
            assert await store.take("ключ \udcff \x00") is None
        finally:
            await store.close()

    asyncio.run(run())


def test_dead_redis_is_reported_quickly(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    url = f"redis://:s3cret-pass@127.0.0.1:{server.port}/0"
    server.process.terminate()
    server.process.wait(10)
    # And one that accepts connections but never answers (a hung Redis, a black-holed route).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent_url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

    async def attempt(url: str) -> tuple[str, float]:
        store = open_store(url)
        start = time.monotonic()
        try:
            with pytest.raises(ChallengeStoreUnavailable) as caught:
                if url == silent_url:
                    await store.take("challenge")
                else:
                    await store.put("challenge", BINDING, 60)
            return str(caught.value), time.monotonic() - start
        finally:
            await store.close()

    try:
        message, elapsed = asyncio.run(attempt(url))
        assert elapsed < 3, elapsed
        assert "s3cret-pass" not in message and f"127.0.0.1:{server.port}" in message, message
        message, elapsed = asyncio.run(attempt(silent_url))
        assert elapsed < 3.5, elapsed
        assert silent_url in message, message
    finally:
        silent.close()


def test_redis_restart_is_survived(tmp_path: Path) -> None:
    """A Redis restarted under a running node: its pooled connection is stale; the next call reconnects."""
    port = free_port()
    server = start_redis(tmp_path / "r1", port)

    async def run() -> None:
        nonlocal server
        store = open_store(server.url)
        try:
            await store.put("before", BINDING, 60)
            server.kill()
            with pytest.raises(ChallengeStoreUnavailable):
                await store.take("before")
            server = start_redis(tmp_path / "r2", port)
            await store.put("after", BINDING, 60)
            assert await store.take("after") == BINDING
        finally:
            await store.close()

    try:
        asyncio.run(run())
    finally:
        server.stop()


def test_memory_store_is_bounded() -> None:
    async def run() -> None:
        store = MemoryChallengeStore(max_entries=100)
        for i in range(1000):
            await store.put(f"c{i}", BINDING, 60)
        assert len(store) == 100
        assert await store.take("c0") is None  # the oldest went first
        assert await store.take("c999") == BINDING
        for i in range(900, 999):
            assert await store.take(f"c{i}") == BINDING
        assert len(store) == 0
        for i in range(5000):  # taken challenges leave heap items behind; they must not pile up
            await store.put(f"d{i}", BINDING, 60)
            await store.take(f"d{i}")
        assert len(store._expiry) < 2 * 100 + 1024 + 2

    asyncio.run(run())


def test_open_store_urls() -> None:
    assert isinstance(open_store(None), MemoryChallengeStore)
    assert isinstance(open_store("memory"), MemoryChallengeStore)
    with pytest.raises(ValueError, match=r"\*\*\*"):
        open_store("memcached://:pw@host")
    assert redact_url("redis://user:pw@[::1]:6380/2") == "redis://user:***@[::1]:6380/2"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
