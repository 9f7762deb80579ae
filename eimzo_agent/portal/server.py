"""Running the verification server: bind the listen sockets first (so a busy port is one clear error and `--port 0`
knows its number before anything is built), wire the services, serve until SIGINT/SIGTERM, close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from eimzo_agent.portal.app import Services, build_app
from eimzo_agent.portal.challenge_store import open_store
from eimzo_agent.portal.challenges import Challenges
from eimzo_agent.portal.rate_limit import RateLimiter
from eimzo_agent.portal.revocation import RevocationChecker
from eimzo_agent.portal.settings import PortalSettings
from eimzo_agent.portal.timestamping import TsaClient

log = logging.getLogger(__name__)

READY_PREFIX = "eimzo-agent portal: listening on"
#: Without request bodies: the peer, the client nginx named, the request line, status, size, seconds.
ACCESS_LOG_FORMAT = '%a %{X-Real-IP}i "%r" %s %b %Tf'


#: Seconds the server keeps reading (and dropping) the rest of a refused body, so the client sees the 413 instead of
#: a reset; aiohttp's default of 10 s would hold a connection that announced 100 GB for that long.
LINGERING_SECONDS = 1.0


class _OneLineBadRequests(logging.Filter):
    """aiohttp logs malformed HTTP (a bad Content-Length, a broken chunk) with a traceback; it is the client's
    mistake, not ours: one warning line is enough, and the log stays free of stack traces."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.getMessage()}: malformed HTTP: {error.message or type(error).__name__}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class StartError(Exception):
    """The server cannot start (port busy, bad address); one line for the admin."""


@dataclass(frozen=True)
class Bound:
    main: socket.socket
    backend: socket.socket | None


def bind(settings: PortalSettings) -> Bound:
    main = _listen(settings.host, settings.port)
    backend = None
    if settings.backend_port is not None:
        try:
            backend = _listen(settings.backend_host or settings.host, settings.backend_port)
        except StartError:
            main.close()
            raise
    return Bound(main, backend)


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno in (98, 48, 10048) else (exc.strerror or str(exc))
        raise StartError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(settings: PortalSettings, bound: Bound) -> None:
    """Serve until a signal; prints the ready line once every listener accepts."""
    store = open_store(settings.redis_url)
    checker = RevocationChecker(settings.revocation, timeout=settings.revocation_timeout)
    tsa = TsaClient(settings.tsa_url, timeout=settings.tsa_timeout) if settings.tsa_url else None
    challenges = Challenges(store, ttl=settings.challenge_ttl, form=settings.challenge_format,
                            origins=settings.challenge_origins)
    services = Services(settings, challenges, checker, RateLimiter(settings.rate_per_ip, settings.rate_burst), tsa)
    main_app = build_app(services, "public" if bound.backend is not None else "all")
    backend_url = _local_url(bound.backend or bound.main)
    if settings.demo:
        from eimzo_agent.portal.demo_site import demo_app

        main_app.add_subapp("/demo/", demo_app(backend_url, settings.backend_secret))
    logging.getLogger("aiohttp.server").addFilter(_OneLineBadRequests())
    options = {"access_log_format": ACCESS_LOG_FORMAT, "handle_signals": False, "lingering_time": LINGERING_SECONDS}
    runners = [web.AppRunner(main_app, **options)]
    if bound.backend is not None:
        runners.append(web.AppRunner(build_app(services, "backend"), **options))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            loop.add_signal_handler(number, stop.set)
    try:
        for runner, sock in zip(runners, [bound.main, bound.backend], strict=False):
            await runner.setup()
            await web.SockSite(runner, sock).start()
        if bound.backend is not None:
            print(f"eimzo-agent portal: backend on {url_of(bound.backend)}", flush=True)
        if settings.redis_url is None and settings.host not in ("127.0.0.1", "::1", "localhost"):
            log.info("challenges are kept in this process's memory: run one node, or set [cache] type = \"redis\"")
        if bound.backend is None and settings.backend_secret is None:
            log.warning("/backend/* is open on %s: let only the portal's backend reach it (nginx), or set "
                        "--backend-port or --backend-secret", url_of(bound.main))
        if not settings.challenge_origins:
            log.warning("challenges are issued for any Host a request names: list your site in [challenge] origins "
                        "(docs/portal.md)")
        print(f"{READY_PREFIX} {url_of(bound.main)}", flush=True)
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()
        await checker.close()
        await store.close()
        if tsa is not None:
            await tsa.close()


def _local_url(sock: socket.socket) -> str:
    """How this process's own demo reaches /backend/*: a wildcard address is reached on loopback."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
