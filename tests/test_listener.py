"""The WebSocket edge in-process (no subprocess), as websockets tests its own asyncio layer: the real server on an
ephemeral port, real sockets, a prompter the test controls.

What it pins down: E-IMZO's lifecycle (one reply, close 1000; or many with ?keepConnection), the over-size reply
before close 1009, and back-pressure — a request waiting on a question stops the connection from being read, and
all connections together hold at most `max_buffered_bytes`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol
from websockets.sync.client import connect as sync_connect

from eimzo_agent.agent import Agent, build_agent
from eimzo_agent.config import AgentConfig
from eimzo_agent.protocol.large_request import FramePieces
from eimzo_agent.server.listener import AgentServer, WebSocketSession
from eimzo_agent.ui.prompter import PromptRequest

PORTAL = "https://portal.example.uz"  # not approved: every gated call asks the consent question
MIB = 1024 * 1024


class HeldPrompter:
    """Answers every question with `answer`, but only once the test releases it; records what was asked."""

    def __init__(self, answer: str | None = "once") -> None:
        self.answer = answer
        self.release = asyncio.Event()
        self.asked: list[PromptRequest] = []
        self.cancelled = 0

    async def ask(self, request: PromptRequest) -> str | None:
        self.asked.append(request)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.answer


@asynccontextmanager
async def running(tmp_path: Path, prompter: HeldPrompter, **settings: Any) -> AsyncIterator[tuple[Agent, AgentServer]]:
    config = AgentConfig(scan_system_locations=False, key_roots=[tmp_path / "no-keys"], language="en", **settings)
    agent = build_agent(config, prompter=prompter, verifiers=[])
    server = AgentServer(agent)
    await server.start(0)
    try:
        yield agent, server
    finally:
        await server.close()


def url(server: AgentServer, keep: bool = False) -> str:
    return f"ws://127.0.0.1:{server.ports['ws']}/service/cryptapi" + ("?keepConnection" if keep else "")


def call(name: str, *args: str, plugin: str = "", pad: int = 0) -> str:
    request: dict[str, Any] = {"plugin": plugin, "name": name, "arguments": list(args)}
    if pad:
        request["pad"] = "x" * pad  # ignored by the agent; makes a frame of the size a test needs
    return json.dumps(request)


async def settle(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_one_reply_then_close_1000(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (running(tmp_path, HeldPrompter()) as (_, server),
                    connect(url(server), origin="http://localhost:1", compression=None) as ws):
            await ws.send(call("version"))
            reply = json.loads(await ws.recv())
            assert reply["success"] is True and reply["major"] == "6"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000

    asyncio.run(scenario())


def test_keep_connection_answers_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (running(tmp_path, HeldPrompter()) as (_, server),
                    connect(url(server, keep=True), origin="http://localhost:1", compression=None) as ws):
            for _ in range(5):
                await ws.send(call("version"))
            await ws.send(call("nope"))
            replies = [json.loads(await ws.recv()) for _ in range(6)]
            assert [r["success"] for r in replies] == [True] * 5 + [False]
            assert replies[-1]["status"] == 0

    asyncio.run(scenario())


def test_a_frame_over_the_limit_is_answered_before_close_1009(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (running(tmp_path, HeldPrompter(), max_frame_bytes=64 * 1024) as (_, server),
                    connect(url(server), origin="http://localhost:1", compression=None, max_size=None) as ws):
            await ws.send("x" * (64 * 1024 + 1))
            reply = json.loads(await ws.recv())
            assert reply["success"] is False and reply["status"] == -9999 and "0.0625" in reply["reason"]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009

    asyncio.run(scenario())


def test_a_waiting_request_stops_the_reading_of_its_connection(tmp_path: Path) -> None:
    """?keepConnection used to queue every frame while a request waited (one page queued 200 MiB)."""

    async def scenario() -> None:
        prompter = HeldPrompter()
        async with running(tmp_path, prompter) as (_, server):
            _, writer = await raw_websocket(server, keep=True)
            writer.write(client_frame(call("list_disks", plugin="pfx")))  # waits on the consent question
            await settle(lambda: len(prompter.asked) == 1)
            sent = 0
            frame = client_frame(call("version", pad=MIB - 100))
            try:
                while sent < 64 * MIB:  # far more than the agent may hold for one connection
                    writer.write(frame)
                    await asyncio.wait_for(writer.drain(), 2)
                    sent += len(frame)
            except TimeoutError:
                pass  # the agent stopped reading: our own buffers are full
            held = server.budget.used
            assert held <= WebSocketSession.PAUSE_BYTES + 3 * MIB, f"{held} bytes held for one waiting request"
            assert sent < 32 * MIB, "the agent kept reading while the request waited"
            prompter.release.set()  # the person answers: the queued requests are answered in turn
            writer.close()
            await settle(lambda: server.budget.used == 0, 10)  # and everything held is given back

    asyncio.run(scenario())


def test_all_connections_together_hold_at_most_the_budget(tmp_path: Path) -> None:
    async def scenario() -> None:
        limit = 4 * MIB
        async with running(tmp_path, HeldPrompter(), max_frame_bytes=2 * MIB,
                           max_buffered_bytes=limit) as (_, server):
            # Three pages each start a 2 MiB frame and stop half-way: the third would go over 4 MiB.
            pages = [await raw_websocket(server) for _ in range(3)]
            head = client_frame_header(2 * MIB - 10)
            for _, writer in pages[:2]:
                writer.write(head + b"y" * (MIB + MIB // 2))
                await writer.drain()
            await settle(lambda: server.budget.used >= 3 * MIB)
            reader, writer = pages[2]
            writer.write(head + b"z" * (MIB + MIB // 2))
            await writer.drain()
            reply, close_code = await read_reply_and_close(reader)
            assert reply["status"] == -9999 and "too much data" in reply["reason"]
            assert close_code == 1013
            assert server.budget.used <= limit
            for _, writer in pages[:2]:
                writer.close()
            await settle(lambda: server.budget.used == 0, 10)

    asyncio.run(scenario())


def test_a_page_that_goes_away_takes_its_question_with_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        prompter = HeldPrompter()
        async with running(tmp_path, prompter) as (_, server):
            async with connect(url(server), origin=PORTAL, compression=None) as ws:
                await ws.send(call("list_disks", plugin="pfx"))
                await settle(lambda: len(prompter.asked) == 1)
            await settle(lambda: prompter.cancelled == 1)

    asyncio.run(scenario())


def test_binary_frames_are_ignored_and_pings_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (running(tmp_path, HeldPrompter()) as (_, server),
                    connect(url(server, keep=True), origin="http://localhost:1", compression=None) as ws):
            await ws.send(b"\x00\x01binary")
            pong = await ws.ping(b"hello")
            await asyncio.wait_for(pong, 5)
            await ws.send(call("version"))
            assert json.loads(await ws.recv())["success"] is True

    asyncio.run(scenario())


def test_large_frames_taken_as_they_arrive_keep_the_connection_in_step(tmp_path: Path) -> None:
    """Frames over 1 MiB are taken in by the session itself (server/large_frame.py): split anywhere, followed in
    the same chunk by another frame, back to back, or with a ping after them, every request gets its own reply,
    in order, and everything held is given back."""
    async def scenario() -> None:
        async with running(tmp_path, HeldPrompter(), max_frame_bytes=4 * MIB) as (_, server):
            reader, writer = await raw_websocket(server, keep=True)
            large = client_frame(call("version", pad=2 * MIB))
            small = client_frame(call("version"))
            unknown = client_frame(call("no_such_function", pad=MIB + 7))  # status 0: the payload was read right
            wire = large + small + unknown + large
            for start, end in zip([0, 1, 9, 13, 14, 1000, MIB + 3, len(large) + 2],
                                  [1, 9, 13, 14, 1000, MIB + 3, len(large) + 2, len(wire)], strict=True):
                writer.write(wire[start:end])  # cut inside the header, the mask and the payload
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(Frame(Opcode.PING, b"still here").serialize(mask=True, extensions=[]))
            replies = [await read_server_frame(reader) for _ in range(5)]
            assert [opcode for opcode, _ in replies] == [0x1, 0x1, 0x1, 0x1, 0xA]
            texts = [json.loads(data) for _, data in replies[:4]]
            assert [t["success"] for t in texts] == [True, True, False, True]
            assert texts[2]["status"] == 0 and "no_such_function" in texts[2]["reason"]
            assert replies[4][1] == b"still here"
            writer.close()
            await settle(lambda: server.budget.used == 0, 10)

    asyncio.run(scenario())


# --- a raw WebSocket client, for tests that must write more than a well-behaved client would -------------------


async def raw_websocket(server: AgentServer, keep: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = server.ports["ws"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    path = "/service/cryptapi" + ("?keepConnection" if keep else "")
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {PORTAL}\r\n\r\n"
        .encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def client_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True, extensions=[])


def client_frame_header(length: int) -> bytes:
    """The header of a masked text frame of `length` bytes, for a test that sends the payload itself (mask 0)."""
    return bytes([0x81, 0xFF]) + length.to_bytes(8, "big") + b"\x00\x00\x00\x00"


async def read_server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the server's next frame (server frames are not masked)."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 10)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def read_reply_and_close(reader: asyncio.StreamReader) -> tuple[dict[str, Any], int]:
    """The server's text frame and the code of its close frame (server frames are not masked)."""
    (text_op, text), (close_op, close) = [await read_server_frame(reader) for _ in range(2)]
    assert (text_op, close_op) == (0x1, 0x8)
    return json.loads(text), int.from_bytes(close[:2], "big")


