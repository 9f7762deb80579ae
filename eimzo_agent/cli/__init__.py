"""`eimzo-agent` command line: one module per sub-command (serve, keys, version, journal, sites, trust, policy,
dev).

This is a public interface (admins, scripts and acceptance checks use it): extend it, never rename. Each module
offers `add_parser(commands)` and `run(args) -> exit status`; this one only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from types import ModuleType

from eimzo_agent import EIMZO_COMPAT_VERSION, __version__
from eimzo_agent.cli import config, dev, doctor, journal, keys, policy, portal, serve, service, sites, trust
from eimzo_agent.config import ConfigError

#: Sub-commands in the order `--help` lists them.
COMMANDS: dict[str, ModuleType] = {
    "serve": serve,
    "keys": keys,
    "journal": journal,
    "sites": sites,
    "trust": trust,
    "policy": policy,
    "service": service,
    "doctor": doctor,
    "config": config,
    "dev": dev,
    "portal": portal,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eimzo-agent",
        description="Local signing agent for Uzbek ERI keys, wire-compatible with E-IMZO.",
    )
    parser.add_argument("--version", action="version", version=version_text(), help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(commands)
        if name == "keys":
            commands.add_parser("version", help="print the version")
    return parser


def version_text() -> str:
    return f"eimzo-agent {__version__} (E-IMZO {'.'.join(EIMZO_COMPAT_VERSION)} compatible)"


def version(args: argparse.Namespace) -> int:
    print(version_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = version if args.command == "version" else COMMANDS[args.command].run
    try:
        status = run(args)
        if sys.stdout is not None:  # None under pythonw (Windows, no console)
            sys.stdout.flush()  # inside the try: a reader that went away must not surface at interpreter exit
        return status
    except BrokenPipeError:
        # `eimzo-agent journal --json | head -1`: the reader has all it wanted. Point stdout at /dev/null so the
        # interpreter's final flush cannot fail again, and exit as a program killed by SIGPIPE would (128 + 13).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ConfigError as exc:
        print(f"eimzo-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
