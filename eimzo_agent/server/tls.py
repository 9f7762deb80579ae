"""The agent's TLS identity for wss://127.0.0.1:64443: a per-install CA whose private key never exists on disk.

E-IMZO ships one vendor CA to every install (and NCALayer the very same server key). We do as Fortify does: on
first start we create a local CA, let it sign one server certificate, and throw the CA's private key away before
anything is written. The CA is name-constrained to 127.0.0.1 and localhost, so even a stolen CA certificate
cannot vouch for any other site — and with its key gone, it cannot vouch for anything new at all. When the
server certificate nears its end a whole new CA is made (the old one is taken out of the trust stores by
`eimzo-agent trust install`, which installs the current one and removes earlier ones). Damaged identity files are
replaced the same way; files that cannot be read at all are an error, never a reason to start over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

from ..fsutil import write_atomically
from ..lazy_module import lazy_module

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import oid
else:  # imported only to make a new identity (first start, yearly renewal): see lazy_module and `_parse`
    x509 = lazy_module("cryptography.x509")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    oid = lazy_module("cryptography.x509.oid")

log = logging.getLogger(__name__)

CA_FILE = "ca.crt.pem"
CERT_FILE = "server.crt.pem"
KEY_FILE = "server.key.pem"
#: Earlier CA certificates, kept so `trust` can remove them from the stores they were installed in.
RETIRED_DIR = "retired"

LEAF_DAYS = 365
#: Renew this long before the server certificate expires, so a browser never meets an expired one.
RENEW_BEFORE = dt.timedelta(days=30)
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
#: The identity's files are a few hundred bytes; anything much bigger is not ours.
MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class TlsIdentity:
    """The identity's certificates as DER; `cryptography` objects of them only on request (trust, doctor, tests)."""

    directory: Path
    ca_der: bytes
    server_der: bytes
    server_not_after: dt.datetime

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_FILE

    @property
    def cert_path(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def ca_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.ca_der)

    @property
    def server_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.server_der)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # A password callback, so that an encrypted key (never ours) fails here instead of OpenSSL asking for its
        # password on the terminal and the agent's start waiting for it.
        context.load_cert_chain(self.cert_path, self.key_path, password=_no_password)
        return context

    def fingerprint(self) -> str:
        return hashlib.sha256(self.ca_der).digest().hex(":").upper()


def _no_password() -> bytes:
    return b""


class TlsIdentityError(OSError):
    """The identity's files exist but cannot be read (permissions, I/O): they are never replaced silently."""


class _BadIdentity(Exception):
    """The files were read, but do not make an identity: unparseable, half missing, or not belonging together."""


def ensure_identity(directory: Path, now: dt.datetime | None = None) -> TlsIdentity:
    """Load the identity, or make a new one when there is none or the server certificate is about to expire.

    Files that were read but are damaged, half missing or do not belong together are replaced too, with the old
    CA certificate (if still readable) retired as on renewal, so `trust install` takes it out of the stores.
    Files that cannot be read at all raise TlsIdentityError (an OSError) and are left as they are: a permission
    or disk problem must not cost every browser its trust in the agent.
    """
    now = now or dt.datetime.now(dt.UTC)
    files = {name: _read(directory / name) for name in (CA_FILE, CERT_FILE, KEY_FILE)}
    if all(content is None for content in files.values()):
        return _create(directory, now)
    try:
        existing = _parse(directory, files)
    except _BadIdentity as exc:
        old_ca = _certificate(files[CA_FILE])
        if old_ca is not None:
            _retire(directory, old_ca[0])
        log.warning("the TLS identity in %s is unusable (%s): made a new local CA; run `eimzo-agent trust install`",
                    directory, exc)
        return _create(directory, now)
    if existing.server_not_after - RENEW_BEFORE > now:
        return existing
    _retire(directory, existing.ca_der)
    log.info("TLS certificate for 127.0.0.1 expires soon: made a new local CA; run `eimzo-agent trust install`")
    return _create(directory, now)


