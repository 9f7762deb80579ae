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

from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from eimzo_agent import i18n
from eimzo_agent.agent import Agent
from eimzo_agent.policy.limits import SiteLimiter
from eimzo_agent.protocol.dispatcher import CallContext, encode_reply, failure
from eimzo_agent.protocol.errors import Status
from eimzo_agent.server import http, peer

log = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"
HEAD_TIMEOUT = 10.0
#: After our close frame, how long we wait for the browser's before dropping the TCP connection.
CLOSE_TIMEOUT = 5.0
READ_CHUNK = 256 * 1024
#: How long a reply may wait for the client to read it.
SLOW_CLIENT_TIMEOUT = 30.0

_connection_ids = itertools.count(1)


class PortInUse(OSError):
    pass


class AgentServer:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}
        config = agent.config
        self.limiter = SiteLimiter(config.requests_per_second, config.request_burst, config.max_running_per_site)
        self.connections = 0

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
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    async def serve_forever(self) -> None:
        await asyncio.gather(*(s.serve_forever() for s in self._servers))

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str) -> None:
        port = self.ports[scheme]
        self.connections += 1
        try:
            if self.connections > self.agent.config.max_connections:
                writer.write(http.text_response(503, "Service Unavailable", "503 - too many connections"))
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
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
                session = WebSocketSession(self.agent, reader, writer, request, origin, self.limiter)
                await session.run()
                return
            writer.write(http.route(request, self.agent.language))
        except Exception:
            log.exception("connection failed")
        finally:
            self.connections -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), CLOSE_TIMEOUT)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)


class WebSocketSession:
    """One WebSocket connection, E-IMZO style: a reply per request, then close 1000 unless ?keepConnection."""

    def __init__(
        self,
        agent: Agent,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: http.HttpRequest,
        origin: str | None,
        limiter: SiteLimiter | None = None,
    ) -> None:
        self.agent = agent
        self.limiter = limiter
        self.reader = reader
        self.writer = writer
        self.request = request
        self.keep = "keepConnection" in request.query
        self.context = CallContext(origin=origin, connection_id=next(_connection_ids))
        #: Limits count per domain (more sockets buy no more requests); pages without a usable Origin share by text.
        self.site = self.context.domain or f"origin:{origin!r}"
        # No extensions: permessage-deflate would let a small frame inflate into a huge message.
        self.protocol = ServerProtocol(max_size=agent.config.max_frame_bytes, extensions=None)
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._pending: deque[bytes] = deque()
        self._answered = False
        self._eof = False
        self._eof_sent = False

    async def run(self) -> None:
        protocol = self.protocol
        protocol.receive_data(self.request.raw)
        events = protocol.events_received()
        response = protocol.accept(events[0]) if events else protocol.reject(400, "bad handshake")
        protocol.send_response(response)
        await self._flush()
        if response.status_code != 101:
            return
        handler: asyncio.Task[str] | None = None
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
                    self._send_reply(handler.result())
                    handler = None
                    await self._flush()
                if read is not None and read in done:
                    data = read.result()
                    read = None
                    if data:
                        protocol.receive_data(data)
                    else:
                        protocol.receive_eof()
                        self._eof = True
                    self._take_events()
                    await self._flush()
                    if not self._eof and protocol.state.name != "CLOSED":
                        read = asyncio.create_task(self.reader.read(READ_CHUNK))
                if protocol.state.name in ("CLOSED", "CLOSING") and handler is not None:
                    handler.cancel()  # the page is gone: drop its request (and any open password question)
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await handler
                    handler = None
                if handler is None and self._pending and protocol.state.name == "OPEN":
                    frame = self._pending.popleft()
                    handler = asyncio.create_task(self._answer(frame))
                if protocol.state.name == "CLOSED" or (self._eof and handler is None) or self._eof_sent:
                    break
        finally:
            for task in (read, handler):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _answer(self, frame: bytes) -> str:
        if self.limiter is not None and not self.limiter.try_start(self.site):
            log.warning("rate limit: refused a request from %s", self.context.origin)
            reason = i18n.text(self.agent.language, "reasons", "too_many_requests")
            return encode_reply(failure(Status.OTHER, reason))
        try:
            try:
                text = frame.decode("utf-8")
            except UnicodeDecodeError:
                text = ""  # not JSON either: the dispatcher answers "function not found"
            return await self.agent.dispatcher.handle(text, self.context)
        finally:
            if self.limiter is not None:
                self.limiter.finish(self.site)

    def _send_reply(self, reply: str) -> None:
        if self.protocol.state.name != "OPEN":
            return
        self.protocol.send_text(reply.encode("utf-8"))
        self._answered = True
        if not self.keep:
            self.protocol.send_close(1000, "Done")

    def _take_events(self) -> None:
        for event in self.protocol.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._fragment_opcode = event.opcode
                self._fragments = [event.data]
            elif event.opcode is Opcode.CONT and self._fragment_opcode is not None:
                self._fragments.append(event.data)
            else:
                continue
            if event.fin:
                opcode, data = self._fragment_opcode, b"".join(self._fragments)
                self._fragments, self._fragment_opcode = [], None
                # Binary frames are ignored, as E-IMZO does; one request per socket unless keepConnection.
                if opcode is Opcode.TEXT and (self.keep or (not self._answered and not self._pending)):
                    self._pending.append(data)
        if isinstance(self.protocol.parser_exc, PayloadTooBig):
            self._reply_too_big()

    def _reply_too_big(self) -> None:
        """Put an E-IMZO-shaped error before the 1009 close frame the protocol queued, so the page learns why."""
        limit_mb = self.agent.config.max_frame_bytes / (1024 * 1024)
        reason = i18n.text(self.agent.language, "reasons", "message_too_large", limit=f"{limit_mb:g}")
        reply = encode_reply(failure(Status.OTHER, reason)).encode("utf-8")
        frame = Frame(Opcode.TEXT, reply).serialize(mask=False, extensions=[])
        self.protocol.writes.insert(0, frame)
        self.protocol.parser_exc = None
        log.info("refused a frame over %d bytes from %s", self.agent.config.max_frame_bytes, self.context.origin)

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
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
        try:
            await asyncio.wait_for(self.writer.drain(), SLOW_CLIENT_TIMEOUT)
        except ConnectionError:
            pass
        except TimeoutError:
            # A client that stops reading must not pin a reply (or a document) in our memory forever.
            log.warning("dropped a client that did not read its reply within %.0f s", SLOW_CLIENT_TIMEOUT)
            self.writer.transport.abort()
            self._eof_sent = True
