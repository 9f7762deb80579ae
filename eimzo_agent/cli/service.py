"""`eimzo-agent service install|uninstall|status [--user]`: start the agent at login (pip/pipx installs).

`--user` is for the person running the command; without it, for every user of this computer (root or
administrator; the .deb and the .msi already do this for their installs, and `install` then says so and does
nothing). Exit status: 0 done (status: the agent starts at login), 1 refused or failed (status: it does not).
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import TYPE_CHECKING

from eimzo_agent.config import load_config

if TYPE_CHECKING:
    from eimzo_agent.deploy.autostart import Backend, Scope

# deploy.autostart (systemd, LaunchAgent, registry writers) is imported when the command runs: every CLI start
# builds this parser, and `serve` would otherwise keep it in memory for its whole life.


def add_parser(commands: argparse._SubParsersAction) -> None:
    service = commands.add_parser(
        "service", help="start the agent at login (for pip/pipx installs)",
        description="Write, enable and start (or stop and remove) the agent's autostart: a systemd user unit "
                    "(Linux), a LaunchAgent (macOS) or a Run registry value (Windows).")
    service.add_argument("action", choices=["install", "uninstall", "status"])
    service.add_argument("--user", action="store_true",
                         help="only for you (no root needed); without it: for every user of this computer")


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.deploy import autostart
    from eimzo_agent.deploy.autostart import AutostartError, Scope

    scope = Scope.USER if args.user else Scope.ALL_USERS
    backend = autostart.backend_for()
    if args.action == "status":
        return _status(backend, [Scope.USER] if args.user else [Scope.USER, Scope.ALL_USERS])
    try:
        if args.action == "uninstall":
            outcome = backend.uninstall(scope)
        else:
            outcome, others = autostart.install(backend, scope, start_now=_port_free(load_config().ws_port))
            if others:
                for other in others:
                    print(f"eimzo-agent already starts at login: {other.description} ({other.location})")
                print("nothing to do" + ("" if any(o.package for o in others) else
                                         "; remove that one first to install this one"))
                return 0
    except AutostartError as exc:
        print(f"eimzo-agent: {exc}", file=sys.stderr)
        return 1
    for line in outcome.done:
        print(line)
    for line in outcome.notes:
        print(f"note: {line}")
    return 0


def _status(backend: Backend, scopes: list[Scope]) -> int:
    from eimzo_agent.deploy.autostart import Scope

    starts = False
    shown = set()
    for scope in scopes:
        state = backend.status(scope)
        shown.add(state.location)
        who = "you" if scope is Scope.USER else "every user"
        if state.foreign:
            print(f"{state.mechanism} for {who}: {state.location} exists but was not written by this command")
            continue
        running = {True: ", running", False: ", not running", None: ""}[state.running]
        what = ("installed and enabled" if state.enabled else "installed, not enabled") if state.installed \
            else "not installed"
        print(f"{state.mechanism} for {who}: {what}{running} ({state.location})")
        starts = starts or state.enabled
    for other in backend.others(Scope.USER):
        if other.location not in shown:
            print(f"also: {other.description} ({other.location})")
            starts = True
    return 0 if starts else 1


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:`port` (else starting the unit now would only fail on a taken port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True