def _read(path: Path) -> bytes | None:
    """The file's bytes; None when it does not exist; TlsIdentityError when it exists but cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TlsIdentityError(f"cannot read the TLS identity file {path}: {exc.strerror or exc}") from exc


def _parse(directory: Path, files: dict[str, bytes | None]) -> TlsIdentity:
    """Check the identity with the ssl module alone, so that an agent start does not load `cryptography`.

    The check is what a browser that trusts our CA does: the server's key and certificate make an SSLContext
    (OpenSSL refuses a key that does not belong to the certificate), and a client trusting only our CA completes
    a TLS handshake with it in memory for 127.0.0.1 (chain, signature, validity, name constraints, key usage).
    """
    missing = [name for name, content in files.items() if content is None]
    if missing:
        raise _BadIdentity(f"{', '.join(missing)} missing")
    oversized = [name for name, content in files.items() if content is not None and len(content) > MAX_FILE_BYTES]
    if oversized:
        raise _BadIdentity(f"{', '.join(oversized)} too large")
    ca, leaf = _certificate(files[CA_FILE]), _certificate(files[CERT_FILE])
    if ca is None or leaf is None:
        raise _BadIdentity("a certificate does not parse")
    (ca_der, _), (leaf_der, not_after) = ca, leaf
    identity = TlsIdentity(directory, ca_der, leaf_der, not_after)
    try:
        server = identity.ssl_context()
    except ssl.SSLError as exc:
        raise _BadIdentity(f"the server key does not parse or does not belong to the certificate: {exc}") from exc
    problem = _handshake_problem(server, ssl.DER_cert_to_PEM_cert(ca_der))
    if problem:
        raise _BadIdentity(f"a client trusting the CA refuses the server certificate: {problem}")
    return identity


def _handshake_problem(server: ssl.SSLContext, ca_pem: str) -> str | None:
    """Why a client trusting only `ca_pem` refuses `server` for 127.0.0.1, or None when the handshake completes."""
    try:
        client = ssl.create_default_context(cadata=ca_pem)  # with cadata it loads no system roots
    except ssl.SSLError as exc:
        return f"the CA certificate is not usable: {exc}"
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    client_end = client.wrap_bio(pipes[0], pipes[1], server_hostname=str(LOOPBACK))
    server_end = server.wrap_bio(pipes[2], pipes[3], server_side=True)
    done = {"client": False, "server": False}
    for _ in range(8):  # TLS 1.3 takes 2 round trips, 1.2 a few more
        for name, end in (("client", client_end), ("server", server_end)):
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_message or str(exc)
            except ssl.SSLError as exc:
                return str(exc)
        pipes[2].write(pipes[1].read())  # client -> server
        pipes[0].write(pipes[3].read())  # server -> client
        if all(done.values()):
            return None
    return "the handshake did not complete"


def _certificate(data: bytes | None) -> tuple[bytes, dt.datetime] | None:
    """The DER and notAfter of a PEM certificate file, None when it is not one."""
    if data is None or len(data) > MAX_FILE_BYTES:
        return None
    try:
        kind, _, der = pem.unarmor(data)
        if kind != "CERTIFICATE":
            return None
        certificate = asn1_x509.Certificate.load(der)
        certificate["tbs_certificate"]["subject"].native  # noqa: B018 - parse it now, not later
        return der, certificate.not_valid_after
    except (ValueError, TypeError, KeyError):
        return None


def _create(directory: Path, now: dt.datetime) -> TlsIdentity:
    """Make a new identity in a short-lived child process when one can be started, else here.

    Why a child: making keys and certificates needs `cryptography`, which would then stay loaded (8 MB resident)
    in an agent that otherwise never needs it until the first signature; the identity is checked by `_parse`
    either way.
    """
    if _create_in_child(directory, now):
        try:
            return _parse(directory, {name: _read(directory / name) for name in (CA_FILE, CERT_FILE, KEY_FILE)})
        except _BadIdentity as exc:
            log.warning("the TLS identity made by a helper process is unusable (%s); making it here", exc)
    return _create_here(directory, now)


def _create_in_child(directory: Path, now: dt.datetime) -> bool:
    if getattr(sys, "frozen", False):  # a frozen build's executable is the agent itself, not a Python
        return False
    command = [sys.executable, "-m", __name__, "create", str(directory), now.isoformat()]
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window flashing up
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                              check=False, creationflags=flags)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("could not start a helper process for the TLS identity: %s", exc)
        return False
    if done.returncode != 0:
        log.debug("the TLS identity helper failed (%s): %s", done.returncode, done.stderr.strip()[-2000:])
        return False
    log.info("made a new local CA for wss://127.0.0.1 (its private key was discarded)")
    return True


def _create_here(directory: Path, now: dt.datetime) -> TlsIdentity:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=LEAF_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())  # lives only in this function's memory
    ca_name = x509.Name(
        [
            x509.NameAttribute(oid.NameOID.COMMON_NAME, f"eimzo-agent local CA ({os.environ.get('USER', 'user')})"),
            x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, "eimzo-agent"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.IPAddress(ipaddress.IPv4Network("127.0.0.1/32")),
                    x509.DNSName("localhost"),
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK), x509.DNSName("localhost")]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    del ca_key  # the CA can never sign again: nothing else references the key

    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(directory / KEY_FILE, key_pem, 0o600)
    _write(directory / CERT_FILE, leaf.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(directory / CA_FILE, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("made a new local CA for wss://127.0.0.1 (its private key was discarded)")
    encoding = serialization.Encoding.DER
    return TlsIdentity(directory, ca.public_bytes(encoding), leaf.public_bytes(encoding), leaf.not_valid_after_utc)


def _retire(directory: Path, ca_der: bytes) -> None:
    retired = directory / RETIRED_DIR
    retired.mkdir(exist_ok=True, mode=0o700)
    name = hashlib.sha256(ca_der).hexdigest()[:16] + ".crt.pem"
    _write(retired / name, ssl.DER_cert_to_PEM_cert(ca_der).encode("ascii"), 0o644)


def retired_cas(directory: Path) -> list[x509.Certificate]:
    found = []
    for path in sorted((directory / RETIRED_DIR).glob("*.crt.pem")):
        try:
            found.append(x509.load_pem_x509_certificate(path.read_bytes()))
        except (OSError, ValueError):
            continue
    return found


def _write(path: Path, data: bytes, mode: int) -> None:
    write_atomically(path, data, mode=mode)


if __name__ == "__main__":  # `python -m eimzo_agent.server.tls create DIR NOW`: the helper process of `_create`
    if len(sys.argv) != 4 or sys.argv[1] != "create":
        sys.exit("usage: python -m eimzo_agent.server.tls create DIRECTORY ISO-TIME")
    _create_here(Path(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3]))
