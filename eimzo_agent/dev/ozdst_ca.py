"""Development O'zDSt CA and test keys with national-algorithm keys, for `eimzo-agent dev mint-key --alg ozdst`.

`cryptography` can neither make nor sign O'zDSt certificates, so they are built with asn1crypto and signed here:
the TBS is hashed with GOST R 34.11-94, the signature BIT STRING is s||r and the AlgorithmIdentifier is
{1.2.860.3.15.1.1.2.2.2.2, NULL} — the layout of the real national root and of E-IMZO user certificates.
User certificates get the subject layout (`subject.SubjectFields`) and extensions `mint.mint_key` gives RSA/P-256
test keys, so the same aliases come out. The CA lives in `<dev CA folder>/ozdst/`. Never use any of this for anything
real.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos, core, pem
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509

from ..crypto import ozdst
from ..crypto.ozdst_keys import OzdstPrivateKey, OzdstPublicKey, certificate_public_key, load_pkcs8
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
from .subject import SubjectFields

OZDST_CA_COMMON_NAME = "eimzo-agent dev O'zDSt CA"
OZDST_SUBDIR = "ozdst"

# UTCTime covers 1950..2049; RFC 5280 §4.1.2.5 wants GeneralizedTime from 2050 on.
_UTC_TIME_LIMIT = datetime.datetime(2050, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class OzdstCa:
    """The development O'zDSt CA: its folder, certificate and private key (curve CryptoPro-A)."""

    directory: Path
    certificate: asn1_x509.Certificate
    private_key: OzdstPrivateKey

    @property
    def cert_pem_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def key_pem_path(self) -> Path:
        return self.directory / CA_KEY_FILE


def ensure_ozdst_ca(ca_directory: Path) -> OzdstCa:
    """Load the O'zDSt CA from `<ca_directory>/ozdst/`, creating it (folder 0700, files 0600) the first time."""
    directory = Path(ca_directory) / OZDST_SUBDIR
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return _load_ca(directory)
    if cert_path.exists() or key_path.exists():
        raise missing_half(cert_path, key_path)
    make_private_directory(directory)
    key = OzdstPrivateKey.generate(ozdst.CRYPTOPRO_A)
    cert = _ca_certificate(key)
    # Key first: a crash in between leaves a key without certificate, which the check above reports.
    write_ca_file(key_path, pem.armor("PRIVATE KEY", key.pkcs8_der()))
    write_ca_file(cert_path, pem.armor("CERTIFICATE", cert.dump()))
    return OzdstCa(directory, cert, key)


def _load_ca(directory: Path) -> OzdstCa:
    cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    try:
        cert = asn1_x509.Certificate.load(_unarmor(cert_path, "CERTIFICATE"), strict=True)
        public = certificate_public_key(cert)
        key = load_pkcs8(_unarmor(key_path, "PRIVATE KEY"), public)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        detail = f"O'zDSt dev CA files in {directory} are unreadable: {exc}"
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, detail) from exc
    if key.curve != public.curve or key.public_point != public.point:
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, f"{key_path} does not belong to {cert_path}")
    return OzdstCa(directory, cert, key)


def _unarmor(path: Path, label: str) -> bytes:
    kind, _, der = pem.unarmor(path.read_bytes())
    if kind != label:
        raise ValueError(f"{path.name} holds a {kind}, not a {label}")
    return der


# --------------------------------------------------------------------------------------------------------------
# Certificates


def _ca_certificate(key: OzdstPrivateKey) -> asn1_x509.Certificate:
    name = asn1_x509.Name.build({"common_name": OZDST_CA_COMMON_NAME})
    now = utc_now()
    public = key.public_key()
    extensions = [
        _extension("basic_constraints", {"ca": True, "path_len_constraint": 0}, critical=True),
        _extension("key_usage", {"key_cert_sign", "crl_sign"}, critical=True),
        _extension("key_identifier", _key_identifier(public)),
    ]
    tbs = _tbs(name, name, public, now - BACKDATE, add_years(now, 10), extensions)
    return _sign(tbs, key)


