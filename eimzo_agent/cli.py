"""`eimzo-agent` command line: serve, keys, version, dev mint-key.

This is a public interface (admins, scripts and acceptance checks use it): extend it, never rename.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eimzo_agent import EIMZO_COMPAT_VERSION, __version__
from eimzo_agent.config import ENV_ASKPASS, ConfigError, dev_ca_path, load_config, tls_path

log = logging.getLogger("eimzo_agent")


def _add_key_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-root",
        action="append",
        metavar="DIR",
        help="also look for keys in DIR (its root and its DSKEYS folder); repeatable",
    )
    parser.add_argument(
        "--pkcs11-module",
        action="append",
        metavar="PATH",
        help="use the PKCS#11 module PATH for tokens (instead of the OpenSC/vendor modules found on disk); "
        "repeatable",
    )
    parser.add_argument("--config", metavar="FILE", type=Path, help="settings file to use instead of the user's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eimzo-agent",
        description="Local signing agent for Uzbek ERI keys, wire-compatible with E-IMZO.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the agent (WebSocket API on 127.0.0.1)")
    serve.add_argument("--ws-port", type=int, metavar="N", help="WebSocket port (default 64646)")
    serve.add_argument("--wss-port", type=int, metavar="N", help="TLS WebSocket port (default 64443)")
    _add_key_source_options(serve)
    serve.add_argument(
        "--askpass",
        metavar="PROGRAM",
        help=f"ask for passwords by running PROGRAM (prints the password; non-zero exit = cancel); "
        f"also ${ENV_ASKPASS}",
    )
    serve.add_argument("--no-tray", action="store_true", help="do not show a tray icon")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: make demo keys (first run) in <user data dir>/demo/DSKEYS, look for keys there too, "
        "and print the demo portal's address (http://127.0.0.1:<port>/demo/) and the keys' password",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    keys = commands.add_parser("keys", help="list the keys the agent sees")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    _add_key_source_options(keys)

    commands.add_parser("version", help="print the version")

    journal = commands.add_parser("journal", help="show the signing journal (what was signed, when, for which site)")
    journal.add_argument("--json", action="store_true", help="JSON lines, one entry each (for export)")
    journal.add_argument("--since", type=_date, metavar="YYYY-MM-DD[THH:MM]", help="only entries from then on")

    sites = commands.add_parser("sites", help="sites allowed to use your keys (API key, your consent, admin list)")
    sites.add_argument("action", nargs="?", choices=["list", "revoke"], default="list")
    sites.add_argument("domain", nargs="?", help="the site to revoke, e.g. portal.example.uz")
    sites.add_argument("--json", action="store_true")
    sites.add_argument("--config", metavar="FILE", type=Path, help="settings file to use instead of the user's")

    trust = commands.add_parser("trust", help="make browsers trust wss://127.0.0.1 (the agent's local CA)")
    trust.add_argument("action", choices=["install", "remove", "status"])
    trust.add_argument("--nss-db", action="append", metavar="DIR",
                       help="only this NSS database (repeatable); default: Chromium's and every Firefox profile")
    trust.add_argument("--system", action=argparse.BooleanOptionalAction, default=None,
                       help="also the system store (default: yes when run as root and no --nss-db is given)")

    dev = commands.add_parser("dev", help="developer tools (test keys)")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True, metavar="TOOL")
    mint = dev_commands.add_parser(
        "mint-key", help="issue a test key from a development CA and write it as a password-protected .pfx"
    )
    mint.add_argument("--alg", choices=["rsa2048", "p256", "ozdst"], default="rsa2048",
                      help="key algorithm; ozdst = national O'zDSt key from the dev O'zDSt CA (<ca>/ozdst)")
    mint.add_argument("--ca", type=Path, metavar="DIR", help="development CA folder (created if missing)")
    mint.add_argument("--out", type=Path, metavar="DIR", required=True, help="folder to write the .pfx into")
    mint.add_argument("--password", required=True, help="password for the new .pfx")
    mint.add_argument("--cn", required=True, help="common name, usually 'SURNAME NAME PATRONYMIC'")
    mint.add_argument("--name", help="given name")
    mint.add_argument("--surname", help="surname")
    mint.add_argument("--pinfl", help="personal number (14 digits)")
    mint.add_argument("--tin", help="person's TIN / STIR (9 digits)")
    mint.add_argument("--org", help="organisation name")
    mint.add_argument("--org-tin", help="organisation's TIN (9 digits); makes a legal-entity key")
    mint.add_argument("--title", help="job title")
    mint.add_argument("--locality", help="district / city")
    mint.add_argument("--region", help="region")
    mint.add_argument("--business-category", help="legal form, e.g. 'MChJ'")
    mint.add_argument("--valid-from", type=_date, metavar="YYYY-MM-DD[THH:MM]", help="start of validity")
    mint.add_argument("--valid-to", type=_date, metavar="YYYY-MM-DD[THH:MM]", help="end of validity")
    mint.add_argument("--file-name", help="file name without .pfx (default DS<PINFL|TIN><NNNN>)")
    return parser


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return value if value.tzinfo else value.astimezone()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "version":
            print(f"eimzo-agent {__version__} (E-IMZO {'.'.join(EIMZO_COMPAT_VERSION)} compatible)")
            return 0
        if args.command == "serve":
            return _serve(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "trust":
            return _trust(args)
        if args.command == "journal":
            return _journal(args)
        if args.command == "sites":
            return _sites(args)
        if args.command == "dev" and args.dev_command == "mint-key":
            return _mint_key(args)
    except ConfigError as exc:
        print(f"eimzo-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse enforces the commands


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # websockets logs every connection at INFO; portals open one per call, which would drown our own messages.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    demo = None
    if args.demo:
        from eimzo_agent.dev.demo import ensure_demo_keys
        from eimzo_agent.keys.errors import KeyStoreError

        try:
            demo = ensure_demo_keys()
        except (OSError, ValueError, KeyStoreError) as exc:
            print(f"eimzo-agent: cannot prepare the demo keys: {exc}", file=sys.stderr)
            return 1
    config = load_config(
        args.config,
        {
            "ws_port": args.ws_port,
            "wss_port": args.wss_port,
            "key_roots": [*(args.key_root or []), str(demo.root)] if demo else args.key_root,
            "pkcs11_modules": args.pkcs11_module,
            "askpass": args.askpass or os.environ.get(ENV_ASKPASS) or None,
            "tray": False if args.no_tray else None,
        },
    )
    from eimzo_agent.agent import build_agent
    from eimzo_agent.server.listener import AgentServer, PortInUse

    async def run() -> int:
        agent = build_agent(config)
        server = AgentServer(agent)
        try:
            await server.start(config.ws_port, wss_port=config.wss_port, tls=_tls_context())
        except PortInUse as exc:
            print(
                f"eimzo-agent: {exc}. Is E-IMZO or another eimzo-agent already running? "
                "Stop it or choose another port with --ws-port.",
                file=sys.stderr,
            )
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows
                signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
        print(
            f"eimzo-agent {__version__} ready: ws://127.0.0.1:{server.ports['ws']}/service/cryptapi"
            + (f" wss://127.0.0.1:{server.ports['wss']}/service/cryptapi" if "wss" in server.ports else ""),
            flush=True,
        )
        if demo is not None:
            from eimzo_agent.dev.demo import DEMO_PASSWORD

            made = "made" if demo.created else "found"
            print(f"demo: {len(demo.keys)} demo keys {made} in {demo.root / 'DSKEYS'}, password: {DEMO_PASSWORD}",
                  flush=True)
            print(f"demo: open http://127.0.0.1:{server.ports['ws']}/demo/ in a browser", flush=True)
        if config.sources:
            log.info("settings from %s", ", ".join(map(str, config.sources)))
        tray = None
        if config.tray:  # never fatal: no display, no tray area or no pystray just means no icon
            from eimzo_agent.ui.tray import start_tray

            tray = start_tray(agent, server.ports["ws"], lambda: loop.call_soon_threadsafe(stop.set))
        await stop.wait()
        if tray is not None:
            tray.stop()
        await server.close()
        return 0

    return asyncio.run(run())


def _tls_context() -> ssl.SSLContext | None:
    """The wss identity; without one the agent still serves ws:// (and says why in the log)."""
    from eimzo_agent.server.tls import ensure_identity

    try:
        return ensure_identity(tls_path()).ssl_context()
    except (OSError, ValueError, ssl.SSLError) as exc:
        log.warning("no TLS for wss:// (%s); serving ws:// only", exc)
        return None


