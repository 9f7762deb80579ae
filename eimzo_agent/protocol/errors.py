"""E-IMZO status codes and the exception that carries one up to the reply.

Handlers raise `EimzoError(code, reason_key, **params)`; the dispatcher turns it into
`{"success": false, "status": code, "reason": <text in the caller's language>}`. Reason texts live in the
catalogues (`eimzo_agent/i18n/*.toml`), keyed by `reason_key`.
"""

from __future__ import annotations

from typing import Any


class Status:
    """E-IMZO's numeric status codes (see docs/compat.md)."""

    OK = 1
    FUNCTION_NOT_FOUND = 0
    PATH_INVALID = -1002
    FILE_NAME_INVALID = -1003
    FILE_EXISTS = -1004
    LANGUAGE_INVALID = -1005
    KEY_NOT_FOUND = -1010
    KEY_ID_TYPE_NOT_FOUND = -1014
    KEYPAIR_NOT_FOUND = -1011  # enrollment (plugins/pkcs10.py, plugins/enroll.py)
    APIKEY_INVALID = -1020
    DOMAIN_UNKNOWN = -1021
    DOMAIN_NOT_ALLOWED = -1022
    POLICIES_EMPTY = -1023
    PKCS10_INVALID = -1028
    KEY_FILE_MISSING = -2002
    ALIAS_NOT_IN_PFX = -2006
    TEMPORARY_FILE_EXISTS = -2009
    DISK_NOT_FOUND = -2011
    KEY_FILE_EXISTS = -2012
    PUBLIC_KEY_MISMATCH = -2020
    CERTIFICATE_CHAIN_INVALID = -2021
    POLICY_OID_INVALID = -2023
    GUID_UNKNOWN = -2025
    GUID_IN_USE = -2026
    PASSWORD_CANCELLED = -5000
    OPERATION_CANCELLED = -5001
    USB_DISK_MISSING = -5003
    NEW_PASSWORDS_MISMATCH = -5004
    OTHER = -9999


class EimzoError(Exception):
    """A failure the page should see, in E-IMZO's shape."""

    def __init__(self, status: int, reason_key: str, **params: Any) -> None:
        super().__init__(f"{status} {reason_key} {params}" if params else f"{status} {reason_key}")
        self.status = status
        self.reason_key = reason_key
        self.params = params


def function_not_found(name: str | None = None) -> EimzoError:
    """E-IMZO's status 0. Its own text says "update E-IMZO", which is wrong advice here: ours names the function
    and says eimzo-agent does not have it; a frame that is not a call at all says so."""
    if name is None:
        return EimzoError(Status.FUNCTION_NOT_FOUND, "request_invalid")
    return EimzoError(Status.FUNCTION_NOT_FOUND, "function_unknown", function=name)
