"""Development CA and E-IMZO-style test keys, for tests, demos and `eimzo-agent dev mint-key`.

Real E-IMZO keys carry O'zDSt (GOST-like) keys that only the national backend can use; these keys are RSA,
P-256 or (`alg="ozdst"`, see `ozdst_ca`) O'zDSt, and otherwise look like the real thing: the same subject
attributes, the same alias in the friendlyName, the same legacy PKCS#12 encryption and E-IMZO-style file names.
Never use them for anything real.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ..keys.alias import build_alias
from ..keys.errors import KeyErrorKind, KeyStoreError
from ..keys.pkcs12 import serialize_pfx
from .common import (
    BACKDATE,
    CA_CERT_FILE,
    CA_KEY_FILE,
    add_years,
    make_private_directory,
    missing_half,
    utc_now,
    write_ca_file,
)
from .ozdst_ca import ensure_ozdst_ca, ozdst_pfx, revocation_extensions
from .subject import SubjectFields

__all__ = ["CA_CERT_FILE", "CA_KEY_FILE", "DevCa", "SubjectFields", "ensure_dev_ca", "mint_key"]

CA_COMMON_NAME = "eimzo-agent dev CA"

_FILE_STEM = re.compile(r"[A-Za-z0-9_-]{1,64}")

Algorithm = Literal["rsa2048", "p256", "ozdst"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class DevCa:
    """The development CA: its folder, certificate and private key."""

    directory: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def key_pem_path(self) -> Path:
        return self.directory / CA_KEY_FILE


def ensure_dev_ca(directory: Path) -> DevCa:
    """Load the dev CA from `directory`, creating it (and the folder, mode 0700) the first time."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return _load_ca(directory)
    if cert_path.exists() or key_path.exists():
        raise missing_half(cert_path, key_path)
    make_private_directory(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _ca_certificate(key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Key first: a crash in between leaves a key without certificate, which the check above reports.
    write_ca_file(key_path, key_pem)
    write_ca_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return DevCa(directory, cert, key)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = utc_now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(add_years(now, 10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _load_ca(directory: Path) -> DevCa:
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        detail = f"dev CA files in {directory} are unreadable: {exc}"
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"{key_path} is not an EC key")
    if _public_der(key) != cert.public_key().public_bytes(*_SPKI):
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, f"{key_path} does not belong to {cert_path}")
    return DevCa(directory, cert, key)


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(*_SPKI)


def _key_usage(*, digital_signature: bool = False, content_commitment: bool = False,
               key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    """Naive datetimes are taken as UTC, as `cryptography` does."""
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment


def mint_key(ca: DevCa, out_dir: Path, *, password: str, subject: SubjectFields, alg: Algorithm = "rsa2048",
             valid_from: datetime.datetime | None = None, valid_to: datetime.datetime | None = None,
             file_name: str | None = None, ocsp_url: str | None = None, crl_url: str | None = None) -> Path:
    """Issue a test key from the dev CA and write it as an E-IMZO-style .pfx into `out_dir`; return its path.

    `alg="ozdst"` issues a national O'zDSt key (curve CryptoPro-A) from the dev O'zDSt CA in `<ca folder>/ozdst/`
    (see `ozdst_ca`), with the same subject, alias and file naming. `ocsp_url` / `crl_url` go into the
    certificate's Authority Information Access (id-ad-ocsp) and CRL Distribution Points, for revocation checks.
    Raises ValueError for malformed input and KeyStoreError(FILE_EXISTS) rather than overwrite a file.
    """
    subject.validate()
    if not password:
        raise ValueError("the password must not be empty")
    not_before, not_after = _validity(valid_from, valid_to)
    stem = _file_stem(file_name)
    for url in (ocsp_url, crl_url):
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"revocation URLs must be http:// or https:// URLs, got {url!r}")
    if alg == "ozdst":
        data = ozdst_pfx(ensure_ozdst_ca(ca.directory), subject, not_before, not_after, password,
                         extra_extensions=revocation_extensions(ocsp_url, crl_url))
    else:
        key = _generate_key(alg)
        cert = _issue(ca, key, subject.x509_name(), not_before, not_after, ocsp_url, crl_url)
        alias = build_alias(asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))
        data = serialize_pfx(key, cert, [ca.certificate], password, alias)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.pfx" if stem else _next_free_name(out_dir, subject.file_id())
    _write_new_file(path, data)
    return path


def _validity(valid_from: datetime.datetime | None,
              valid_to: datetime.datetime | None) -> tuple[datetime.datetime, datetime.datetime]:
    now = utc_now()
    not_before = _as_utc(valid_from) if valid_from else now - BACKDATE
    not_after = _as_utc(valid_to) if valid_to else add_years(now, 2)
    if not_after <= not_before:
        raise ValueError("valid_to must be later than valid_from")
    return not_before, not_after


def _file_stem(file_name: str | None) -> str | None:
    if file_name is None:
        return None
    stem = file_name[:-4] if file_name.lower().endswith(".pfx") else file_name
    if not _FILE_STEM.fullmatch(stem):
        raise ValueError(f"file name may hold only letters, digits, '_' and '-', got {file_name!r}")
    return stem


def _generate_key(alg: Algorithm) -> PrivateKey:
    if alg == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key algorithm {alg!r} (choose rsa2048, p256 or ozdst)")


def _issue(ca: DevCa, key: PrivateKey, subject: x509.Name, not_before: datetime.datetime,
           not_after: datetime.datetime, ocsp_url: str | None = None, crl_url: str | None = None) -> x509.Certificate:
    builder = end_entity_builder(ca, key.public_key(), subject, not_before, not_after)
    if ocsp_url:
        ocsp = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([ocsp]), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())


def end_entity_builder(ca: DevCa, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, subject: x509.Name,
                       not_before: datetime.datetime, not_after: datetime.datetime) -> x509.CertificateBuilder:
    """A signing certificate of the dev CA, to be signed with `ca.private_key` (dev.registration adds the
    policies a request asked for)."""
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # No extended key usage: `openssl cms -verify` then accepts the signer without -purpose any.
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )


def _next_free_name(out_dir: Path, file_id: str) -> Path:
    """E-IMZO style: DS<PINFL|TIN><0001..9999>.pfx, the first free number (names compared ignoring case)."""
    prefix = f"DS{file_id}" if file_id else "DSKEY"
    taken = {entry.name.lower() for entry in out_dir.iterdir()}
    for number in range(1, 10_000):
        name = f"{prefix}{number:04d}.pfx"
        if name.lower() not in taken:
            return out_dir / name
    detail = f"all key file names {prefix}0001..9999 are taken in {out_dir}"
    raise KeyStoreError(KeyErrorKind.FILE_EXISTS, detail)


def _write_new_file(path: Path, data: bytes) -> None:
    """Create `path` exclusively (never overwrite; no window between the check and the write), mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeyStoreError(KeyErrorKind.FILE_EXISTS, f"{path} already exists") from exc
    except OSError as exc:
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot create {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyStoreError(KeyErrorKind.WRITE_FAILED, f"cannot write {path}: {exc}") from exc
