"""The development CA folder's revocation list, for `eimzo-agent dev revoke` and the dev OCSP/CRL responder.

One JSON file, `<ca folder>/revoked.json`, maps serial numbers (hex, as `openssl x509 -serial` and E-IMZO print
them) to when and why they were revoked. It covers the whole folder — the dev CA and its O'zDSt CA — because a
serial alone does not say which CA issued it, and the serials are random 159-bit numbers that never collide. The
responder reads the file on every request, so a revocation shows at once, without a restart.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ..crypto.crl import REASON_NAMES, Revocation
from .common import utc_now, write_ca_file

__all__ = ["REASONS", "REVOKED_FILE", "load_revoked", "revoke"]

REVOKED_FILE = "revoked.json"
#: The crlReason names `revoke` accepts (removeFromCRL only belongs in delta CRLs, which the responder never makes).
REASONS = tuple(name for name in REASON_NAMES.values() if name != "removeFromCRL")


def revoke(ca_directory: Path, serial: int | str, reason: str = "unspecified",
           at: dt.datetime | None = None) -> Revocation:
    """Add `serial` (an int, or hex text with or without colons / 0x) to the folder's list; return the entry.

    Revoking a revoked serial again keeps the first entry, as a CA would."""
    number = serial if isinstance(serial, int) else _parse_serial(serial)
    if reason not in REASONS:
        raise ValueError(f"unknown revocation reason {reason!r} (choose one of {', '.join(REASONS)})")
    path = Path(ca_directory) / REVOKED_FILE
    entries = _read(path)
    key = format(number, "x")
    if key not in entries:
        when = (at or utc_now()).astimezone(dt.UTC).replace(microsecond=0)
        entries[key] = {"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": reason}
        write_ca_file(path, (json.dumps(entries, indent=2, sort_keys=True) + "\n").encode())
    return _entry(entries[key])


def load_revoked(ca_directory: Path) -> dict[int, Revocation]:
    """Serial -> revocation of the folder's list; empty when nothing was revoked. ValueError if the file is bad."""
    return {int(key, 16): _entry(value) for key, value in _read(Path(ca_directory) / REVOKED_FILE).items()}


def _parse_serial(text: str) -> int:
    cleaned = text.strip().replace(":", "").lower().removeprefix("0x")
    try:
        number = int(cleaned, 16)
    except ValueError:
        raise ValueError(f"a serial number is hexadecimal, got {text!r}") from None
    if number <= 0:
        raise ValueError("a serial number is positive")
    return number


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def _entry(value: dict[str, str]) -> Revocation:
    try:
        when = dt.datetime.strptime(value["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        reason = value["reason"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a revocation entry is malformed: {value!r}") from exc
    return Revocation(when, reason)
