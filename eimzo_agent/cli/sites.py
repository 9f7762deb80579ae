"""`eimzo-agent sites`: the sites allowed to use the person's keys and those the person refused; revoking an
allowance or forgetting a refusal (also while the agent runs: it picks the files' changes up)."""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import urlsplit

from eimzo_agent.cli.common import add_config_option
from eimzo_agent.config import load_config


def add_parser(commands: argparse._SubParsersAction) -> None:
    sites = commands.add_parser("sites", help="sites allowed to use your keys (API key, your consent, admin list)")
    sites.add_argument("action", nargs="?", choices=["list", "revoke", "forget"], default="list",
                       help="list; revoke a site's permission; forget your refusal of a site (it may ask again)")
    sites.add_argument("domain", nargs="?", help="the site to revoke or forget, e.g. https://portal.example.uz or "
                                                 "a host (both schemes)")
    sites.add_argument("--json", action="store_true")
    add_config_option(sites)


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.config import user_data_path
    from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore
    from eimzo_agent.policy.consent import CONSENT_FILE, DENIED_FILE, SiteConsent
    from eimzo_agent.policy.domains import DomainGate, revocation_targets, stored_sites
    from eimzo_agent.policy.journal import JOURNAL_FILE, Journal

    stores = {
        "api-key": ApprovedDomainStore(user_data_path() / APPROVED_FILE),
        "consent": ApprovedDomainStore(user_data_path() / CONSENT_FILE),
    }
    denied = ApprovedDomainStore(user_data_path() / DENIED_FILE)
    if args.action == "forget":
        domain = _named_site(args, "the refused site")
        if domain is None:
            return 2
        # The agent's own code path (file and journal), so the running agent and this command agree.
        refusals = SiteConsent(None, None, denied=denied, journal=Journal(user_data_path() / JOURNAL_FILE))
        found = refusals.forget_denial(domain)
        print(f"forgot your refusal of {domain}: it may ask again" if found else f"{domain} was not refused")
        return 0 if found else 1
    if args.action == "revoke":
        domain = _named_site(args, "the site to revoke")
        if domain is None:
            return 2
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
    if not config.ask_unknown_sites:
        # The admin's policy wins over the person's earlier "always": kept on disk, not used (policy/consent.py).
        gate = DomainGate(config.allowed_domains)
        for row in rows:
            if row["source"] == "consent" and not gate.on_allowlist(urlsplit(row["domain"]).hostname or ""):
                row["blocked_by_admin"] = True
    # Refused by the person: listed so a "deny" pressed by mistake can be found and undone (`sites forget`).
    rows += [{"domain": d, "source": "denied"} for d in sorted(stored_sites(denied.load()))]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("No sites allowed besides localhost and 127.0.0.1.")
    for row in rows if not args.json else []:
        blocked = " (blocked by the administrator's settings)" if row.get("blocked_by_admin") else ""
        print(f"{row['domain']:40} {row['source']}{blocked}")
    return 0


def _named_site(args: argparse.Namespace, what: str) -> str | None:
    """The site a `forget` or `revoke` names (lower case), or None after saying how to name it."""
    if not args.domain:
        print(f"eimzo-agent: name {what}, e.g. `eimzo-agent sites {args.action} portal.example.uz`", file=sys.stderr)
        return None
    return str(args.domain).strip().lower()