def issue_certificate(ca: OzdstCa, public: OzdstPublicKey, subject: asn1_x509.Name,
                      not_before: datetime.datetime, not_after: datetime.datetime,
                      extra_extensions: Sequence[asn1_x509.Extension] = ()) -> asn1_x509.Certificate:
    """An end-entity certificate for `public`, with the extensions `mint.mint_key` gives its test keys.

    `extra_extensions` (e.g. certificate policies a CSR requests, for `dev.registration`) are added as given."""
    ca_key_id = ca.certificate.key_identifier
    extensions = [
        _extension("key_usage", {"digital_signature", "non_repudiation"}, critical=True),
        _extension("basic_constraints", {"ca": False}, critical=True),
        _extension("key_identifier", _key_identifier(public)),
        _extension("authority_key_identifier", {"key_identifier": ca_key_id}),
        *extra_extensions,
    ]
    tbs = _tbs(ca.certificate.subject, subject, public, not_before, not_after, extensions)
    return _sign(tbs, ca.private_key)


def ozdst_pfx(ca: OzdstCa, subject: SubjectFields, not_before: datetime.datetime, not_after: datetime.datetime,
              password: str, *, curve: ozdst.Curve = ozdst.CRYPTOPRO_A,
              extra_extensions: Sequence[asn1_x509.Extension] = ()) -> bytes:
    """A new key on `curve`, its certificate from `ca`, as an E-IMZO-style .pfx (alias in the friendlyName)."""
    key = OzdstPrivateKey.generate(curve)
    name = asn1_x509.Name.load(subject.x509_name().public_bytes())
    cert = issue_certificate(ca, key.public_key(), name, not_before, not_after, extra_extensions)
    return serialize_pfx(key, cert, [ca.certificate], password, build_alias(cert))


def revocation_extensions(ocsp_url: str | None, crl_url: str | None) -> list[asn1_x509.Extension]:
    """Authority Information Access (id-ad-ocsp) and CRL Distribution Points naming the given URLs, for
    `issue_certificate`'s `extra_extensions` (the dev responder `dev.ocsp` answers at such URLs)."""
    def uri(url: str) -> asn1_x509.GeneralName:
        return asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)

    extensions = []
    if ocsp_url:
        extensions.append(_extension("authority_information_access",
                                     [{"access_method": "ocsp", "access_location": uri(ocsp_url)}]))
    if crl_url:
        point = asn1_x509.DistributionPointName(name="full_name", value=[uri(crl_url)])
        extensions.append(_extension("crl_distribution_points", [{"distribution_point": point}]))
    return extensions


def _tbs(issuer: asn1_x509.Name, subject: asn1_x509.Name, public: OzdstPublicKey, not_before: datetime.datetime,
         not_after: datetime.datetime, extensions: list[asn1_x509.Extension]) -> asn1_x509.TbsCertificate:
    return asn1_x509.TbsCertificate(
        {
            "version": "v3",
            # Like cryptography's random_serial_number: 159 random bits, positive, unique in practice.
            "serial_number": int.from_bytes(os.urandom(20), "big") >> 1,
            "signature": _signature_algorithm(),
            "issuer": issuer,
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": subject,
            # Loaded as-is: asn1crypto's key classes would choke on the national OIDs if asked to encode them.
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(public.spki_der()),
            "extensions": extensions,
        }
    )


def _sign(tbs: asn1_x509.TbsCertificate, key: OzdstPrivateKey) -> asn1_x509.Certificate:
    return asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": _signature_algorithm(),
            "signature_value": key.sign(tbs.dump()),
        }
    )


def _signature_algorithm() -> algos.SignedDigestAlgorithm:
    # E-IMZO and the national root write an explicit NULL; asn1crypto drops None, so pass core.Null().
    return algos.SignedDigestAlgorithm({"algorithm": "1.2.860.3.15.1.1.2.2.2.2", "parameters": core.Null()})


def _extension(name: str, value: object, *, critical: bool = False) -> asn1_x509.Extension:
    return asn1_x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def _key_identifier(public: OzdstPublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value."""
    return hashlib.sha1(public.subject_public_key()).digest()  # noqa: S324 - an identifier, not a security function


def _time(moment: datetime.datetime) -> asn1_x509.Time:
    moment = moment.astimezone(datetime.UTC).replace(microsecond=0)
    return asn1_x509.Time(name="utc_time" if moment < _UTC_TIME_LIMIT else "general_time", value=moment)
