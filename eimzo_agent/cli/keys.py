"""`eimzo-agent keys`: the keys the agent sees (key files on disks, keys on PKCS#11 tokens)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from eimzo_agent.cli.common import add_key_source_options
from eimzo_agent.config import load_config


def add_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="list the keys the agent sees")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    add_key_source_options(keys)


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.keys.alias import owner_from_alias
    from eimzo_agent.keys.disks import discover_disks
    from eimzo_agent.keys.pfx_files import list_all_certificates

    config = load_config(args.config, {"key_roots": args.key_root, "pkcs11_modules": args.pkcs11_module})
    disks = discover_disks(config.key_roots, system_locations=config.scan_system_locations)
    now = datetime.now()
    rows: list[dict[str, Any]] = []
    for entry in list_all_certificates(disks):
        owner = owner_from_alias(entry.alias)
        row: dict[str, Any] = {
            "type": "pfx",
            "disk": entry.disk,
            "path": entry.path,
            "name": entry.name,
            "file": str(entry.file),
            "alias": entry.alias,
            **owner.to_dict(),
            "legal_entity": owner.is_legal_entity,
            "expired": bool(owner.valid_to and owner.valid_to < now),
        }
        rows.append(row)
    from eimzo_agent.plugins.hardware import key_rows

    rows.extend(key_rows(config.pkcs11_modules))  # keys on PKCS#11 tokens, type "pkcs11"
    if args.json:
        print(json.dumps({"disks": [d.label for d in disks], "keys": rows}, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("No keys found. Looked in:" if disks else "No key folders found.")
        for disk in disks:
            print(f"  {disk.label}")
        return 0
    for row in rows:
        ids = ", ".join(
            f"{label} {row[k]}" for label, k in (("PINFL", "pinfl"), ("TIN", "tin"), ("org TIN", "org_tin")) if row[k]
        )
        state = " [EXPIRED]" if row["expired"] else ""
        print(f"{row['cn'] or row['alias']}{state}")
        if ids:
            print(f"  {ids}")
        if row["org"]:
            print(f"  organisation: {row['org']}")
        if row["valid_from"] or row["valid_to"]:
            print(f"  valid: {row['valid_from'] or '?'} .. {row['valid_to'] or '?'}")
        print(f"  {'token' if row['type'] == 'pkcs11' else 'file'}: {row['file']}")
    return 0
