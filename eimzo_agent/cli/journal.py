"""`eimzo-agent journal`: what was signed, when, for which site."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from eimzo_agent.cli.common import date_argument


def add_parser(commands: argparse._SubParsersAction) -> None:
    journal = commands.add_parser("journal", help="show the signing journal (what was signed, when, for which site)")
    journal.add_argument("--json", action="store_true", help="JSON lines, one entry each (for export)")
    journal.add_argument("--since", type=date_argument, metavar="YYYY-MM-DD[THH:MM]",
                         help="only entries from then on")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from eimzo_agent.config import user_data_path
    from eimzo_agent.policy.journal import JOURNAL_FILE, Journal

    entries = list(Journal(user_data_path() / JOURNAL_FILE).entries(since=args.since))
    for entry in entries:
        if args.json:
            print(json.dumps(asdict(entry), ensure_ascii=False))
        else:
            moment = datetime.fromisoformat(entry.time).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            line = f"{moment}  {entry.result:<11} {entry.site}  {entry.operation}"
            if entry.certificate_serial or entry.content_sha256:  # consent answers name no key and no document
                line += (f"  {entry.owner} (serial {entry.certificate_serial or '?'})"
                         f"  sha256 {entry.content_sha256[:16] or '?'}…")
            print(line)
    if not entries and not args.json:
        print("The signing journal is empty.")
    return 0
