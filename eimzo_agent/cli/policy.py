"""`eimzo-agent policy browser`: the browser policies that let chosen portals reach the agent (Local Network
Access), printed or written as files; the installers use the same generator (eimzo_agent/deploy)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eimzo_agent.deploy import browser_policy
from eimzo_agent.deploy.browser_policy import PolicyError, SitePattern
from eimzo_agent.fsutil import write_atomically

#: File names written by --out, per format (the Chromium JSON name is what the Linux package installs).
FILES = {
    "chrome-json": ["eimzo-agent.json"],
    "firefox-json": ["policies.json"],
    "windows-reg": ["eimzo-agent-browser-policy.reg"],
    "macos-plist": [f"{domain}.plist" for domain in browser_policy.MACOS_DOMAINS.values()],
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    policy = commands.add_parser("policy", help="browser policies that let portals reach the agent")
    kinds = policy.add_subparsers(dest="policy_command", required=True, metavar="KIND")
    browser = kinds.add_parser(
        "browser", help="Local Network Access allowances for Chrome, Chromium, Edge and Firefox",
        description="Print (or write into --out DIR) the managed browser policy that lets the named portals reach "
                    "the agent on 127.0.0.1 without a permission prompt.")
    browser.add_argument("--site", action="append", required=True, metavar="URL",
                         help="a portal: https://my.gov.uz, or https://[*.]soliq.uz for the domain and its "
                              "sub-domains; repeatable")
    browser.add_argument("--format", choices=list(FILES), default="chrome-json",
                         help="chrome-json (Chrome/Chromium/Edge on Linux), firefox-json (policies.json), "
                              "windows-reg (Chrome and Edge under HKLM), macos-plist (managed preferences); "
                              "default chrome-json")
    browser.add_argument("--out", type=Path, metavar="DIR", help="write the file(s) into DIR instead of printing")


def run(args: argparse.Namespace) -> int:
    try:
        sites = browser_policy.parse_sites(args.site)
    except PolicyError as exc:
        print(f"eimzo-agent: {exc}", file=sys.stderr)
        return 2
    content = render(args.format, sites)
    if args.out is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return 0
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in FILES[args.format]:
            write_atomically(args.out / name, content, mode=0o644)
            print(args.out / name)
    except OSError as exc:
        print(f"eimzo-agent: cannot write into {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def render(fmt: str, sites: list[SitePattern]) -> bytes:
    if fmt == "chrome-json":
        return (json.dumps(browser_policy.chromium_policy(sites), indent=2) + "\n").encode()
    if fmt == "firefox-json":
        return (json.dumps(browser_policy.firefox_policy(sites), indent=2) + "\n").encode()
    if fmt == "windows-reg":
        # .reg files are UTF-16 LE with a BOM, as regedit writes them.
        return ("\ufeff" + browser_policy.windows_registry(sites)).encode("utf-16-le")
    return browser_policy.macos_plist(sites)
