"""Development RFC 3161 time-stamp authority, for tests, demos and `eimzo-agent dev tsa`.

Plays the vendor's TSA (http://test.e-imzo.uz/cams/tst) locally: RFC 3161 over HTTP (POST
application/timestamp-query, answer application/timestamp-reply), signing with an RSA-2048 key issued by the dev
CA (`mint`) or an O'zDSt key issued by the dev O'zDSt CA (`ozdst_ca`). The TSA key and certificate are made once in
the CA folder and reused. Runs on the standard library's threading HTTP server: no dependency for a dev tool.
Never use it for anything real.
"""

from __future__ import annotations

import datetime
import http.server
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asn1crypto import algos, core, pem, tsp
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..crypto import cms
from ..crypto.ozdst import CRYPTOPRO_A
from ..crypto.ozdst_keys import OZDST, OZMST, OzdstPrivateKey, OzdstSigner, load_pkcs8
from ..crypto.signer import CryptographySigner, Signer
from ..crypto.timestamp import TimeStampResponse
from ..keys.errors import KeyErrorKind, KeyStoreError
from .common import (
    BACKDATE,
    SmallBodyHandler,
    add_years,
    make_private_directory,
    missing_half,
    serve_in_background,
    utc_now,
    write_ca_file,
)
from .mint import DevCa, ensure_dev_ca
from .ozdst_ca import ensure_ozdst_ca, issue_certificate

__all__ = [
    "DEFAULT_POLICY",
    "TSA_CERT_FILE",
    "TSA_KEY_FILE",
    "TsaAlgorithm",
    "TsaIdentity",
    "TsaService",
    "ensure_tsa",
    "start_tsa",
]

log = logging.getLogger(__name__)

TsaAlgorithm = Literal["rsa2048", "ozdst"]

#: The vendor's test TSA policy (E-IMZO-server manual's example token).
DEFAULT_POLICY = "1.2.860.3.2.11.1"
TSA_CERT_FILE = "tsa.crt.pem"
TSA_KEY_FILE = "tsa.key.pem"
TSA_COMMON_NAME = "eimzo-agent dev TSA"

#: A request is a few hundred bytes; anything much larger is not one.
MAX_REQUEST_BYTES = 64 * 1024

#: Imprint algorithms accepted, with their digest lengths.
_IMPRINT_LENGTHS = {
    "2.16.840.1.101.3.4.2.1": 32,
    "2.16.840.1.101.3.4.2.2": 48,
    "2.16.840.1.101.3.4.2.3": 64,
    OZDST.digest_oid: 32,
    OZMST.digest_oid: 32,
}


@dataclass(frozen=True)
class TsaIdentity:
    """The TSA's signer (key + certificate) and the CA certificate that issued it."""

    signer: Signer
    certificate: asn1_x509.Certificate
    ca_certificate: asn1_x509.Certificate
    directory: Path

    @property
    def cert_pem_path(self) -> Path:
        return self.directory / TSA_CERT_FILE


def ensure_tsa(ca_directory: Path, alg: TsaAlgorithm = "rsa2048") -> TsaIdentity:
    """Load the TSA key of `alg` from `<ca>/tsa-<alg>/`, issuing it from the matching dev CA the first time."""
    if alg not in ("rsa2048", "ozdst"):
        raise ValueError(f"unknown TSA key algorithm {alg!r} (choose rsa2048 or ozdst)")
    ca_directory = Path(ca_directory)
    directory = ca_directory / f"tsa-{alg}"
    cert_path, key_path = directory / TSA_CERT_FILE, directory / TSA_KEY_FILE
    if cert_path.exists() != key_path.exists():
        raise missing_half(cert_path, key_path)
    if alg == "rsa2048":
        ca = ensure_dev_ca(ca_directory)
        ca_cert = asn1_x509.Certificate.load(ca.certificate.public_bytes(serialization.Encoding.DER))
        if not cert_path.exists():
            make_private_directory(directory)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cert = _issue_rsa(ca, key)
            write_ca_file(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
            write_ca_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        loaded = _load_rsa(cert_path, key_path)
    else:
        ozdst_ca = ensure_ozdst_ca(ca_directory)
        ca_cert = ozdst_ca.certificate
        if not cert_path.exists():
            make_private_directory(directory)
            key = OzdstPrivateKey.generate(CRYPTOPRO_A)
            now = utc_now()
            eku = asn1_x509.Extension({"extn_id": "extended_key_usage", "critical": True,
                                       "extn_value": ["time_stamping"]})
            cert_asn1 = issue_certificate(ozdst_ca, key.public_key(), _tsa_name(), now - BACKDATE,
                                          add_years(now, 5), extra_extensions=[eku])
            write_ca_file(key_path, pem.armor("PRIVATE KEY", key.pkcs8_der()))
            write_ca_file(cert_path, pem.armor("CERTIFICATE", cert_asn1.dump()))
        loaded = _load_ozdst(cert_path, key_path)
    return TsaIdentity(loaded, loaded.certificate, ca_cert, directory)


def _tsa_name() -> asn1_x509.Name:
    return asn1_x509.Name.build({"common_name": TSA_COMMON_NAME})


def _issue_rsa(ca: DevCa, key: rsa.RSAPrivateKey) -> x509.Certificate:
    now = utc_now()
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TSA_COMMON_NAME)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(add_years(now, 5))
        .add_extension(usage, critical=True)
        # RFC 3161 §2.3: the TSA certificate has exactly this one extended key usage, marked critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )


