"""Development OCSP responder and CRL server, for tests, demos and `eimzo-agent dev ocsp`.

Plays the national CA's certificate status service locally, for both CAs of a dev CA folder: the dev CA (P-256,
`mint`) and the dev O'zDSt CA (`ozdst_ca`). Over HTTP on one port:

* `POST /ocsp` (or any path but /crl/...) with an application/ocsp-request, or `GET /ocsp/<base64 request>`
  (RFC 6960 appendix A): a basic OCSP response signed by the CA that issued the certificate asked about — good,
  revoked (time and reason from the folder's `revoked.json`, see `dev.revoked`), or unknown for other CAs;
* `GET /crl/ca.crl` and `GET /crl/ozdst.crl`: each CA's current CRL (DER), signed by that CA.

Answers are made fresh per request (thisUpdate now, nextUpdate `validity` later) and the revocation list is read
every time, so `eimzo-agent dev revoke` shows at once. The responder knows no list of issued certificates, so
every unrevoked serial of its CAs is "good". Mint certificates that point here with
`eimzo-agent dev mint-key --ocsp-url http://127.0.0.1:PORT/ocsp --crl-url http://127.0.0.1:PORT/crl/ca.crl`
(`.../crl/ozdst.crl` for `--alg ozdst`). Standard library HTTP server, as `dev.tsa`. Never use it for anything real.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import core
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from ..crypto import ocsp
from ..crypto.crl import REASON_NAMES, Revocation
from ..crypto.ozdst_keys import OzdstSigner
from ..crypto.signer import CryptographySigner, Signer
from .common import SmallBodyHandler, serve_in_background, utc_now
from .mint import ensure_dev_ca
from .ozdst_ca import ensure_ozdst_ca
from .revoked import load_revoked

__all__ = ["CRL_PATHS", "OCSP_PATH", "RevocationResponder", "serve_responder", "start_ocsp"]

log = logging.getLogger(__name__)

OCSP_PATH = "/ocsp"
#: CRL path per CA of the folder.
CRL_PATHS = {"ca": "/crl/ca.crl", "ozdst": "/crl/ozdst.crl"}
#: An OCSP request is a few hundred bytes.
MAX_REQUEST_BYTES = 64 * 1024

_ASN1_REASONS = {name: native for native, name in REASON_NAMES.items()}


@dataclass(frozen=True)
class _Issuer:
    """One CA the responder speaks for."""

    certificate: asn1_x509.Certificate
    signer: Signer
    cert_id_prefix: tuple[bytes, bytes]  # (issuerNameHash, issuerKeyHash) of its certificates' CertIDs


class RevocationResponder:
    """Builds OCSP answers and CRLs for the CAs of a dev CA folder; counts the requests (tests read the counts)."""

    def __init__(self, ca_directory: Path, *, validity: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        self.ca_directory = Path(ca_directory)
        self.validity = validity
        ca = ensure_dev_ca(self.ca_directory)
        ca_cert = asn1_x509.Certificate.load(ca.certificate.public_bytes(serialization.Encoding.DER))
        ozdst_ca = ensure_ozdst_ca(self.ca_directory)
        self.issuers = {
            "ca": _issuer(ca_cert, CryptographySigner(ca.private_key, ca_cert)),
            "ozdst": _issuer(ozdst_ca.certificate, OzdstSigner(ozdst_ca.private_key, ozdst_ca.certificate)),
        }
        self._lock = threading.Lock()
        self.ocsp_requests = 0
        self.crl_requests = 0

    def count(self, kind: str) -> None:
        with self._lock:
            if kind == "ocsp":
                self.ocsp_requests += 1
            else:
                self.crl_requests += 1

    def ocsp_response(self, request_der: bytes) -> bytes:
        """The DER OCSPResponse to a request: signed by the CA of its first CertID; malformedRequest if unreadable."""
        try:
            cert_ids, nonce = ocsp.parse_request(request_der)
        except ocsp.OcspError:
            return asn1_ocsp.OCSPResponse({"response_status": "malformed_request"}).dump()
        try:
            revoked = load_revoked(self.ca_directory)
        except ValueError as exc:
            log.error("dev OCSP: %s", exc)
            return asn1_ocsp.OCSPResponse({"response_status": "internal_error"}).dump()
        now = utc_now()
        issuer = next((i for i in self.issuers.values() if _prefix(cert_ids[0]) == i.cert_id_prefix),
                      self.issuers["ca"])
        singles = [self._single(cid, issuer, revoked, now) for cid in cert_ids]
        data: dict[str, Any] = {
            "responder_id": asn1_ocsp.ResponderId(name="by_key", value=ocsp.key_hash(issuer.certificate)),
            "produced_at": now,
            "responses": singles,
        }
        if nonce is not None:
            data["response_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
        tbs = asn1_ocsp.ResponseData(data)
        basic = asn1_ocsp.BasicOCSPResponse({
            "tbs_response_data": tbs,
            "signature_algorithm": issuer.signer.signature_algorithm,
            "signature": issuer.signer.sign(tbs.dump()),
        })
        return asn1_ocsp.OCSPResponse({
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
        }).dump()

    def _single(self, cid: asn1_ocsp.CertId, issuer: _Issuer, revoked: dict[int, Revocation],
                now: dt.datetime) -> dict[str, Any]:
        entry = revoked.get(cid["serial_number"].native)
        if _prefix(cid) != issuer.cert_id_prefix:
            status = asn1_ocsp.CertStatus(name="unknown", value=core.Null())
        elif entry is None:
            status = asn1_ocsp.CertStatus(name="good", value=core.Null())
        else:
            info: dict[str, Any] = {"revocation_time": entry.time}
            if entry.reason is not None:
                info["revocation_reason"] = _ASN1_REASONS[entry.reason]
            status = asn1_ocsp.CertStatus(name="revoked", value=info)
        return {"cert_id": cid, "cert_status": status, "this_update": now, "next_update": now + self.validity}

    def crl(self, which: str) -> bytes:
        """The current CRL (DER) of the folder's CA `which` ("ca" or "ozdst"), listing the folder's revocations."""
        issuer = self.issuers[which]
        now = utc_now()
        entries = []
        for serial, entry in sorted(load_revoked(self.ca_directory).items()):
            item: dict[str, Any] = {"user_certificate": serial, "revocation_date": _time(entry.time)}
            if entry.reason is not None:
                item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "critical": False,
                                                 "extn_value": _ASN1_REASONS[entry.reason]}]
            entries.append(item)
        tbs: dict[str, Any] = {
            "version": "v2",
            "signature": issuer.signer.signature_algorithm,
            "issuer": issuer.certificate["tbs_certificate"]["subject"],
            "this_update": _time(now),
            "next_update": _time(now + self.validity),
            "crl_extensions": [
                # RFC 5280 §5.2.3: a monotonically increasing number; the time serves for a dev CA.
                {"extn_id": "crl_number", "critical": False, "extn_value": int(now.timestamp())},
                {"extn_id": "authority_key_identifier", "critical": False,
                 "extn_value": {"key_identifier": issuer.certificate.key_identifier}},
            ],
        }
        if entries:  # RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked
            tbs["revoked_certificates"] = entries
        tbs_cert_list = asn1_crl.TbsCertList(tbs)
        return asn1_crl.CertificateList({
            "tbs_cert_list": tbs_cert_list,
            "signature_algorithm": issuer.signer.signature_algorithm,
            "signature": issuer.signer.sign(tbs_cert_list.dump()),
        }).dump()


def _issuer(cert: asn1_x509.Certificate, signer: Signer) -> _Issuer:
    own = ocsp.cert_id(cert, cert)  # the hashes depend on the issuer only
    return _Issuer(cert, signer, (own.issuer_name_hash, own.issuer_key_hash))


def _prefix(cid: asn1_ocsp.CertId) -> tuple[bytes, bytes] | None:
    parsed = ocsp.CertId.from_asn1(cid)
    return None if parsed is None else (parsed.issuer_name_hash, parsed.issuer_key_hash)


def _time(moment: dt.datetime) -> asn1_x509.Time:
    return asn1_x509.Time(name="utc_time", value=moment.astimezone(dt.UTC))


# --------------------------------------------------------------------------------------------------------------
# HTTP


_ABOUT = (
    "eimzo-agent development OCSP responder and CRL server. POST an application/ocsp-request to /ocsp (or GET "
    "/ocsp/<base64 request>); CRLs at /crl/ca.crl (dev CA) and /crl/ozdst.crl (dev O'zDSt CA). "
    "For tests and demos only.\n"
)


class _Handler(SmallBodyHandler):
    responder: RevocationResponder  # set on the subclass made per server
    max_body = MAX_REQUEST_BYTES
    log_prefix = "dev OCSP"
    server_version = "eimzo-agent-dev-ocsp"

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        for which, crl_path in CRL_PATHS.items():
            if path == crl_path:
                self.responder.count("crl")
                try:
                    crl = self.responder.crl(which)
                except ValueError as exc:  # a damaged revoked.json
                    self.send_bytes(500, "text/plain; charset=utf-8", f"{exc}\n".encode())
                    return
                self.send_bytes(200, "application/pkix-crl", crl)
                return
        if path.startswith(OCSP_PATH + "/"):
            self.responder.count("ocsp")
            # Standard base64, URL-encoded; base64url is taken too.
            encoded = urllib.parse.unquote(path[len(OCSP_PATH) + 1:]).replace("-", "+").replace("_", "/")
            try:
                request = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                request = b""
            self.send_bytes(200, "application/ocsp-response", self.responder.ocsp_response(request))
            return
        self.send_bytes(200 if path == "/" else 404, "text/plain; charset=utf-8", _ABOUT.encode())

    def do_POST(self) -> None:
        body = self.read_small_body()
        self.responder.count("ocsp")
        self.send_bytes(200, "application/ocsp-response", self.responder.ocsp_response(body))



def serve_responder(responder: RevocationResponder, *, port: int = 0,
                    host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve `responder` in a background thread; return its base URL ("http://127.0.0.1:PORT/") and a stop
    function."""
    handler = type("OcspHandler", (_Handler,), {"responder": responder})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return f"http://{host}:{server.server_address[1]}/", serve_in_background(server, "dev-ocsp")


def start_ocsp(ca_directory: Path, *, port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Serve the dev OCSP responder and CRLs of `ca_directory` in a background thread (see the module docstring)."""
    return serve_responder(RevocationResponder(ca_directory), port=port, host=host)
