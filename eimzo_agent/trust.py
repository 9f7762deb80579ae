"""`eimzo-agent trust install|remove|status`: put the local CA where browsers look for trust anchors.

Chromium and Firefox on Linux read NSS databases (`~/.pki/nssdb`, Firefox profiles), not the system store;
Debian's system store (`ca-certificates`) serves curl, Python and most other programs. Windows and macOS have one
user store each. Installing also removes CAs this agent made earlier (the per-install CA is replaced whenever the
server certificate is renewed), so stores never collect stale anchors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

NSS_NICKNAME = "eimzo-agent local CA"
SYSTEM_CA_PATH = Path("/usr/local/share/ca-certificates/eimzo-agent-local-ca.crt")


@dataclass
class TrustReport:
    lines: list[str] = field(default_factory=list)
    failures: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"ok: {text}")

    def fail(self, text: str) -> None:
        self.lines.append(f"FAILED: {text}")
        self.failures += 1

    def note(self, text: str) -> None:
        self.lines.append(text)


def default_nss_databases(home: Path | None = None) -> list[Path]:
    """Chromium's shared NSS database and every Firefox profile of the user (snap installs included)."""
    home = home or Path.home()
    found = [home / ".pki" / "nssdb"]
    for pattern in (
        ".mozilla/firefox/*",
        "snap/firefox/common/.mozilla/firefox/*",
        ".var/app/org.mozilla.firefox/.mozilla/firefox/*",
    ):
        found += [p for p in sorted(home.glob(pattern)) if (p / "cert9.db").exists()]
    snap_chromium = home / "snap" / "chromium" / "current" / ".pki" / "nssdb"
    if snap_chromium.exists():
        found.append(snap_chromium)
    return found


def _certutil() -> str | None:
    return shutil.which("certutil")


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _nss_nicknames(db: Path) -> list[str]:
    listing = _run([_certutil() or "certutil", "-L", "-d", f"sql:{db}"])
    names = []
    for line in listing.stdout.splitlines()[4:]:
        name = line.rsplit(None, 1)[0].strip() if line.strip() else ""
        if name.startswith(NSS_NICKNAME):
            names.append(name)
    return names


def _nss_install(db: Path, ca_pem: Path, fingerprint: str, report: TrustReport) -> None:
    if not (db / "cert9.db").exists():
        db.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = _run([_certutil() or "certutil", "-N", "-d", f"sql:{db}", "--empty-password"])
        if created.returncode != 0:
            report.fail(f"cannot create NSS database {db}: {created.stderr.strip()}")
            return
    _nss_remove(db, TrustReport())
    nickname = f"{NSS_NICKNAME} {fingerprint[:11]}"
    added = _run([_certutil() or "certutil", "-A", "-d", f"sql:{db}", "-n", nickname, "-t", "C,,", "-i", str(ca_pem)])
    if added.returncode == 0:
        report.ok(f"NSS database {db}")
    else:
        report.fail(f"NSS database {db}: {added.stderr.strip()}")


def _nss_remove(db: Path, report: TrustReport) -> None:
    if not (db / "cert9.db").exists():
        return
    for name in _nss_nicknames(db):
        removed = _run([_certutil() or "certutil", "-D", "-d", f"sql:{db}", "-n", name])
        if removed.returncode == 0:
            report.ok(f"removed {name!r} from NSS database {db}")
        else:
            report.fail(f"NSS database {db}: {removed.stderr.strip()}")


def _linux_system_install(ca_pem: Path, report: TrustReport) -> None:
    if os.geteuid() != 0:
        report.note(f"system store: needs root — run: sudo cp {ca_pem} {SYSTEM_CA_PATH} && sudo update-ca-certificates")
        return
    SYSTEM_CA_PATH.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_pem, SYSTEM_CA_PATH)
    done = _run(["update-ca-certificates"])
    (report.ok if done.returncode == 0 else report.fail)(f"system store {SYSTEM_CA_PATH}")


def _linux_system_remove(report: TrustReport) -> None:
    if not SYSTEM_CA_PATH.exists():
        return
    if os.geteuid() != 0:
        report.note(f"system store: needs root — run: sudo rm {SYSTEM_CA_PATH} && sudo update-ca-certificates --fresh")
        return
    SYSTEM_CA_PATH.unlink()
    done = _run(["update-ca-certificates", "--fresh"])
    (report.ok if done.returncode == 0 else report.fail)(f"removed {SYSTEM_CA_PATH}")


def windows_commands(ca_pem: Path, old: Iterable[x509.Certificate]) -> list[list[str]]:
    """Current user's Root store: no administrator rights needed; Windows asks the user to confirm."""
    commands = [["certutil", "-user", "-delstore", "Root", format(c.serial_number, "x")] for c in old]
    return [*commands, ["certutil", "-user", "-addstore", "Root", str(ca_pem)]]


