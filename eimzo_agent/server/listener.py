"""The agent's socket side: one asyncio server per port, HTTP and WebSocket on the same port as E-IMZO.

We read the HTTP request head ourselves, so that plain pages, `OPTIONS` preflights and the Host guard are
handled before any WebSocket code runs, then drive the `websockets` sans-I/O protocol for upgrades. Only
127.0.0.1 is ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Iterator

from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from eimzo_agent import i18n
from eimzo_agent.agent import Agent
from eimzo_agent.policy.limits import SiteLimiter
from eimzo_agent.protocol.calls import CallContext
from eimzo_agent.protocol.errors import Status
from eimzo_agent.protocol.large_request import FramePieces, PreparedDocument
from eimzo_agent.protocol.replies import encode_reply, encode_reply_parts, failure
from eimzo_agent.server import http, peer
from eimzo_agent.server.large_frame import HEADER_SIZE, LARGE_FRAME, LargeFrame
from eimzo_agent.server.memory import IdleTrim
from eimzo_agent.server.prehash import DocumentPrehash

log = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"
HEAD_TIMEOUT = 10.0
#: After our close frame, how long we wait for the browser's before dropping the TCP connection.
CLOSE_TIMEOUT = 5.0
READ_CHUNK = 256 * 1024
#: Replies longer than this (characters) are sent as a fragmented message (see `_send_reply`).
REPLY_FRAGMENT = 256 * 1024
#: How long a reply may wait for the client to read it.
SLOW_CLIENT_TIMEOUT = 30.0

_connection_ids = itertools.count(1)


class PortInUse(OSError):
    pass


class AgentServer:
    def __init__(self, agent: Agent, idle_trim: IdleTrim | None = None) -> None:
        """`idle_trim`: told when a large request or reply is done, so that the heap the large documents' buffers
        came from shrinks once they stop (server/memory.py); None where those buffers are returned on free."""
        self.agent = agent
        self.idle_trim = idle_trim
        self._servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}
        config = agent.config
        self.limiter = SiteLimiter(config.requests_per_second, config.request_burst, config.max_running_per_site)
        self.budget = BufferBudget(config.max_buffered_bytes)
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()  # open connections, ended by `close`

    async def start(self, ws_port: int, *, wss_port: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        listeners = [("ws", ws_port, None)]
        if tls is not None and wss_port is not None:
            listeners.append(("wss", wss_port, tls))
        for scheme, port, context in listeners:
            try:
                server = await asyncio.start_server(
                    lambda r, w, _p=scheme: self._serve_connection(r, w, _p),
                    BIND_ADDRESS,
                    port,
                    ssl=context,
                    ssl_handshake_timeout=HEAD_TIMEOUT if context else None,
                    limit=http.MAX_HEAD_BYTES,
                    reuse_address=True,
                )
            except OSError as exc:
                await self.close()
                raise PortInUse(exc.errno, f"cannot listen on {BIND_ADDRESS}:{port}: {exc.strerror}") from None
            self._servers.append(server)
            self.ports[scheme] = server.sockets[0].getsockname()[1]
            log.info("listening on %s://%s:%d%s", scheme, BIND_ADDRESS, self.ports[scheme], http.WEBSOCKET_PATH)

    async def close(self) -> None:
        """Stop listening, then end the open connections (tabs get close 1001 "going away")."""
        for server in self._servers:
            server.close()
        open_tasks = [task for task in self._tasks if not task.done()]
        for task in open_tasks:
            task.cancel()
        if open_tasks:
            await asyncio.wait(open_tasks, timeout=CLOSE_TIMEOUT)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        if self.idle_trim is not None:
            self.idle_trim.close()

    async def serve_forever(self) -> None:
        await asyncio.gather(*(s.serve_forever() for s in self._servers))

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str) -> None:
        port = self.ports[scheme]
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            if self.connections > self.agent.config.max_connections:
                writer.write(http.text_response(503, "Service Unavailable", "503 - too many connections"))
                return
            try:
                # asyncio.timeout, not wait_for: no extra task per connection (wait_for wraps the read in one).
                async with asyncio.timeout(HEAD_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                writer.write(http.text_response(431, "Request Header Fields Too Large", "431 - headers too large"))
                return
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            try:
                request = http.parse_request_head(head)
                host = request.header("Host")
                origin = request.header("Origin")
            except http.BadRequest as exc:
                writer.write(http.bad_request(str(exc)))
                return
            if not http.host_allowed(host, port):
                log.warning("refused a request for Host %r (DNS rebinding?) from origin %r", host, origin)
                writer.write(http.forbidden_host())
                return
            # Another OS user of this computer (server/peer.py); after the Host guard, so that a rebinding
            # page never gets a handshake, and after the head, which the WebSocket refusal needs.
            owner = await peer.check_peer(writer.get_extra_info("sockname"), writer.get_extra_info("peername"))
            if not owner.allowed:
                await peer.refuse(reader, writer, request, owner, self.agent.language)
                return
            if request.is_websocket_upgrade():
                if request.path != http.WEBSOCKET_PATH:
                    writer.write(http.not_found())
                    return
                session = WebSocketSession(self.agent, reader, writer, request, origin, self.limiter, self.budget,
                                           self.idle_trim)
                await session.run()
                return
            writer.write(http.route(request, self.agent.language, self.agent.registry))
        except asyncio.CancelledError:
            # `close()`: the agent is stopping. Ending normally (not cancelled) keeps asyncio's stream callback
            # from logging a CancelledError traceback for every open tab.
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self.connections -= 1
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the connection; wait for it only while something is still being sent.

    With nothing buffered the transport closes the socket on the loop's next turn by itself; waiting for that
    (drain, wait_closed, their timers) cost every E-IMZO call two more turns of the event loop."""
    if writer.transport.get_write_buffer_size():
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
    else:
        writer.close()


