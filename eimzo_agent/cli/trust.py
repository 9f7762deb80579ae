"""`eimzo-agent trust install|remove|status`: make browsers trust wss://127.0.0.1 (the agent's local CA).

Each person has their own CA, made in their data folder by the agent. `sudo eimzo-agent trust install` (needed
for the system store) therefore trusts the CA of the person who ran sudo, and never makes one for root: a
root-owned second CA would be trusted while that person's agent serves a certificate from theirs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eimzo_agent.config import APP_NAME, tls_path

if TYPE_CHECKING:
    from eimzo_agent import trust as trust_types


def add_parser(commands: argparse._SubParsersAction) -> None:
    trust = commands.add_parser(
        "trust", help="make browsers trust wss://127.0.0.1 (the agent's local CA)",
        description="install: trust the local CA (made first if needed); remove: take it out again; "
        "status: where it is trusted (exit status 1 when nowhere). Under sudo, the CA and the browser "
        "databases are those of the person who ran sudo.",
    )
    trust.add_argument("action", choices=["install", "remove", "status"])
    trust.add_argument("--nss-db", action="append", metavar="DIR",
                       help="only this NSS database (repeatable); default: Chromium's and every Firefox profile")
    trust.add_argument("--system", action=argparse.BooleanOptionalAction, default=None,
                       help="also the system store (default: yes when run as root and no --nss-db is given)")


def run(args: argparse.Namespace) -> int:
    from eimzo_agent import trust
    from eimzo_agent.server.tls import ensure_identity, retired_cas

    nss_dbs = [Path(p).expanduser() for p in args.nss_db] if args.nss_db else None
    person = trust.invoking_user()
    folder = tls_path() if person is None else _tls_path_of(person)
    ca_pem = folder / "ca.crt.pem"
    if args.action == "status":
        report = trust.status(ca_pem, nss_dbs=nss_dbs, run_as=person)
        print("\n".join(report.lines))
        return 0 if report.trusted and not report.failures else 1
    if args.action == "install":
        if person is None:
            ca_pem = ensure_identity(folder).ca_path
        elif not ca_pem.is_file():
            print(
                f"eimzo-agent: {person.name} has no local CA yet ({ca_pem} does not exist), and root does not make "
                f"one for them.\nRun, as {person.name} (without sudo):  eimzo-agent trust install\n"
                f"then, for the system store:  sudo eimzo-agent trust install",
                file=sys.stderr,
            )
            return 1
        report = trust.install(ca_pem, retired_cas(folder), nss_dbs=nss_dbs, system=args.system, run_as=person)
    else:
        report = trust.remove(nss_dbs=nss_dbs, system=args.system, run_as=person)
    if person is not None:
        report.lines.insert(0, f"the local CA of {person.name}: {ca_pem}")
    print("\n".join(report.lines))
    return 1 if report.failures else 0


def _tls_path_of(person: trust_types.RunAs) -> Path:
    """The person's TLS folder: where our own data folder lies relative to HOME, applied to their home.

    `sudo` usually resets HOME to root's; `sudo -E` (or a sudoers env_keep) keeps the person's own, and then
    our folder already is theirs.
    """
    ours, home = tls_path(), Path.home()
    if home == person.home:
        return ours
    if ours.is_relative_to(home):
        return person.home / ours.relative_to(home)
    return person.home / ".local" / "share" / APP_NAME / "tls"  # root has XDG_DATA_HOME elsewhere: the default