def test_the_websockets_release_in_use_is_one_we_declare() -> None:
    """scripts/test.sh runs this file with the newest and with the lowest release pyproject.toml admits."""
    import re

    import websockets

    declared = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    low, high = re.search(r'"websockets>=([0-9.]+),<([0-9.]+)"', declared).groups()  # type: ignore[union-attr]

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", version)[:3])

    assert key(low) <= key(websockets.__version__) < key(high)


def test_a_large_reply_gives_the_event_loop_a_turn_between_its_fragments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: when the socket took every fragment at once, the session never waited between them and a 10 MB
    signature's reply went out in one 20-30 ms step of the event loop, with every other page's call waiting behind
    it (bench/bench_large.py: another client's `version` p99 34-45 ms, 17-20 ms after the fix). A task that counts
    the loop's turns must have had a turn between any two fragments."""
    size = 10 * MIB
    turns = 0
    turns_at_fragment: list[int] = []
    real_send_continuation = ServerProtocol.send_continuation

    def send_continuation(self: ServerProtocol, data: bytes, fin: bool) -> None:
        turns_at_fragment.append(turns)
        real_send_continuation(self, data, fin)

    monkeypatch.setattr(ServerProtocol, "send_continuation", send_continuation)

    async def scenario() -> None:
        nonlocal turns
        async with running(tmp_path, HeldPrompter()) as (agent, server):
            async def big_answer(frame: bytes | bytearray, context: object, prepared: object = None) -> list[str]:
                return ['{"success":true,"data":"', "A" * size, '"}']

            agent.dispatcher.answer = big_answer  # type: ignore[method-assign]
            finished = threading.Event()
            received: list[int] = []

            def client() -> None:  # another thread reads as fast as it can, so the socket rarely makes us wait
                with sync_connect(url(server), origin="http://localhost:1", compression=None,
                                  max_size=None) as ws:
                    ws.send(call("version"))
                    received.append(len(json.loads(ws.recv())["data"]))
                finished.set()

            reader = asyncio.get_running_loop().run_in_executor(None, client)
            while not finished.is_set():
                turns += 1
                await asyncio.sleep(0)
            await reader
            assert received == [size]

    asyncio.run(scenario())
    assert len(turns_at_fragment) >= size // 262144  # at most REPLY_FRAGMENT characters each
    stalled = sum(1 for before, after in itertools.pairwise(turns_at_fragment) if after == before)
    assert stalled == 0, f"{stalled} of {len(turns_at_fragment)} fragments went out without a turn of the loop between"


def test_large_requests_reach_the_dispatcher_unjoined(tmp_path: Path) -> None:
    """A large frame's chunks and a fragmented message's fragments are not put together on the event loop (growing
    one 13.6 MB buffer held it for 10-15 ms a step while other pages waited): the dispatcher gets them as
    `FramePieces`, whose join is the text sent; a small message still comes whole."""
    got: list[tuple[type, bytes]] = []

    async def scenario() -> None:
        async with running(tmp_path, HeldPrompter(), max_frame_bytes=4 * MIB) as (agent, server):
            async def answer(frame: Any, context: object, prepared: object = None) -> list[str]:
                got.append((type(frame), bytes(frame.join()) if isinstance(frame, FramePieces) else bytes(frame)))
                return ['{"success":true}']

            agent.dispatcher.answer = answer  # type: ignore[method-assign]
            large, small = call("version", pad=2 * MIB), call("version")
            reader, writer = await raw_websocket(server, keep=True)
            wire = client_frame(large)
            for start in range(0, len(wire), 300_000):  # many chunks
                writer.write(wire[start:start + 300_000])
                await writer.drain()
            fragments = [large[i:i + 131_000].encode() for i in range(0, len(large), 131_000)]
            for index, fragment in enumerate(fragments):  # as Chromium sends a large message
                opcode = Opcode.TEXT if index == 0 else Opcode.CONT
                writer.write(Frame(opcode, fragment, fin=index == len(fragments) - 1).serialize(mask=True,
                                                                                              extensions=[]))
            writer.write(client_frame(small))
            await writer.drain()
            for _ in range(3):
                await read_server_frame(reader)
            writer.close()
            assert got == [(FramePieces, large.encode()), (FramePieces, large.encode()), (bytes, small.encode())]

    asyncio.run(scenario())
