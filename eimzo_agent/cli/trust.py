"""`eimzo-agent trust install|remove|status`: make browsers trust wss://127.0.0.1 (the agent's local CA)."""

from __future__ import annotations

import argparse
from pathlib import Path

from eimzo_agent.config import tls_path


def add_parser(commands: argparse._SubParsersAction) -> None:
    trust = commands.add_parser("trust", help="make browsers trust wss://127.0.0.1 (the agent's local CA)")
    trust.add_argument("action", choices=["install", "remove", "status"])
    trust.add_argument("--nss-db", action="append", metavar="DIR",
                       help="only this NSS database (repeatable); default: Chromium's and every Firefox profile")
    trust.add_argument("--system", action=argparse.BooleanOptionalAction, default=None,
                       help="also the system store (default: yes when run as root and no --nss-db is given)")


def run(args: argparse.Namespace) -> int:
    from eimzo_agent import trust
    from eimzo_agent.server.tls import ensure_identity, retired_cas

    nss_dbs = [Path(p).expanduser() for p in args.nss_db] if args.nss_db else None
    if args.action == "status":
        report = trust.status(tls_path() / "ca.crt.pem", nss_dbs=nss_dbs)
    elif args.action == "install":
        identity = ensure_identity(tls_path())
        report = trust.install(identity.ca_path, retired_cas(tls_path()), nss_dbs=nss_dbs, system=args.system)
    else:
        report = trust.remove(nss_dbs=nss_dbs, system=args.system)
    print("\n".join(report.lines))
    return 1 if report.failures else 0
