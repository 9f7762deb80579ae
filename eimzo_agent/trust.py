"""`eimzo-agent trust install|remove|status`: put the local CA where browsers look for trust anchors.

Chromium and Firefox on Linux read NSS databases (`~/.pki/nssdb`, Firefox profiles), not the system store;
Debian's system store (`ca-certificates`) serves curl, Python and most other programs. Windows and macOS have one
user store each. Installing also removes CAs this agent made earlier (the per-install CA is replaced whenever the
server certificate is renewed), so stores never collect stale anchors.

Under `sudo` the CA is the invoking person's (`invoking_user`): root only reads it, and touches that person's
browser databases as that person (`RunAs`), so no root-owned file lands in anyone's home.
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


@dataclass(frozen=True)
class RunAs:
    """The person whose browser databases root works on (under sudo); their files stay theirs."""

    name: str
    uid: int
    gid: int
    home: Path


def invoking_user() -> RunAs | None:
    """The person behind `sudo` (SUDO_USER/SUDO_UID) or `pkexec` (PKEXEC_UID), when we run as root for someone
    else; else None."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd  # POSIX only

    name = os.environ.get("SUDO_USER", "")
    uid = os.environ.get("SUDO_UID") or os.environ.get("PKEXEC_UID", "")  # pkexec names only the uid
    try:
        entry = pwd.getpwnam(name) if name else pwd.getpwuid(int(uid)) if uid.isdigit() else None
    except KeyError:
        return None
    if entry is None or entry.pw_uid == 0:
        return None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


@dataclass
class TrustReport:
    lines: list[str] = field(default_factory=list)
    failures: int = 0
    trusted: int = 0  # stores that trust the CA (`status` only)

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


def _run(cmd: list[str], run_as: RunAs | None = None) -> subprocess.CompletedProcess[str]:
    if run_as is None:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, user=run_as.uid,
                          group=run_as.gid, extra_groups=[], env={**os.environ, "HOME": str(run_as.home)})


def _nss_nicknames(db: Path, run_as: RunAs | None = None) -> list[str]:
    listing = _run([_certutil() or "certutil", "-L", "-d", f"sql:{db}"], run_as)
    names = []
    for line in listing.stdout.splitlines()[4:]:
        name = line.rsplit(None, 1)[0].strip() if line.strip() else ""
        if name.startswith(NSS_NICKNAME):
            names.append(name)
    return names


def _nss_install(db: Path, ca_pem: Path, fingerprint: str, report: TrustReport, run_as: RunAs | None = None) -> None:
    if not (db / "cert9.db").exists():
        if run_as is None:
            db.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = _run([_certutil() or "certutil", "-N", "-d", f"sql:{db}", "--empty-password"])
        else:
            created = _run(["mkdir", "-p", "-m", "700", str(db)], run_as)
            if created.returncode == 0:
                created = _run([_certutil() or "certutil", "-N", "-d", f"sql:{db}", "--empty-password"], run_as)
        if created.returncode != 0:
            report.fail(f"cannot create NSS database {db}: {created.stderr.strip()}")
            return
    _nss_remove(db, TrustReport(), run_as)
    nickname = f"{NSS_NICKNAME} {fingerprint[:11]}"
    added = _run([_certutil() or "certutil", "-A", "-d", f"sql:{db}", "-n", nickname, "-t", "C,,", "-i", str(ca_pem)],
                 run_as)
    if added.returncode == 0:
        report.ok(f"NSS database {db}")
    else:
        report.fail(f"NSS database {db}: {added.stderr.strip()}")


def _nss_remove(db: Path, report: TrustReport, run_as: RunAs | None = None) -> None:
    if not (db / "cert9.db").exists():
        return
    for name in _nss_nicknames(db, run_as):
        removed = _run([_certutil() or "certutil", "-D", "-d", f"sql:{db}", "-n", name], run_as)
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
            system: bool | None = None, run_as: RunAs | None = None) -> TrustReport:
    """Trust `ca_pem`. `nss_dbs` None = the user's browsers; `system` None = the system store when possible.
    `run_as`: the NSS databases are that person's (under sudo), worked on with their identity."""
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
        for db in nss_dbs if explicit else default_nss_databases(run_as.home if run_as else None):
            _nss_install(db, ca_pem, fingerprint, report, run_as)
    if system or (system is None and not explicit):
        _linux_system_install(ca_pem, report)
    return report


def remove(*, nss_dbs: list[Path] | None = None, system: bool | None = None,
           run_as: RunAs | None = None) -> TrustReport:
    report = TrustReport()
    explicit = nss_dbs is not None
    if _certutil() is not None:
        for db in nss_dbs if explicit else default_nss_databases(run_as.home if run_as else None):
            _nss_remove(db, report, run_as)
    if system or (system is None and not explicit):
        _linux_system_remove(report)
    if not report.lines:
        report.note("nothing to remove")
    return report


def status(ca_pem: Path, *, nss_dbs: list[Path] | None = None, run_as: RunAs | None = None) -> TrustReport:
    """What trusts the CA; `report.trusted` counts the stores (0 when there is no CA yet)."""
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
            for db in nss_dbs if nss_dbs is not None else default_nss_databases(run_as.home if run_as else None):
                present = bool(nss_trusts(db, ca, run_as))
                report.trusted += present
                report.note(f"  {'trusted' if present else 'not trusted'} in NSS database {db}")
        installed = system_store_trusts(ca)
        report.trusted += installed
        report.note(f"  {'trusted' if installed else 'not trusted'} in the system store")
    else:
        in_user_store = user_store_trusts(ca)
        report.trusted += bool(in_user_store)
        state = {True: "trusted", False: "not trusted", None: "cannot tell whether it is trusted"}[in_user_store]
        report.note(f"  {state} in the user's certificate store")
    if not report.trusted:
        report.note("not trusted anywhere: run `eimzo-agent trust install`")
    return report


def nss_trusts(db: Path, ca: x509.Certificate, run_as: RunAs | None = None) -> bool | None:
    """Does the NSS database `db` trust `ca` (this CA, not an earlier one) for TLS servers? None: cannot tell
    (certutil missing, or the database does not open)."""
    if _certutil() is None:
        return None
    if not (db / "cert9.db").exists():
        return False
    listing = _run([_certutil() or "certutil", "-L", "-d", f"sql:{db}"], run_as)
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
