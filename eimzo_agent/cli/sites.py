"""`eimzo-agent sites`: the sites allowed to use the person's keys, and revoking them (also while the agent runs)."""

from __future__ import annotations

import argparse
import json
import sys

from eimzo_agent.cli.common import add_config_option
from eimzo_agent.config import load_config


def add_parser(commands: argparse._SubParsersAction) -> None:
    sites = commands.add_parser("sites", help="sites allowed to use your keys (API key, your consent, admin list)")
    sites.add_argument("action", nargs="?", choices=["list", "revoke"], default="list")
    sites.add_argument("domain", nargs="?", help="the site to revoke, e.g. https://portal.example.uz or a host "
                                                 "(both schemes)")
    sites.add_argument("--json", action="store_true")
    add_config_option(sites)


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.config import user_data_path
    from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore
    from eimzo_agent.policy.consent import CONSENT_FILE
    from eimzo_agent.policy.domains import revocation_targets, stored_sites

    stores = {
        "api-key": ApprovedDomainStore(user_data_path() / APPROVED_FILE),
        "consent": ApprovedDomainStore(user_data_path() / CONSENT_FILE),
    }
    if args.action == "revoke":
        if not args.domain:
            print("eimzo-agent: name the site to revoke, e.g. `eimzo-agent sites revoke portal.example.uz`",
                  file=sys.stderr)
            return 2
        domain = args.domain.strip().lower()
        targets = revocation_targets(domain)
        found = False
        for store in stores.values():
            sites = stored_sites(store.load())
            if sites & set(targets):
                store.save(sites - set(targets))
                found = True
        print(f"revoked {domain}" if found else f"{domain} was not allowed (the admin allowlist is not changed here)")
        return 0 if found else 1
    config = load_config(args.config)
    rows = [{"domain": d, "source": source} for source, store in stores.items()
            for d in sorted(stored_sites(store.load()))]
    rows += [{"domain": d, "source": "admin"} for d in config.allowed_domains]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("No sites allowed besides localhost and 127.0.0.1.")
    for row in rows if not args.json else []:
        print(f"{row['domain']:40} {row['source']}")
    return 0
