"""The x509 plugin: a loaded key's certificate chain, certificate details, and one issuer-signature check.

`get_certificate_chain` needs the password of a .pfx: its certificates are usually encrypted (BouncyCastle and
OpenSSL put them in an RC2/3DES bag), and E-IMZO asks for it here too. Certificates on a PKCS#11 token are public
objects, so a token key's chain comes without a PIN. The other two functions only read what
the page sends; they are gated like every other call (E-IMZO gates all but version/apikey/apidoc), and the
signature checks run in a worker thread because O'zDSt verification is pure Python.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from asn1crypto import x509

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.x509_info import AlgorithmError, CertificateError
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.plugins.hardware import TokenService, is_token_key
from eimzo_agent.plugins.keyuse import PFX_KEY_STORE, KeyUnlocker
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


def decode_certificate(value: str, argument: str) -> x509.Certificate:
    """A certificate argument: Base64 of the DER (what E-IMZO documents), or a PEM block (tolerated).

    Bad Base64 gives E-IMZO-shaped `base64_invalid`, anything that is not an X.509 certificate
    `certificate_invalid`; both name the argument.
    """
    pem = _PEM.search(value)
    text = "".join((pem.group(1) if pem else value).split())
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EimzoError(Status.OTHER, "base64_invalid", argument=argument) from None
    try:
        return x509_info.load_certificate(der)
    except CertificateError:
        raise EimzoError(Status.OTHER, "certificate_invalid", argument=argument) from None


def check_issued_by(subject: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise the E-IMZO-shaped error when `issuer` did not issue `subject`: names first, then the signature."""
    if not x509_info.issued_by(subject, issuer):
        raise EimzoError(Status.OTHER, "certificate_issuer_mismatch")
    try:
        valid = x509_info.verify_certificate_signature(subject, issuer)
    except AlgorithmError as exc:
        raise EimzoError(Status.OTHER, "certificate_algorithm_unsupported", detail=str(exc)) from None
    if not valid:
        raise EimzoError(Status.OTHER, "certificate_signature_invalid")


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.dump()).decode("ascii")


class X509Plugin:
    """x509.*: a loaded key's chain (the password is asked: .pfx certificates are encrypted), and two checks on
    certificates the page sends."""

    def __init__(self, *, sessions: KeySessions, unlocker: KeyUnlocker, tokens: TokenService) -> None:
        self.sessions = sessions
        self.unlocker = unlocker
        self.tokens = tokens

    def functions(self) -> list[PluginFunction]:
        return [
            PluginFunction("x509", name, handler, args, description)
            for name, handler, args, description in (
                ("get_certificate_chain", self.get_certificate_chain,
                 (Argument("certId", "Идентификатор загруженного ключа"),),
                 "Получить цепочку сертификатов ключа (сертификат ключа первым)"),
                ("get_certificate_info", self.get_certificate_info,
                 (Argument("certificate_64", "Сертификат в кодировке Base64"),),
                 "Получить информацию о сертификате"),
                ("verify_certificate", self.verify_certificate, (
                    Argument("subject_certificate_64", "Проверяемый сертификат в кодировке Base64"),
                    Argument("issuer_certificate_64", "Сертификат издателя в кодировке Base64"),
                ), "Проверить, что сертификат выдан и подписан издателем"),
            )
        ]

    async def get_certificate_chain(self, call: Call) -> dict[str, Any]:
        key = self.sessions.get(call.arg("certId"), call.caller.origin)
        if key is not None and is_token_key(key):
            chain = await self.tokens.chain(key)
        elif key is not None and key.store_type == PFX_KEY_STORE:
            opened, _ = await self.unlocker.open(call, key, "read_certificates")
            chain = [opened.certificate, *opened.chain]
        else:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        # Key stores keep the chain in issuer order: end entity, its issuing CA, ..., root.
        return {"certificates": [_b64(cert) for cert in chain]}

    async def get_certificate_info(self, call: Call) -> dict[str, Any]:
        cert = decode_certificate(call.arg("certificate_64"), "certificate_64")
        return {"certificate_info": x509_info.certificate_info(cert)}

    async def verify_certificate(self, call: Call) -> dict[str, Any]:
        subject = decode_certificate(call.arg("subject_certificate_64"), "subject_certificate_64")
        issuer = decode_certificate(call.arg("issuer_certificate_64"), "issuer_certificate_64")
        await asyncio.to_thread(check_issued_by, subject, issuer)
        return {}
