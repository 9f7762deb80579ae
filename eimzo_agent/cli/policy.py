"""`eimzo-agent policy browser`: the browser policies that let chosen portals reach the agent (Local Network
Access), printed or written as files; the installers use the same generator (eimzo_agent/deploy).

`--apply`/`--remove` install them system-wide on Linux (the eimzo-agent-browser-policy package's scripts call
them): a managed JSON file per Chromium-based browser, our domains merged into Firefox's policies.json next to the
admin's own policies, and a record of exactly what was added, so that removal takes away that and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from eimzo_agent.config import load_config, system_config_path
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

#: What --apply writes, relative to --root: the managed-policy folders of Chromium, Google Chrome and Microsoft
#: Edge on Linux, and Firefox's system-wide policies.json (shared with the admin's own policies: merged).
MANAGED_FILES = (
    "etc/chromium/policies/managed/eimzo-agent.json",
    "etc/opt/chrome/policies/managed/eimzo-agent.json",
    "etc/opt/edge/policies/managed/eimzo-agent.json",
)
FIREFOX_FILE = "etc/firefox/policies/policies.json"
#: The record of the last --apply: which files and folders it made and which Firefox entries it added.
STATE_FILE = "var/lib/eimzo-agent/browser-policy.json"
#: Folders --apply may make (the parents of its files); --remove takes away those it made, once they are empty.
OUR_FOLDERS = frozenset(str(parent) for name in (*MANAGED_FILES, FIREFOX_FILE, STATE_FILE)
                        for parent in Path(name).parents if parent != Path("."))


def add_parser(commands: argparse._SubParsersAction) -> None:
    policy = commands.add_parser("policy", help="browser policies that let portals reach the agent")
    kinds = policy.add_subparsers(dest="policy_command", required=True, metavar="KIND")
    browser = kinds.add_parser(
        "browser", help="Local Network Access allowances for Chrome, Chromium, Edge and Firefox",
        description="Print (or write into --out DIR) the managed browser policy that lets the named portals reach "
                    "the agent on 127.0.0.1 without a permission prompt; or, with --apply, install it for every "
                    "browser on this Linux machine.")
    browser.add_argument("--site", action="append", metavar="URL",
                         help="a portal: https://my.gov.uz, or https://[*.]soliq.uz for the domain and its "
                              "sub-domains; repeatable")
    browser.add_argument("--from-config", nargs="?", const="", metavar="FILE",
                         help="also the portals in [sites] allowed_domains of the agent's settings, as the agent "
                              "reads them with --config FILE (default: the admin settings file, "
                              f"{system_config_path()})")
    browser.add_argument("--format", choices=list(FILES),
                         help="chrome-json (Chrome/Chromium/Edge on Linux), firefox-json (policies.json), "
                              "windows-reg (Chrome and Edge under HKLM), macos-plist (managed preferences); "
                              "default chrome-json")
    action = browser.add_mutually_exclusive_group()
    action.add_argument("--out", type=Path, metavar="DIR", help="write the file(s) into DIR instead of printing")
    action.add_argument("--apply", action="store_true",
                        help="install the policies on this Linux machine: a managed JSON file for Chromium, Google "
                             "Chrome and Microsoft Edge, the portals merged into Firefox's policies.json; replaces "
                             "what an earlier --apply wrote")
    action.add_argument("--remove", action="store_true",
                        help="undo what --apply wrote (from Firefox's policies.json only the entries it added)")
    browser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                         help="with --apply/--remove: the file system root to work under (images, tests); default /")


def run(args: argparse.Namespace) -> int:
    if args.remove:
        if args.site or args.from_config is not None or args.format:
            return _fail("--remove takes no --site, --from-config or --format: it undoes what --apply wrote")
        return _remove(args.root)
    if args.apply and args.format:
        return _fail("--apply writes every Linux format; leave out --format")
    try:
        sites = _sites(args)
    except PolicyError as exc:
        return _fail(str(exc))
    if args.apply:
        return _apply(args.root, sites)
    fmt = args.format or "chrome-json"
    content = render(fmt, sites)
    if args.out is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return 0
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in FILES[fmt]:
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


def _fail(message: str) -> int:
    print(f"eimzo-agent: {message}", file=sys.stderr)
    return 2


def _sites(args: argparse.Namespace) -> list[SitePattern]:
    """--site patterns, then the settings' allowed_domains; a ConfigError (bad settings file) propagates."""
    texts = list(args.site or [])
    if args.from_config is not None:
        path = Path(args.from_config) if args.from_config else system_config_path()
        domains = load_config(path).allowed_domains
        where = f"{path}: [sites] allowed_domains"
        if not any(domain.strip() for domain in domains):
            raise PolicyError(f"{where} names no portal; list the portals there, e.g. "
                              'allowed_domains = ["my.gov.uz", "*.soliq.uz"]')
        try:
            texts += [str(site) for site in browser_policy.from_allowed_domains(domains)]
        except PolicyError as exc:
            raise PolicyError(f"{where}: {exc}") from None
    if not texts:
        raise PolicyError("name at least one portal: --site URL (e.g. --site https://my.gov.uz) or --from-config")
    return browser_policy.parse_sites(texts)


