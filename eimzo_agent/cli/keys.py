"""`eimzo-agent keys`: the keys the agent sees (key files on disks, keys on PKCS#11 tokens).

Each key is shown with its algorithm and owner. Both come from the key's certificate when it can be read
without the password (demo keys are read with the published demo password); otherwise the owner comes from the
alias (which E-IMZO stores lower-cased, so names are shown upper-case, as the vendor's portals show them) and
the algorithm from the size of the encrypted key, which tells RSA from elliptic-curve keys but not O'zDSt from
ECDSA.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509

from eimzo_agent.cli.common import add_key_source_options
from eimzo_agent.config import load_config
from eimzo_agent.keys.alias import Owner

OZDST_OID_ARC = "1.2.860.3.15."  # the national key algorithms (O'zDSt 1092 and its OZMST variant)
#: Label for an encrypted key whose size says "elliptic curve" but not which one.
EC_UNKNOWN = "EC (O'zDSt or ECDSA; certificate encrypted)"
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
#: Upper bounds of the PKCS#8 size of RSA keys (DER, plus cipher padding), smallest first.
_RSA_SIZES = ((900, 1024), (1500, 2048), (2100, 3072), (2700, 4096))
_EC_MAX_SIZE = 400  # every EC PKCS#8 encoding is far below the smallest RSA key


def add_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="list the keys the agent sees")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    keys.add_argument("--demo", action="store_true",
                      help="also the demo keys `serve --demo` uses (<user data dir>/demo/DSKEYS)")
    add_key_source_options(keys)


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.keys.alias import owner_from_alias
    from eimzo_agent.keys.disks import discover_disks
    from eimzo_agent.keys.pfx_files import list_all_certificates

    key_roots = list(args.key_root or [])
    demo_root: Path | None = None
    if args.demo:
        from eimzo_agent.dev.demo import demo_path

        demo_root = demo_path()
        key_roots.append(str(demo_root))
    config = load_config(args.config, {"key_roots": key_roots or None, "pkcs11_modules": args.pkcs11_module})
    disks = discover_disks(config.key_roots, system_locations=config.scan_system_locations)
    now = datetime.now()
    rows: list[dict[str, Any]] = []
    files: dict[Path, _FileFacts] = {}
    for entry in list_all_certificates(disks):
        if entry.file not in files:
            files[entry.file] = _file_facts(entry.file, _demo_password(entry.file, demo_root))
        facts = files[entry.file]
        alias_owner = owner_from_alias(entry.alias)
        cert = facts.certificates.get(alias_owner.serial or "")
        owner = _certificate_owner(cert) if cert is not None else _displayed(alias_owner)
        row: dict[str, Any] = {
            "type": "pfx",
            "disk": entry.disk,
            "path": entry.path,
            "name": entry.name,
            "file": str(entry.file),
            "alias": entry.alias,
            **_owner_fields(owner),
            "algorithm": algorithm_label(cert) if cert is not None else facts.size_algorithm,
            "expired": bool(owner.valid_to and owner.valid_to < now),
        }
        rows.append(row)
    token_rows = _token_rows(config.pkcs11_modules, now)
    if token_rows is None:
        return 1
    rows.extend(token_rows)
    missing = [str(root) for root in config.key_roots if not root.is_dir()]  # named but absent: a drive unplugged?
    if args.json:
        print(json.dumps({"disks": [d.label for d in disks], "missing": missing, "keys": rows}, ensure_ascii=False,
                         indent=2))
        return 0
    if not rows:
        print("No keys found. Looked in:" if disks or missing else "No key folders found.")
        for disk in disks:
            print(f"  {disk.label}")
        for folder in missing:
            print(f"  {folder} (missing)")
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
        print(f"  algorithm: {row['algorithm'] or 'unknown'}")
        print(f"  {'token' if row['type'] == 'pkcs11' else 'file'}: {row['file']}")
    if missing:
        print("Looked in, but missing:")
        for folder in missing:
            print(f"  {folder} (missing)")
    return 0


def algorithm_label(cert: asn1_x509.Certificate) -> str:
    """"O'zDSt", "RSA 2048", "ECDSA P-256"…: the certificate's public-key algorithm, as people name it."""
    spki_der = cert["tbs_certificate"]["subject_public_key_info"].dump()
    # Read generically first: asn1crypto's key classes raise KeyError on the national OIDs.
    oid = core.ObjectIdentifier.load(core.Sequence.load(core.Sequence.load(spki_der)[0].dump())[0].dump()).dotted
    if oid.startswith(OZDST_OID_ARC):
        return "O'zDSt"
    try:
        spki = asn1_keys.PublicKeyInfo.load(spki_der)
        if spki.algorithm == "rsa":
            return f"RSA {spki.bit_size}"
        if spki.algorithm == "ec":
            curve = spki.curve[1]
            return f"ECDSA {_CURVES.get(curve, curve)}"
    except (ValueError, KeyError, TypeError):
        pass
    return oid


