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
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..fsutil import write_atomically

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
    directory: Path
    ca_certificate: x509.Certificate
    server_certificate: x509.Certificate

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_FILE

    @property
    def cert_path(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_FILE

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def fingerprint(self) -> str:
        return self.ca_certificate.fingerprint(hashes.SHA256()).hex(":").upper()


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
        old_ca = _parse_certificate(files[CA_FILE])
        if old_ca is not None:
            _retire(directory, old_ca)
        log.warning("the TLS identity in %s is unusable (%s): made a new local CA; run `eimzo-agent trust install`",
                    directory, exc)
        return _create(directory, now)
    if existing.server_certificate.not_valid_after_utc - RENEW_BEFORE > now:
        return existing
    _retire(directory, existing.ca_certificate)
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
    missing = [name for name, content in files.items() if content is None]
    if missing:
        raise _BadIdentity(f"{', '.join(missing)} missing")
    oversized = [name for name, content in files.items() if content is not None and len(content) > MAX_FILE_BYTES]
    if oversized:
        raise _BadIdentity(f"{', '.join(oversized)} too large")
    ca, leaf = _parse_certificate(files[CA_FILE]), _parse_certificate(files[CERT_FILE])
    if ca is None or leaf is None:
        raise _BadIdentity("a certificate does not parse")
    try:
        key = serialization.load_pem_private_key(files[KEY_FILE] or b"", None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _BadIdentity(f"the server key does not parse: {exc}") from exc
    if key.public_key() != leaf.public_key():
        raise _BadIdentity("the server key does not belong to the server certificate")
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise _BadIdentity("the server certificate was not issued by the CA") from exc
    return TlsIdentity(directory, ca, leaf)


def _parse_certificate(data: bytes | None) -> x509.Certificate | None:
    if data is None or len(data) > MAX_FILE_BYTES:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def _create(directory: Path, now: dt.datetime) -> TlsIdentity:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=LEAF_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())  # lives only in this function's memory
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"eimzo-agent local CA ({os.environ.get('USER', 'user')})"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eimzo-agent"),
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
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
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
    return TlsIdentity(directory, ca, leaf)


def _retire(directory: Path, ca: x509.Certificate) -> None:
    retired = directory / RETIRED_DIR
    retired.mkdir(exist_ok=True, mode=0o700)
    name = ca.fingerprint(hashes.SHA256()).hex()[:16] + ".crt.pem"
    _write(retired / name, ca.public_bytes(serialization.Encoding.PEM), 0o644)


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