def macos_commands(ca_pem: Path, old: Iterable[x509.Certificate]) -> list[list[str]]:
    keychain = str(Path.home() / "Library" / "Keychains" / "login.keychain-db")
    commands = [["security", "delete-certificate", "-Z", c.fingerprint(hashes.SHA1()).hex().upper(), keychain]  # noqa: S303
                for c in old]
    return [*commands, ["security", "add-trusted-cert", "-r", "trustRoot", "-k", keychain, str(ca_pem)]]


def install(ca_pem: Path, retired: list[x509.Certificate], *, nss_dbs: list[Path] | None = None,
            system: bool | None = None) -> TrustReport:
    """Trust `ca_pem`. `nss_dbs` None = the user's browsers; `system` None = the system store when possible."""
    report = TrustReport()
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    fingerprint = ca.fingerprint(hashes.SHA256()).hex().upper()
    if sys.platform == "win32" or sys.platform == "darwin":
        commands = windows_commands(ca_pem, retired) if sys.platform == "win32" else macos_commands(ca_pem, retired)
        for cmd in commands:
            done = _run(cmd)
            (report.ok if done.returncode == 0 else report.fail)(" ".join(cmd))
        return report
    explicit = nss_dbs is not None
    if _certutil() is None:
        report.fail("certutil not found: install the libnss3-tools package (browsers read NSS databases)")
    else:
        for db in nss_dbs if explicit else default_nss_databases():
            _nss_install(db, ca_pem, fingerprint, report)
    if system or (system is None and not explicit):
        _linux_system_install(ca_pem, report)
    return report


def remove(*, nss_dbs: list[Path] | None = None, system: bool | None = None) -> TrustReport:
    report = TrustReport()
    explicit = nss_dbs is not None
    if _certutil() is not None:
        for db in nss_dbs if explicit else default_nss_databases():
            _nss_remove(db, report)
    if system or (system is None and not explicit):
        _linux_system_remove(report)
    if not report.lines:
        report.note("nothing to remove")
    return report


def status(ca_pem: Path, *, nss_dbs: list[Path] | None = None) -> TrustReport:
    report = TrustReport()
    if not ca_pem.exists():
        report.note("no local CA yet: it is made when `eimzo-agent serve` first starts")
        return report
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    report.note(f"local CA: {ca.subject.rfc4514_string()}")
    report.note(f"  SHA-256 {ca.fingerprint(hashes.SHA256()).hex(':').upper()}")
    report.note(f"  valid until {ca.not_valid_after_utc:%Y-%m-%d} (file {ca_pem})")
    if sys.platform.startswith("linux"):
        if _certutil() is not None:
            for db in nss_dbs if nss_dbs is not None else default_nss_databases():
                present = (db / "cert9.db").exists() and bool(_nss_nicknames(db))
                report.note(f"  {'trusted' if present else 'not trusted'} in NSS database {db}")
        installed = SYSTEM_CA_PATH.exists() and SYSTEM_CA_PATH.read_bytes() == ca.public_bytes(
            serialization.Encoding.PEM
        )
        report.note(f"  {'trusted' if installed else 'not trusted'} in the system store")
    return report


def nss_trusts(db: Path, ca: x509.Certificate) -> bool | None:
    """Does the NSS database `db` trust `ca` (this CA, not an earlier one) for TLS servers? None: cannot tell
    (certutil missing, or the database does not open)."""
    if _certutil() is None:
        return None
    if not (db / "cert9.db").exists():
        return False
    listing = _run([_certutil() or "certutil", "-L", "-d", f"sql:{db}"])
    if listing.returncode != 0:
        return None
    nickname = f"{NSS_NICKNAME} {ca.fingerprint(hashes.SHA256()).hex().upper()[:11]}"
    for line in listing.stdout.splitlines()[4:]:
        name, _, flags = line.rstrip().rpartition(" ")
        if name.strip() == nickname and "C" in flags.split(",")[0]:
            return True
    return False


def system_store_trusts(ca: x509.Certificate, path: Path = SYSTEM_CA_PATH) -> bool:
    """Is `ca` the certificate `install` put into Debian's system store (curl, Python; not the browsers)?"""
    try:
        return path.read_bytes() == ca.public_bytes(serialization.Encoding.PEM)
    except OSError:
        return False


def user_store_trusts(ca: x509.Certificate) -> bool | None:
    """Windows' current-user Root store or the macOS login keychain holds `ca`; None elsewhere or when the
    store's tool fails. Written from the tools' documentation, not tested on our Linux CI."""
    if sys.platform == "win32":
        found = _run(["certutil", "-user", "-store", "Root", format(ca.serial_number, "x")])
        return found.returncode == 0
    if sys.platform == "darwin":
        sha1 = ca.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the keychain's identifier, not security
        found = _run(["security", "find-certificate", "-a", "-Z", "-c", NSS_NICKNAME])
        return None if found.returncode not in (0, 44) else sha1 in found.stdout.replace(" ", "").upper()
    return None
