"""The JSON E-IMZO-server answers: status codes, messages, date formats and the certificate views.

HTTP 200 means "processed" and the body's `status` tells the outcome (1 OK, negative = the documented failure);
other HTTP codes carry `{"status": 0, "error": <kind>, "message": ...}` (never a stack trace). Dates print as
the Java client reads them, `yyyy-MM-dd HH:mm:ss` in the server's zone; only /info keeps `yyyy.MM.dd HH:mm:ss`.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from typing import Any

from asn1crypto import x509

from eimzo_agent.crypto import x509_info

OK = 1
STATUS_UNCHECKED = -1  # certificate status (OCSP/CRL) could not be checked
BAD_SIGNING_TIME = -5
BAD_SIGNATURE = -10
BAD_CERTIFICATE = -11
NOT_VALID_AT_SIGNING_TIME = -12
NO_CHALLENGE = -20  # login: challenge not found or expired
TOKEN_INVALID = -21  # verify: a time-stamp token does not verify

#: The fields of pkcs7Info / timeStampInfo that hold dates.
_DATE_KEYS = frozenset({"signingTime", "validFrom", "validTo", "time", "statusUpdatedAt", "statusNextUpdateAt",
                        "revocationTime"})
_DOTTED = re.compile(r"([0-9]{4})\.([0-9]{2})\.([0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})")


def processed(status: int, message: str = "", **fields: Any) -> dict[str, Any]:
    return {**fields, "status": status, "message": message}


def failure(kind: str, message: str) -> dict[str, Any]:
    """The body of a non-200 answer."""
    return {"status": 0, "error": kind, "message": message}


def server_time(moment: dt.datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in the server's zone."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def info_time(moment: dt.datetime) -> str:
    """/info's `yyyy.MM.dd HH:mm:ss`."""
    return x509_info.format_local_time(moment)


def dashed_dates(value: Any) -> Any:
    """`value` (pkcs7Info and its parts) with every date field in the server's `yyyy-MM-dd HH:mm:ss`."""
    if isinstance(value, dict):
        return {key: (_DOTTED.sub(r"\1-\2-\3 \4", item) if key in _DATE_KEYS and isinstance(item, str)
                      else dashed_dates(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [dashed_dates(item) for item in value]
    return value


def subject_certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    """/backend/auth's `subjectCertificateInfo`: who signed, as a portal starts its session with. Kept per
    certificate (by its DER): people log in again and again, and reading the name's attributes was a tenth of a
    login's time. A copy: the caller may change it."""
    return copy.deepcopy(_described(cert.dump()))


@functools.lru_cache(maxsize=4096)
def _described(der: bytes) -> dict[str, Any]:
    tbs = x509.Certificate.load(der)["tbs_certificate"]
    validity = tbs["validity"]
    return {
        "serialNumber": format(tbs["serial_number"].native, "x"),
        "X500Name": x509_info.format_name(tbs["subject"]),
        "subjectName": x509_info.name_attributes(tbs["subject"]),
        "validFrom": server_time(validity["not_before"].native),
        "validTo": server_time(validity["not_after"].native),
    }


def trusted_certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    """One entry of /info's `trustedCertificates`."""
    tbs = cert["tbs_certificate"]
    validity = tbs["validity"]
    return {
        "serialNumber": format(tbs["serial_number"].native, "x"),
        "validFrom": info_time(validity["not_before"].native),
        "validTo": info_time(validity["not_after"].native),
        "subjectInfo": x509_info.name_attributes(tbs["subject"]),
    }


def revoked_status_info(revocation_time: dt.datetime | None, reason: str | None) -> dict[str, Any]:
    return {"revocationTime": server_time(revocation_time) if revocation_time else None, "crlReason": reason}
