"""Development registration authority: issue a certificate for a PKCS#10 request from the development CAs.

This is the CA side of E-IMZO's "get a key online" flow (`pki.enroll_pfx_step1` makes the request,
`pki.enroll_pfx_step2` stores what comes back), for tests and the demo portal. O'zDSt/OZMST requests are issued by
the dev O'zDSt CA (`ozdst_ca`, `<ca folder>/ozdst/`), RSA/EC requests by the dev CA (`mint`). Both dev CAs are a
single self-signed root, so the "CA" and "root" certificates of E-IMZO's three-certificate reply are the same
certificate. The subject is copied byte for byte (portals and CAs compare the DN exactly), and so are the certificate
policies the request asks for. Never use any of this for anything real.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import core
from asn1crypto import csr as asn1_csr
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..crypto.ozdst_keys import is_ozdst_key_oid, parse_spki
from ..crypto.x509_info import AlgorithmError, verify_signature
from .common import BACKDATE, utc_now
from .mint import DevCa, end_entity_builder, ensure_dev_ca
from .ozdst_ca import ensure_ozdst_ca, issue_certificate

__all__ = ["CsrError", "IssuedChain", "issue_for_csr"]

# asn1crypto parses lazily and reports malformed input with any of these.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class CsrError(ValueError):
    """The request cannot be issued: malformed, badly signed, or for a key the dev CAs do not handle."""


@dataclass(frozen=True)
class IssuedChain:
    """What a CA hands back, as DER: the new certificate, the issuing CA and the root (the same dev CA here)."""

    subject: bytes
    ca: bytes
    root: bytes


def issue_for_csr(ca_dir: Path, csr_der: bytes, *, days: int = 365) -> IssuedChain:
    """Check the request's own signature, then issue it from the dev CA matching its key; CsrError if refused.

    The CA folders are created on first use, as `eimzo-agent dev mint-key` does.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    request = _parse(csr_der)
    info = request["certification_request_info"]
    spki = info["subject_pk_info"].dump()
    key_oid = _key_oid(spki)
    _check_signature(request, spki)
    now = utc_now()
    not_before, not_after = now - BACKDATE, now + datetime.timedelta(days=days)
    policies = _requested_policies(info)
    if is_ozdst_key_oid(key_oid):
        return _issue_ozdst(Path(ca_dir), info, spki, policies, not_before, not_after)
    return _issue_international(ensure_dev_ca(Path(ca_dir)), csr_der, info, policies, not_before, not_after)


def _parse(csr_der: bytes) -> asn1_csr.CertificationRequest:
    try:
        request = asn1_csr.CertificationRequest.load(csr_der, strict=True)
        # Touch every part now, so malformed input fails here and not half-way through issuing.
        request["certification_request_info"]["subject"].dump()
        _key_oid(request["certification_request_info"]["subject_pk_info"].dump())
        request["signature_algorithm"]["algorithm"].dotted  # noqa: B018
        request["signature"].native  # noqa: B018
    except _ASN1_ERRORS as exc:
        raise CsrError(f"not a PKCS#10 certificate request: {exc}") from exc
    return request


def _key_oid(spki: bytes) -> str:
    """The key algorithm OID, read generically: asn1crypto's key classes raise KeyError on the national OIDs."""
    algorithm = core.Sequence.load(core.Sequence.load(spki, strict=True)[0].dump(), strict=True)
    oid = algorithm[0]
    if not isinstance(oid, core.ObjectIdentifier):
        raise ValueError("the public key's algorithm is not an OID")
    return oid.dotted


def _check_signature(request: asn1_csr.CertificationRequest, spki: bytes) -> None:
    """Proof of possession: the request must be signed by the key it asks a certificate for."""
    signature_oid = request["signature_algorithm"]["algorithm"].dotted
    try:
        valid = verify_signature(
            spki, signature_oid, request["certification_request_info"].dump(), request["signature"].native
        )
    except AlgorithmError as exc:
        raise CsrError(f"the request's signature cannot be checked: {exc}") from exc
    if not valid:
        raise CsrError("the request's signature does not verify with its own public key")


def _requested_policies(info: asn1_csr.CertificationRequestInfo) -> asn1_x509.Extension | None:
    """The certificatePolicies extension from the request's extensionRequest attribute, as requested."""
    try:
        for attribute in info["attributes"]:
            if attribute["type"].native != "extension_request":
                continue
            for extensions in attribute["values"]:
                for extension in extensions:
                    if extension["extn_id"].native == "certificate_policies":
                        return asn1_x509.Extension.load(extension.dump())
    except _ASN1_ERRORS as exc:
        raise CsrError(f"the request's extensions are malformed: {exc}") from exc
    return None


def _issue_ozdst(ca_dir: Path, info: asn1_csr.CertificationRequestInfo, spki: bytes,
                 policies: asn1_x509.Extension | None, not_before: datetime.datetime,
                 not_after: datetime.datetime) -> IssuedChain:
    try:
        public = parse_spki(spki)
    except ValueError as exc:
        raise CsrError(f"the request's public key is unusable: {exc}") from exc
    ca = ensure_ozdst_ca(ca_dir)
    subject = asn1_x509.Name.load(info["subject"].dump())
    extra = [policies] if policies is not None else []
    cert = issue_certificate(ca, public, subject, not_before, not_after, extra)
    root = ca.certificate.dump()
    return IssuedChain(cert.dump(), root, root)


def _issue_international(ca: DevCa, csr_der: bytes, info: asn1_csr.CertificationRequestInfo,
                         policies: asn1_x509.Extension | None, not_before: datetime.datetime,
                         not_after: datetime.datetime) -> IssuedChain:
    try:
        request = x509.load_der_x509_csr(csr_der)
        public_key = request.public_key()
    except (ValueError, TypeError) as exc:
        raise CsrError(f"the request's public key is unusable: {exc}") from exc
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CsrError("the dev CA issues only RSA, EC and O'zDSt keys")  # the signature check refuses others first
    builder = end_entity_builder(ca, public_key, request.subject, not_before, not_after)
    if policies is not None:
        builder = builder.add_extension(_policies_from(request), critical=bool(policies["critical"].native))
    cert = builder.sign(ca.private_key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    if asn1_x509.Certificate.load(der)["tbs_certificate"]["subject"].dump() != info["subject"].dump():
        # cryptography re-encodes the name; it keeps string types, but a CA that alters the DN is worse than none.
        raise CsrError("the subject could not be copied exactly")
    root = ca.certificate.public_bytes(serialization.Encoding.DER)
    return IssuedChain(der, root, root)


def _policies_from(request: x509.CertificateSigningRequest) -> x509.CertificatePolicies:
    return request.extensions.get_extension_for_class(x509.CertificatePolicies).value


def _policies_from(request: x509.CertificateSigningRequest) -> x509.CertificatePolicies:
    return request.extensions.get_extension_for_class(x509.CertificatePolicies).value


def _end_entity_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