def _token_rows(modules: list[str] | None, now: datetime) -> list[dict[str, Any]] | None:
    """Keys on PKCS#11 tokens (type "pkcs11"), in the same row shape as key files; their certificates are
    readable, so names and algorithm always come from them. None (after saying why) when modules were asked for
    (--pkcs11-module, settings) but the tokens extra is not installed; modules merely found on disk are skipped."""
    from eimzo_agent.keys.pkcs11_store import Pkcs11Store
    from eimzo_agent.plugins.hardware import TOKENS_EXTRA, modules_for, pkcs11_missing

    found = modules_for(modules)
    missing = pkcs11_missing() if found else None
    if missing is not None:
        named = ", ".join(found)
        if modules:
            print(f"eimzo-agent keys: cannot use PKCS#11 module {named}: python-pkcs11 is not installed ({missing}).\n"
                  f"Install the tokens extra: pip install '{TOKENS_EXTRA}' (or scripts/bootstrap.sh --tokens).",
                  file=sys.stderr)
            return None
        print(f"note: token keys not listed (found {named}, but python-pkcs11 is not installed: "
              f"pip install '{TOKENS_EXTRA}')", file=sys.stderr)
        return []
    rows = []
    for key in Pkcs11Store(found).list_keys():
        cert = key.certificate
        owner = _certificate_owner(cert)
        rows.append({
            "type": "pkcs11",
            "disk": "",
            "path": "",
            "name": key.label,
            "file": key.uri,
            "alias": key.alias,
            "token_id": key.token.token_id,
            "token_label": key.token.label,
            "module": key.token.module,
            **_owner_fields(owner),
            "algorithm": algorithm_label(cert),
            "expired": bool(owner.valid_to and owner.valid_to < now),
        })
    return rows


class _FileFacts:
    def __init__(self, certificates: dict[str, asn1_x509.Certificate], size_algorithm: str | None) -> None:
        self.certificates = certificates  # by serial, lower-case hex (as aliases hold it)
        self.size_algorithm = size_algorithm  # from the encrypted key's size, when all keys of the file agree


def _file_facts(file: Path, password: str | None) -> _FileFacts:
    """What a key file tells without (or with the demo) password; nothing when it does not parse."""
    from eimzo_agent.keys.errors import KeyStoreError
    from eimzo_agent.keys.pfx_files import read_key_file
    from eimzo_agent.keys.pkcs12.structure import bag_certificate, is_key_bag, iter_safe_bags, parse_pfx

    try:
        pfx = parse_pfx(read_key_file(file))
        try:
            bags = list(iter_safe_bags(pfx, password))
        except KeyStoreError:  # the demo password did not open it: read what is readable without
            bags = list(iter_safe_bags(pfx))
    except (OSError, KeyStoreError, ValueError):
        return _FileFacts({}, None)
    certificates = {}
    for bag in bags:
        cert = bag_certificate(bag)
        if cert is not None:
            certificates[format(cert.serial_number, "x")] = cert
    sizes = {_size_algorithm(len(bag["bag_value"].dump())) for bag in bags if is_key_bag(bag)}
    return _FileFacts(certificates, sizes.pop() if len(sizes) == 1 else None)


def _size_algorithm(size: int) -> str | None:
    if size < _EC_MAX_SIZE:
        return EC_UNKNOWN
    return next((f"RSA {bits}" for limit, bits in _RSA_SIZES if size < limit), None)


def _demo_password(file: Path, demo_root: Path | None) -> str | None:
    if demo_root is None or not file.is_relative_to(demo_root):
        return None
    from eimzo_agent.dev.demo import DEMO_PASSWORD

    return DEMO_PASSWORD


def _certificate_owner(cert: asn1_x509.Certificate) -> Owner:
    from eimzo_agent.keys.alias import owner_from_certificate

    return owner_from_certificate(cert)


def _displayed(owner: Owner) -> Owner:
    """An alias-derived owner with names upper-cased: the alias lost their case, portals show them so."""
    def upper(value: str | None) -> str | None:
        return value.upper() if value else value

    return replace(owner, cn=upper(owner.cn), name=upper(owner.name), surname=upper(owner.surname),
                   org=upper(owner.org), title=upper(owner.title))


def _owner_fields(owner: Owner) -> dict[str, Any]:
    fields = owner.to_dict()
    fields["legal_entity"] = fields.pop("is_legal_entity")  # one field, under the name `keys` always used
    return fields
