"""`eimzo-agent portal serve`: the open verification server that answers E-IMZO-server's endpoints.

Needs the `portal` extra (aiohttp, redis); the agent itself never loads it. Start-up problems (a bad settings
file, a missing anchor file, a busy port) are one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import queue
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

EXIT_START_FAILED = 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    portal = commands.add_parser("portal", help="the portal-side verification server (E-IMZO-server compatible)")
    actions = portal.add_subparsers(dest="portal_command", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="answer /frontend/* and /backend/* as E-IMZO-server does",
        description="Serve E-IMZO-server's endpoints: login challenges, login checks, PKCS#7 verification and "
                    "time-stamps. Settings come from --config FILE (portal.toml); these options override it.")
    serve.add_argument("--config", type=Path, metavar="FILE", help="settings file (portal.toml)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080; 0 = any free port)")
    serve.add_argument("--trust-anchor", action="append", type=Path, metavar="CERT",
                       help="also trust the CA certificate(s) in CERT (PEM or DER); repeatable")
    serve.add_argument("--tsa-url", metavar="URL", help="RFC 3161 time-stamp authority for /frontend/timestamp/pkcs7")
    serve.add_argument("--redis", metavar="URL", help="share challenges between nodes in Redis (redis://host:6379/0)")
    serve.add_argument("--revocation", choices=["require", "prefer", "off"],
                       help="certificate status: require (default; -1 when it cannot be checked), prefer "
                            "(accept then), off")
    serve.add_argument("--demo", action="store_true", default=None, help="also serve the demo portal at /demo/")
    serve.add_argument("--backend-secret", metavar="S", help="require header X-Backend-Secret: S on /backend/*")
    serve.add_argument("--backend-host", metavar="H", help="address of the separate /backend/* listener")
    serve.add_argument("--backend-port", type=int, metavar="N",
                       help="serve /backend/* only on this port (then not on --port)")


def run(args: argparse.Namespace) -> int:
    # Settings first: a bad file is reported without waiting for aiohttp to load.
    from eimzo_agent.portal.settings import SettingsError, load_settings

    overrides: dict[str, Any] = {
        "host": args.host, "port": args.port, "tsa_url": args.tsa_url, "redis_url": args.redis,
        "revocation": args.revocation, "demo": args.demo, "backend_secret": args.backend_secret,
        "backend_host": args.backend_host, "backend_port": args.backend_port,
    }
    try:
        settings = load_settings(args.config, overrides)
        if args.trust_anchor:
            settings = replace(settings, anchor_files=(*settings.anchor_files, *args.trust_anchor))
        settings = settings.with_anchors()
    except SettingsError as exc:
        return _fail(str(exc))
    try:
        from eimzo_agent.portal.server import StartError, bind, serve
    except ImportError as exc:
        return _fail(f"{exc.name or 'a module'} is missing: install eimzo-agent[portal]")
    try:
        bound = bind(settings)
    except StartError as exc:
        return _fail(str(exc))
    # The log (an access-log line per request) is written by a thread: formatting and writing it on the event
    # loop, flushed line by line, took a tenth of a login's time.
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    writer = logging.handlers.QueueListener(records, output)
    enqueue = logging.handlers.QueueHandler(records)
    enqueue.setFormatter(logging.Formatter("%(message)s"))  # the message (and any traceback); the writer adds the rest
    logging.basicConfig(level=logging.INFO, handlers=[enqueue])
    writer.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings, bound))
    finally:
        writer.stop()  # writes what is queued
    return 0


def _fail(message: str) -> int:
    print(f"eimzo-agent portal: {message}", file=sys.stderr)
    return EXIT_START_FAILED