def _load_rsa(cert_path: Path, key_path: Path) -> CryptographySigner:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"dev TSA files are unreadable: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyStoreError(KeyErrorKind.UNSUPPORTED, f"{key_path} is not an RSA key")
    signer = CryptographySigner(key, asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))
    if not signer.matches_certificate():
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, f"{key_path} does not belong to {cert_path}")
    return signer


def _load_ozdst(cert_path: Path, key_path: Path) -> OzdstSigner:
    try:
        cert = asn1_x509.Certificate.load(_unarmor(cert_path, "CERTIFICATE"), strict=True)
        key = load_pkcs8(_unarmor(key_path, "PRIVATE KEY"))
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise KeyStoreError(KeyErrorKind.DAMAGED_FILE, f"dev TSA files are unreadable: {exc}") from exc
    signer = OzdstSigner(key, cert)
    if not signer.matches_certificate():
        raise KeyStoreError(KeyErrorKind.KEY_MISMATCH, f"{key_path} does not belong to {cert_path}")
    return signer


def _unarmor(path: Path, label: str) -> bytes:
    kind, _, der = pem.unarmor(path.read_bytes())
    if kind != label:
        raise ValueError(f"{path.name} holds a {kind}, not a {label}")
    return der


# --------------------------------------------------------------------------------------------------------------
# Answering requests


class _Rejected(Exception):
    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


class TsaService:
    """Turns TimeStampReq DER into TimeStampResp DER; thread-safe (serials come from one counter)."""

    def __init__(self, identity: TsaIdentity, policy: str = DEFAULT_POLICY) -> None:
        self.identity = identity
        self.policy = policy
        self._lock = threading.Lock()
        # Time-based start: serials keep increasing across restarts of the dev TSA, not only within one run.
        self._serial = time.time_ns() // 1000

    def respond(self, request_der: bytes) -> bytes:
        """A granted response with a token, or a rejection (never an exception) for a malformed request."""
        try:
            token = self._token(self._parse(request_der))
        except _Rejected as rejected:
            return _rejection(rejected.failure, rejected.text)
        return TimeStampResponse({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def _parse(self, request_der: bytes) -> tsp.TimeStampReq:
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            raise _Rejected("bad_request", "not a time-stamp request")
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            request.native  # noqa: B018  - asn1crypto parses lazily; force it so damage surfaces here
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            raise _Rejected("bad_request", "not a time-stamp request") from None
        if request["version"].native != "v1":
            raise _Rejected("bad_request", "unsupported request version")
        imprint = request["message_imprint"]
        expected = _IMPRINT_LENGTHS.get(imprint["hash_algorithm"]["algorithm"].dotted)
        if expected is None:
            raise _Rejected("bad_alg", "unsupported imprint algorithm")
        if len(imprint["hashed_message"].native) != expected:
            raise _Rejected("bad_data_format", "the imprint length does not fit its algorithm")
        wanted_policy = request["req_policy"]
        if not isinstance(wanted_policy, core.Void) and wanted_policy.dotted != self.policy:
            raise _Rejected("unaccepted_policy", f"this TSA only issues under policy {self.policy}")
        if not isinstance(request["extensions"], core.Void) and len(request["extensions"]):
            raise _Rejected("unaccepted_extensions", "request extensions are not supported")
        return request

    def _token(self, request: tsp.TimeStampReq) -> asn1_cms.ContentInfo:
        with self._lock:
            self._serial += 1
            serial = self._serial
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        info: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm.load(request["message_imprint"]["hash_algorithm"].dump()),
                "hashed_message": request["message_imprint"]["hashed_message"].native,
            },
            "serial_number": serial,
            "gen_time": now,
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.identity.certificate.subject),
        }
        if not isinstance(request["nonce"], core.Void):
            info["nonce"] = request["nonce"].native
        tst_der = tsp.TSTInfo(info).dump()
        token = cms.create_signed_data(tst_der, "tst_info", self.identity.signer,
                                       include_certificates=bool(request["cert_req"].native), signing_time=now)
        return asn1_cms.ContentInfo.load(token)


def _rejection(failure: str, text: str) -> bytes:
    status = {"status": "rejection", "status_string": [text], "fail_info": {failure}}
    return TimeStampResponse({"status": status}).dump()


# --------------------------------------------------------------------------------------------------------------
# HTTP


_ABOUT = (
    "eimzo-agent development time-stamp authority (RFC 3161). POST a TimeStampReq as "
    "application/timestamp-query to this URL; the answer is an application/timestamp-reply. "
    "For tests and demos only.\n"
)


class _Handler(SmallBodyHandler):
    service: TsaService  # set on the subclass made per server
    max_body = MAX_REQUEST_BYTES
    log_prefix = "dev TSA"
    server_version = "eimzo-agent-dev-tsa"

    def do_GET(self) -> None:
        self.send_bytes(200, "text/plain; charset=utf-8", _ABOUT.encode())

    def do_POST(self) -> None:
        body = self.read_small_body()
        self.send_bytes(200, "application/timestamp-reply", self.service.respond(body))



def start_tsa(ca_directory: Path, *, alg: TsaAlgorithm = "rsa2048", port: int = 0, host: str = "127.0.0.1",
              policy: str = DEFAULT_POLICY) -> tuple[str, Callable[[], None]]:
    """Serve the dev TSA in a background thread; return its URL ("http://127.0.0.1:PORT/") and a stop function."""
    service = TsaService(ensure_tsa(ca_directory, alg), policy)
    handler = type("TsaHandler", (_Handler,), {"service": service})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return f"http://{host}:{server.server_address[1]}/", serve_in_background(server, "dev-tsa")