class BufferBudget:
    """How many bytes of requests all connections together may hold in memory (received, not yet answered).

    One connection is bounded by the frame limit and by not reading while its request waits; this bounds the
    sum, so many connections each sending a large frame cannot exhaust memory. Single-threaded (event loop).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> bool:
        if self.used + count > self.limit:
            return False
        self.used += count
        return True

    def give(self, count: int) -> None:
        self.used = max(0, self.used - count)


def _wire_size(frame: Frame) -> int:
    """Bytes a client frame took on the wire: header, length, mask key and payload (no extensions are used)."""
    length = len(frame.data)
    extended = 0 if length < 126 else 2 if length < 65536 else 8
    return 2 + extended + 4 + length


class WebSocketSession:
    """One WebSocket connection, E-IMZO style: a reply per request, then close 1000 unless ?keepConnection.

    Back-pressure: while a request is being answered (which may mean minutes on a dialog), at most
    `MAX_QUEUED` further requests and `PAUSE_BYTES` of a partly received one are held; beyond that the socket is
    not read, so a page pushing data fills its own TCP buffers, not our memory. All connections together hold at
    most `BufferBudget.limit` bytes; a connection that would exceed it gets an E-IMZO-shaped error and close 1013.
    """

    #: Complete requests waiting behind the one being answered (?keepConnection pages send one at a time).
    MAX_QUEUED = 1
    #: Bytes of a request still arriving that may pile up while another request is being answered.
    PAUSE_BYTES = 1024 * 1024

    def __init__(
        self,
        agent: Agent,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: http.HttpRequest,
        origin: str | None,
        limiter: SiteLimiter | None = None,
        budget: BufferBudget | None = None,
        idle_trim: IdleTrim | None = None,
    ) -> None:
        self.agent = agent
        self.limiter = limiter
        self.idle_trim = idle_trim
        self.budget = budget or BufferBudget(agent.config.max_buffered_bytes)
        self.reader = reader
        self.writer = writer
        self.request = request
        self.keep = "keepConnection" in request.query
        self.context = CallContext.from_origin(origin, next(_connection_ids))
        # No extensions: permessage-deflate would let a small frame inflate into a huge message.
        self.protocol = ServerProtocol(max_size=agent.config.max_frame_bytes, extensions=None)
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._fragment_opcode: Opcode | None = None
        #: Complete requests not yet answered, each with its document's digests when they were computed as it came.
        self._pending: deque[tuple[bytes | FramePieces, PreparedDocument | None]] = deque()
        #: Bytes handed to the protocol that it has not yet returned as frames (a frame still arriving).
        self._in_protocol = 0
        #: A large text frame being taken in by ourselves (server/large_frame.py), not by the protocol.
        self._large: LargeFrame | None = None
        #: Its document hashed as it arrives, when it is a create_pkcs7 request (server/prehash.py).
        self._prehash: DocumentPrehash | None = None
        #: Bytes of our own: fragments, queued requests and the request being answered.
        self._held = 0
        self._early_reply: bytes | None = None
        self._answered = False
        self._eof = False
        self._eof_sent = False

    @property
    def language(self) -> str:
        return self.agent.language_for(self.context.caller)

    def _reading_paused(self, answering: bool) -> bool:
        if not answering:
            return False
        arriving = self._in_protocol + self._fragment_bytes() + self._large_bytes()
        return len(self._pending) >= self.MAX_QUEUED or arriving > self.PAUSE_BYTES

    def _fragment_bytes(self) -> int:
        return self._fragments_size

    def _large_bytes(self) -> int:
        return self._large.received if self._large is not None else 0

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:  # the agent is stopping: tell the page, briefly, then let go
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(CloseCode.GOING_AWAY, "agent stopping")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._flush(), 1.0)
            raise
        finally:
            self.budget.give(self._in_protocol + self._held + self._large_bytes())
            self._in_protocol = self._held = 0
            self._large = None
            if self._prehash is not None:
                self._prehash.cancel()
            for _, prepared in self._pending:
                if prepared is not None:
                    prepared.digests.cancel()
            self.agent.dispatcher.connection_closed(self.context)

    async def _run(self) -> None:
        protocol = self.protocol
        protocol.receive_data(self.request.raw)
        events = protocol.events_received()
        response = protocol.accept(events[0]) if events else protocol.reject(400, "bad handshake")
        protocol.send_response(response)
        await self._flush()
        if response.status_code != 101:
            return
        handler: asyncio.Task[list[str]] | None = None
        current = 0  # size of the request being answered
        read: asyncio.Task[bytes] | None = asyncio.create_task(self.reader.read(READ_CHUNK))
        try:
            while True:
                waiting = {t for t in (read, handler) if t is not None}
                if not waiting:
                    break
                closing = protocol.close_expected()
                idle = self.agent.config.idle_timeout_seconds
                timeout = CLOSE_TIMEOUT if closing else (None if handler else idle)
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    if closing:
                        break  # the browser never answered our close frame
                    protocol.send_close(1000, "Idle")
                    await self._flush()
                    continue
                if handler is not None and handler in done:
                    await self._send_reply(handler.result())
                    handler = None
                    self._release(current)
                    current = 0
                    await self._flush()
                if read is not None and read in done:
                    data = read.result()
                    read = None
                    self._receive(data)
                    await self._flush()
                if protocol.state in (State.CLOSED, State.CLOSING) and handler is not None:
                    handler.cancel()  # the page is gone: drop its request (and any open password question)
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await handler
                    handler = None
                    self._release(current)
                    current = 0
                if handler is None and self._pending and protocol.state is State.OPEN:
                    frame, prepared = self._pending.popleft()
                    current = len(frame)
                    handler = asyncio.create_task(self._answer(frame, prepared))
                if (read is None and not self._eof and not self._eof_sent and protocol.state is not State.CLOSED
                        and not self._reading_paused(handler is not None)):
                    read = asyncio.create_task(self.reader.read(READ_CHUNK))
                if protocol.state is State.CLOSED or (self._eof and handler is None) or self._eof_sent:
                    break
        finally:
            for task in (read, handler):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    def _receive(self, data: bytes) -> None:
        protocol = self.protocol
        if not data:
            protocol.receive_eof()
            self._eof = True
            return
        if not self.budget.take(len(data)):
            self._refuse_busy()
            return
        rest = self._take_large(data)
        if not rest:
            return
        data = bytes(rest) if len(rest) != len(data) else data
        self._in_protocol += len(data)
        protocol.receive_data(data)
        self._take_events()
        if protocol.state is not State.OPEN:
            # Closing: whatever the protocol still buffers is discarded, not held for us.
            self.budget.give(self._in_protocol)
            self._in_protocol = 0
        close = protocol.close_sent
        if close is not None and close.code == CloseCode.MESSAGE_TOO_BIG and self._early_reply is None:
            self._reply_too_big()

    def _take_large(self, data: bytes) -> bytes | memoryview:
        """Feed a large text frame's bytes to its LargeFrame; returns the bytes that are websockets' to parse.

        A large frame is taken only where one must start: the protocol is open and holds no part of a frame, and no
        fragmented message is under way. Its bytes count against the budget like the protocol's (taken in
        `_receive`); the header's are given back at once, the payload's are held as a request's once complete."""
        rest: bytes | memoryview = data
        while rest:
            if self._large is None:
                if self.protocol.state is not State.OPEN or self._in_protocol or self._fragment_opcode is not None:
                    return rest
                self._large = LargeFrame.start(rest, self.agent.config.max_frame_bytes)
                if self._large is None:
                    return rest
                self.budget.give(HEADER_SIZE)
                self._large.observer = self._observe_request_piece
                rest = memoryview(rest)[HEADER_SIZE:]
            rest = self._large.feed(rest)
            if not self._large.complete:
                return b""
            payload, self._large = self._large.payload(), None
            prehash, self._prehash = self._prehash, None
            prepared = prehash.prepared() if prehash is not None else None
            self._held += len(payload)
            if self.protocol.state is State.OPEN:
                self._queue_message(payload, prepared)
            else:  # we closed meanwhile (idle): nothing more is answered
                self._release(len(payload))
                if prehash is not None:
                    prehash.cancel()
        return rest

    def _observe_request_piece(self, chunk: bytes, offset: int) -> None:
        """Each unmasked piece of a large frame, or each fragment of a fragmented text message, with its offset in
        the request: a create_pkcs7 request's document is hashed as it comes."""
        if offset == 0:
            self._prehash = DocumentPrehash.begin(chunk, self.agent.document_digester, self.context.caller)
        if self._prehash is not None:
            self._prehash.observe(chunk, offset)

    def _queue_message(self, data: bytes | FramePieces, prepared: PreparedDocument | None = None) -> None:
        """A complete text message: the request to answer, or dropped (one request per socket unless
        keepConnection). Its bytes are already counted in `_held`."""
        if self.keep or (not self._answered and not self._pending):
            self._pending.append((data, prepared))
        else:
            self._release(len(data))
            if prepared is not None:
                prepared.digests.cancel()

    def _release(self, count: int) -> None:
        self._held -= count
        self.budget.give(count)
        if count >= LARGE_FRAME:
            self._large_work_done()

    def _large_work_done(self) -> None:
        if self.idle_trim is not None:
            self.idle_trim.large_work_done()

    async def _answer(self, frame: bytes | FramePieces, prepared: PreparedDocument | None = None) -> list[str]:
        site = self.context.caller.limit_key
        if self.limiter is not None and not self.limiter.try_start(site):
            log.warning("rate limit: refused a request from %s", self.context.caller.label)
            reason = i18n.text(self.language, "reasons", "too_many_requests")
            return encode_reply_parts(failure(Status.OTHER, reason))
        try:
            # The frame's bytes as they came: the dispatcher decodes them (a large one in a worker thread, without
            # copying the document more than once); bad UTF-8 gets E-IMZO's "not a valid request".
            return await self.agent.dispatcher.answer(frame, self.context, prepared)
        finally:
            if self.limiter is not None:
                self.limiter.finish(site)

    async def _send_reply(self, parts: list[str]) -> None:
        """One text message; a large one as fragments of at most REPLY_FRAGMENT characters, the socket drained in
        between, so that sending a signed 10 MB document never holds the event loop for more than one fragment's
        copying (browsers and WebSocket libraries put the fragments together again). When the socket takes each
        fragment at once, `_flush` does not wait, so the loop is given a turn here: without it all 54 fragments of a
        10 MB signature went out in one 20-30 ms step, and other pages' calls waited behind it."""
        if self.protocol.state is not State.OPEN:
            return
        if sum(len(part) for part in parts) <= REPLY_FRAGMENT:
            self.protocol.send_text("".join(parts).encode("utf-8"))
        else:
            first = True
            for piece, last in _fragments(parts, REPLY_FRAGMENT):
                if self.protocol.state is not State.OPEN or self._eof_sent or self.writer.transport.is_closing():
                    return
                if first:
                    self.protocol.send_text(piece.encode("utf-8"), fin=last)
                    first = False
                else:
                    self.protocol.send_continuation(piece.encode("utf-8"), fin=last)
                if not last:
                    await self._flush()
                    await asyncio.sleep(0)
            self._large_work_done()
        self._answered = True
        if not self.keep:
            self.protocol.send_close(1000, "Done")

    def _take_events(self) -> None:
        for event in self.protocol.events_received():
            if not isinstance(event, Frame):
                continue
            wire = _wire_size(event)
            self._in_protocol -= wire
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._drop_fragments()
                self._fragment_opcode = event.opcode
                if event.opcode is Opcode.TEXT and not event.fin:
                    # A browser's large request comes fragmented (Chromium: frames of 131 000 bytes), not as one
                    # large frame: its document is hashed as the fragments come, as for a large frame.
                    self._observe_request_piece(event.data, 0)
            elif event.opcode is Opcode.CONT and self._fragment_opcode is not None:
                if self._prehash is not None:
                    self._prehash.observe(event.data, self._fragments_size)
            else:
                self.budget.give(wire)  # control frames: nothing of them is kept
                continue
            self._fragments.append(event.data)
            self._fragments_size += len(event.data)
            self._held += len(event.data)
            self.budget.give(wire - len(event.data))
            if event.fin:
                opcode, fragments = self._fragment_opcode, self._fragments
                # Joined where the request is parsed, not here on the event loop (FramePieces); one frame's data is
                # used as it is.
                data = fragments[0] if len(fragments) == 1 else FramePieces(fragments, self._fragments_size)
                prehash, self._prehash = self._prehash, None
                self._fragments, self._fragments_size, self._fragment_opcode = [], 0, None
                # Binary frames are ignored, as E-IMZO does; one request per socket unless keepConnection.
                if opcode is Opcode.TEXT:
                    self._queue_message(data, prehash.prepared() if prehash is not None else None)
                else:
                    self._release(len(data))

    def _drop_fragments(self) -> None:
        if self._fragments:
            self._release(self._fragment_bytes())
        if self._prehash is not None:  # a fragmented message's (no large frame is taken meanwhile): given up with it
            self._prehash.cancel()
            self._prehash = None
        self._fragments, self._fragments_size, self._fragment_opcode = [], 0, None

    def _refuse_busy(self) -> None:
        """All connections together hold as much as the agent allows: this one is answered and closed."""
        log.warning("refused data from %s: %d bytes of requests already held in memory",
                    self.context.caller.label, self.budget.used)
        if self.protocol.state is not State.OPEN:
            return
        reason = i18n.text(self.language, "reasons", "agent_busy")
        self.protocol.send_text(encode_reply(failure(Status.OTHER, reason)).encode("utf-8"))
        self.protocol.send_close(CloseCode.TRY_AGAIN_LATER, "Busy")

    def _reply_too_big(self) -> None:
        """The protocol refused a frame over the limit and queued close 1009: tell the page why, in E-IMZO's shape,
        in a text frame written just before that close frame (the protocol itself can send no data any more)."""
        limit_mb = self.agent.config.max_frame_bytes / (1024 * 1024)
        reason = i18n.text(self.language, "reasons", "message_too_large", limit=f"{limit_mb:g}")
        reply = encode_reply(failure(Status.OTHER, reason)).encode("utf-8")
        self._early_reply = Frame(Opcode.TEXT, reply).serialize(mask=False, extensions=[])
        log.info("refused a frame over %d bytes from %s", self.agent.config.max_frame_bytes,
                 self.context.caller.label)

    async def _flush(self) -> None:
        chunks = self.protocol.data_to_send()
        if self._early_reply:
            self.writer.write(self._early_reply)
            self._early_reply = b""  # sent once
        for chunk in chunks:
            if chunk:
                self.writer.write(chunk)
            else:
                # The protocol is done with the connection: a server closes TCP right away (on TLS, where
                # half-closing is impossible, waiting for the browser to close first would stall both sides).
                self._eof_sent = True
                with contextlib.suppress(OSError, RuntimeError):
                    if self.writer.can_write_eof():
                        await self.writer.drain()
                        self.writer.write_eof()
        if not self.writer.transport.get_write_buffer_size():
            return  # all sent: no drain (and no timer) needed, the common case for small replies
        try:
            async with asyncio.timeout(SLOW_CLIENT_TIMEOUT):
                await self.writer.drain()
        except ConnectionError:
            pass
        except TimeoutError:
            # A client that stops reading must not pin a reply (or a document) in our memory forever.
            log.warning("dropped a client that did not read its reply within %.0f s", SLOW_CLIENT_TIMEOUT)
            self.writer.transport.abort()
            self._eof_sent = True


def _fragments(parts: list[str], size: int) -> Iterator[tuple[str, bool]]:
    """The text of `parts` in pieces of at most `size` characters, each with whether it is the last."""
    pieces = (part[start:start + size] for part in parts if part for start in range(0, len(part), size))
    previous = next(pieces, "")
    for piece in pieces:
        yield previous, False
        previous = piece
    yield previous, True
