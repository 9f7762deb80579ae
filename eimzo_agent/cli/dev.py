"""`eimzo-agent dev mint-key`: test keys from a development CA, written as E-IMZO-style .pfx files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from eimzo_agent.cli.common import date_argument
from eimzo_agent.config import dev_ca_path


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    mint.add_argument("--valid-from", type=date_argument, metavar="YYYY-MM-DD[THH:MM]", help="start of validity")
    mint.add_argument("--valid-to", type=date_argument, metavar="YYYY-MM-DD[THH:MM]", help="end of validity")
    mint.add_argument("--file-name", help="file name without .pfx (default DS<PINFL|TIN><NNNN>)")
    mint.add_argument("--ocsp-url", metavar="URL", help="OCSP responder named in the certificate (AIA id-ad-ocsp)")
    mint.add_argument("--crl-url", metavar="URL", help="CRL named in the certificate (CRL distribution point)")
    tsa = dev_commands.add_parser("tsa", help="development RFC 3161 time-stamp authority over HTTP")
    tsa.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default 0 = any free port)")
    tsa.add_argument("--ca", type=Path, metavar="DIR", help="development CA folder (created if missing)")
    tsa.add_argument("--alg", choices=["rsa2048", "ozdst"], default="rsa2048",
                     help="TSA key: rsa2048 from the dev CA, ozdst from the dev O'zDSt CA (<ca>/ozdst)")
    tsa.add_argument("--policy", default=None, metavar="OID",
                     help="TSA policy OID (default 1.2.860.3.2.11.1, the vendor's test TSA policy)")
    responder = dev_commands.add_parser(
        "ocsp", help="development OCSP responder and CRL server for the dev CAs (POST /ocsp, GET /crl/ca.crl)"
    )
    responder.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default 0 = any free port)")
    responder.add_argument("--ca", type=Path, metavar="DIR", help="development CA folder (created if missing)")
    revoke = dev_commands.add_parser("revoke", help="revoke a dev certificate (the dev OCSP responder and CRLs tell)")
    revoke.add_argument("--ca", type=Path, metavar="DIR", help="development CA folder")
    revoke.add_argument("--serial", required=True, metavar="HEX", help="the certificate's serial number (hex)")
    revoke.add_argument("--reason", default="unspecified", metavar="REASON",
                        help="crlReason: unspecified (default), keyCompromise, cACompromise, affiliationChanged, "
                             "superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise")
    registration = dev_commands.add_parser(
        "registration", help="development registration service: issues certificates for the demo's 'get a key online'"
    )
    registration.add_argument("--port", type=int, default=64650, help="HTTP port on 127.0.0.1 (default 64650; 0 = any)")
    registration.add_argument("--ca", type=Path, metavar="DIR", help="development CA folder (created if missing)")


def run(args: argparse.Namespace) -> int:
    if args.dev_command == "mint-key":
        return _mint_key(args)
    if args.dev_command == "tsa":
        return _tsa(args)
    if args.dev_command == "registration":
        return _registration(args)
    if args.dev_command == "ocsp":
        return _ocsp(args)
    if args.dev_command == "revoke":
        return _revoke(args)
    return 2  # pragma: no cover - argparse enforces the tools


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
            ocsp_url=args.ocsp_url,
            crl_url=args.crl_url,
        )
    except (ValueError, KeyStoreError, OSError) as exc:
        print(f"eimzo-agent: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _registration(args: argparse.Namespace) -> int:
    from eimzo_agent.dev.registration_service import start_registration

    return _serve_until_stopped("registration", lambda: start_registration(args.ca or dev_ca_path(), args.port),
                                f"cannot listen on 127.0.0.1:{args.port}: ")


def _ocsp(args: argparse.Namespace) -> int:
    from eimzo_agent.dev.ocsp import start_ocsp

    return _serve_until_stopped("OCSP", lambda: start_ocsp(args.ca or dev_ca_path(), port=args.port),
                                f"cannot listen on 127.0.0.1:{args.port}: ")


def _revoke(args: argparse.Namespace) -> int:
    from eimzo_agent.dev.revoked import revoke
    from eimzo_agent.keys.errors import KeyStoreError

    try:
        entry = revoke(args.ca or dev_ca_path(), args.serial, args.reason)
    except (ValueError, KeyStoreError, OSError) as exc:
        print(f"eimzo-agent: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.serial} at {entry.time:%Y-%m-%d %H:%M:%S} UTC ({entry.reason})")
    return 0


def _tsa(args: argparse.Namespace) -> int:
    from eimzo_agent.dev.tsa import DEFAULT_POLICY, start_tsa

    return _serve_until_stopped("TSA", lambda: start_tsa(args.ca or dev_ca_path(), alg=args.alg, port=args.port,
                                                         policy=args.policy or DEFAULT_POLICY))


def _serve_until_stopped(label: str, start: Callable[[], tuple[str, Callable[[], None]]], failed: str = "") -> int:
    """Run a development service until Ctrl+C or SIGTERM, after printing "LABEL: URL" (tests and scripts read the
    port from that line); the port is released either way."""
    import signal
    import threading

    from eimzo_agent.keys.errors import KeyStoreError

    try:
        url, stop = start()
    except (ValueError, KeyStoreError, OSError) as exc:
        print(f"eimzo-agent: {failed}{exc}", file=sys.stderr)
        return 1
    print(f"{label}: {url}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM ends it as Ctrl+C does
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0