def _apply(root: Path, sites: list[SitePattern]) -> int:
    """Everything is read and checked before the first write: a bad file leaves the machine as it was."""
    state_path, firefox_path = root / STATE_FILE, root / FIREFOX_FILE
    try:
        previous = _read_state(state_path)
        existing = _read_json(firefox_path)
        base = _undo_firefox(existing, previous.get("firefox")) if existing is not None else None
        merged = browser_policy.merge_firefox(base, sites)
    except PolicyError as exc:
        return _fail(str(exc))
    old_domains = _skip_domains(base)
    record = {
        "added_domains": [d for d in _skip_domains(merged) if d not in old_domains],
        "added_local_network_access": "LocalNetworkAccess" not in (base or {}).get("policies", {}),
        "created_file": existing is None or bool((previous.get("firefox") or {}).get("created_file")),
    }
    made = sorted(set(previous.get("made_folders", [])) | {name for name in OUR_FOLDERS if not (root / name).exists()})
    chromium = render("chrome-json", sites)
    try:
        # The record goes first: whatever an interruption leaves written, --remove knows of it.
        state = {"files": list(MANAGED_FILES), "made_folders": made, "firefox": record}
        _write(state_path, json.dumps(state, indent=2) + "\n")
        for name in MANAGED_FILES:
            _write(root / name, chromium)
            print(root / name)
        _write(firefox_path, json.dumps(merged, indent=2) + "\n")
        print(firefox_path)
    except OSError as exc:
        print(f"eimzo-agent: cannot write the browser policies: {exc}", file=sys.stderr)
        return 1
    return 0


def _remove(root: Path) -> int:
    state_path, firefox_path = root / STATE_FILE, root / FIREFOX_FILE
    try:
        state = _read_state(state_path)
    except PolicyError as exc:
        return _fail(str(exc))
    if not state:
        return 0
    try:
        for name in state.get("files", []):
            if name in MANAGED_FILES:  # never anything else, whatever the record says
                (root / name).unlink(missing_ok=True)
        record = state.get("firefox")
        existing = _read_json(firefox_path) if record else None
        if existing is not None:
            undone = _undo_firefox(existing, record)
            if record.get("created_file") and undone in ({}, {"policies": {}}):
                firefox_path.unlink()
            else:
                _write(firefox_path, json.dumps(undone, indent=2) + "\n")
    except PolicyError as exc:
        # The admin's file became unreadable since: ours cannot be told apart, so it stays as it is.
        print(f"eimzo-agent: warning: {exc}; left as it is", file=sys.stderr)
    except OSError as exc:
        print(f"eimzo-agent: cannot remove the browser policies: {exc}", file=sys.stderr)
        return 1
    state_path.unlink()
    # Deepest first; a folder that holds anything else (the admin's own policies) stays.
    for name in sorted(set(state.get("made_folders", [])) & OUR_FOLDERS, key=lambda n: -len(Path(n).parts)):
        with contextlib.suppress(OSError):
            (root / name).rmdir()
    return 0


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode() if isinstance(text, str) else text, mode=0o644)


def _read_json(path: Path) -> dict[str, Any] | None:
    """Firefox's policies.json (or our record) as an object; None when there is no file; PolicyError otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: cannot read it as JSON ({exc}); fix or remove it first") from None
    if not isinstance(data, dict) or not isinstance(data.get("policies", {}), dict):
        raise PolicyError(f"{path}: not an object with a \"policies\" object; fix or remove it first")
    return data


def _read_state(path: Path) -> dict[str, Any]:
    return _read_json(path) or {}


def _skip_domains(policies: dict[str, Any] | None) -> list[str]:
    lna = (policies or {}).get("policies", {}).get("LocalNetworkAccess")
    skip = lna.get("SkipDomains") if isinstance(lna, dict) else None
    return list(skip) if isinstance(skip, list) else []


def _undo_firefox(policies: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """`policies` without what one --apply added (as `record` says), the admin's own entries kept."""
    if not record:
        return policies
    lna_before = policies.get("policies", {}).get("LocalNetworkAccess")
    ours = [browser_policy.parse_site(f"https://{domain}") for domain in record.get("added_domains", [])]
    undone = browser_policy.unmerge_firefox(policies, ours)
    if (not record.get("added_local_network_access") and isinstance(lna_before, dict)
            and "LocalNetworkAccess" not in undone.get("policies", {})):
        # unmerge_firefox drops a LocalNetworkAccess left with no domains; this one was the admin's own.
        undone["policies"]["LocalNetworkAccess"] = {k: v for k, v in lna_before.items() if k != "SkipDomains"}
    return undone