def _sites(args: argparse.Namespace) -> int:
    from eimzo_agent.config import user_data_path
    from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore
    from eimzo_agent.policy.consent import CONSENT_FILE

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
        found = False
        for store in stores.values():
            domains = store.load()
            if domain in domains:
                store.save(domains - {domain})
                found = True
        print(f"revoked {domain}" if found else f"{domain} was not allowed (the admin allowlist is not changed here)")
        return 0 if found else 1
    config = load_config(args.config)
    rows = [{"domain": d, "source": source} for source, store in stores.items() for d in sorted(store.load())]
    rows += [{"domain": d, "source": "admin"} for d in config.allowed_domains]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("No sites allowed besides localhost and 127.0.0.1.")
    for row in rows if not args.json else []:
        print(f"{row['domain']:40} {row['source']}")
    return 0


def _journal(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from eimzo_agent.config import user_data_path
    from eimzo_agent.policy.journal import JOURNAL_FILE, Journal

    entries = list(Journal(user_data_path() / JOURNAL_FILE).entries(since=args.since))
    for entry in entries:
        if args.json:
            print(json.dumps(asdict(entry), ensure_ascii=False))
        else:
            moment = datetime.fromisoformat(entry.time).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            print(f"{moment}  {entry.result:<11} {entry.site}  {entry.operation}  {entry.owner} "
                  f"(serial {entry.certificate_serial or '?'})  sha256 {entry.content_sha256[:16]}…")
    if not entries and not args.json:
        print("The signing journal is empty.")
    return 0


def _trust(args: argparse.Namespace) -> int:
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


def _keys(args: argparse.Namespace) -> int:
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

    rows.extend(key_rows(config))  # keys on PKCS#11 tokens, type "pkcs11"
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


def _mint_key(args: argparse.Namespace) -> int:
    from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key
    from eimzo_agent.keys.errors import KeyStoreError

    try:
        subject = SubjectFields(
            cn=args.cn,
            name=args.name,
            surname=args.surname,
            pinfl=args.pinfl,
            tin=args.tin,
            org=args.org,
            org_tin=args.org_tin,
            title=args.title,
            locality=args.locality,
            region=args.region,
            business_category=args.business_category,
        )
        ca = ensure_dev_ca(args.ca or dev_ca_path())
        path = mint_key(
            ca,
            args.out,
            password=args.password,
            subject=subject,
            alg=args.alg,
            valid_from=args.valid_from.astimezone(UTC) if args.valid_from else None,
            valid_to=args.valid_to.astimezone(UTC) if args.valid_to else None,
            file_name=args.file_name,
        )
    except (ValueError, KeyStoreError, OSError) as exc:
        print(f"eimzo-agent: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
