"""The pkcs10 plugin: new key pairs held in memory (kpId) and PKCS#10 requests for them or for a loaded key.

The helpers at the top turn a page's subject, policies and algorithm into checked values with E-IMZO's errors;
the enrollment plugin (plugins/enroll.py) uses them too.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from eimzo_agent.crypto import new_keys
from eimzo_agent.crypto.pkcs10 import (
    Pkcs10Error,
    PolicyError,
    SubjectError,
    create_pkcs10,
    decode_pkcs10,
    parse_policies,
    parse_subject,
    pkcs10_info,
)
from eimzo_agent.keys.keypairs import KeyPair, KeyPairs
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.plugins.keyuse import PFX_KEY_STORE, KeyUnlocker
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status

#: E-IMZO's session type name for a generated key pair.
KEY_PAIR = "KEY_PAIR"


def subject_name(text: str) -> bytes:
    """The DER subject for a page's X.500 string, or E-IMZO's "other error" naming what is wrong."""
    try:
        return parse_subject(text)
    except SubjectError as exc:
        raise EimzoError(Status.OTHER, "subject_invalid", detail=str(exc)) from None


def policies(cp_list: str, *, required: bool = False) -> tuple[str, ...]:
    """cp_list's OIDs: -2023 for a non-OID, -1023 when `required` and there are none (pki enrollment)."""
    try:
        oids = parse_policies(cp_list)
    except PolicyError as exc:
        raise EimzoError(Status.POLICY_OID_INVALID, "policy_oid_invalid", detail=str(exc)) from None
    if required and not oids:
        raise EimzoError(Status.POLICIES_EMPTY, "policies_empty")
    return oids


async def generate_key(alg_name: str) -> new_keys.PrivateKey:
    """A new key from the OS random source (in a worker thread: RSA-4096 takes a while)."""
    try:
        return await asyncio.to_thread(new_keys.generate, alg_name)
    except new_keys.AlgorithmUnknown:
        detail = f"{alg_name} ({', '.join(new_keys.ALGORITHMS)})"
        raise EimzoError(Status.OTHER, "algorithm_unknown", detail=detail) from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Pkcs10Plugin:
    """pkcs10.*: E-IMZO's key-pair and certificate-request functions."""

    def __init__(self, *, keypairs: KeyPairs, sessions: KeySessions, unlocker: KeyUnlocker) -> None:
        self.keypairs = keypairs
        self.sessions = sessions
        self.unlocker = unlocker

    def functions(self) -> list[PluginFunction]:
        cp_list = Argument("cp_list", "Список OID политик сертификата через запятую", optional=True)
        return [
            PluginFunction("pkcs10", name, handler, args, description)
            for name, handler, args, description in (
                ("generate_keypair", self.generate_keypair, (
                    Argument("alg_name", "Алгоритм ключа, например 'OZMST-286-2024-2'"),
                    # Accepted for E-IMZO's callers and ignored: keys come only from the OS random source.
                    Argument("seed", "Источник случайности (не используется)", optional=True),
                ), "Сгенерировать ключевую пару и получить её идентификатор"),
                ("create_pkcs10", self.create_pkcs10, (
                    Argument("id", "Идентификатор ключевой пары (kpId)"),
                    Argument("subject_x500_name", "Имя субъекта X.500, например 'CN=…,UID=…,C=UZ'"),
                    cp_list,
                ), "Создать запрос на сертификат PKCS#10 для ключевой пары"),
                ("create_pkcs10_from_key", self.create_pkcs10_from_key, (
                    Argument("id", "Идентификатор загруженного ключа (keyId)"),
                    Argument("replacement_x500_name", "Новое имя субъекта X.500 ('' — из сертификата)",
                             optional=True),
                    cp_list,
                ), "Создать запрос на сертификат PKCS#10 для загруженного ключа"),
                ("get_pkcs10_info", self.get_pkcs10_info, (
                    Argument("pkcs10", "Запрос PKCS#10 в кодировке Base64 или PEM"),
                ), "Получить информацию о запросе PKCS#10"),
            )
        ]

    def pair(self, call: Call, argument: str = "id") -> KeyPair:
        pair = self.keypairs.get(call.arg(argument), call.caller.origin)
        if pair is None:
            raise EimzoError(Status.KEYPAIR_NOT_FOUND, "keypair_not_found")
        return pair

    async def generate_keypair(self, call: Call) -> dict[str, Any]:
        if call.caller.origin is None:  # a pair must belong to someone, or no call could ever use it
            raise EimzoError(Status.DOMAIN_UNKNOWN, "domain_unknown")
        alg_name = call.arg("alg_name").strip().upper()
        key = await generate_key(alg_name)
        return {"kpId": self.keypairs.add(key, alg_name, call.caller.origin), "type": KEY_PAIR}

    async def create_pkcs10(self, call: Call) -> dict[str, Any]:
        pair = self.pair(call)
        subject = subject_name(call.arg("subject_x500_name"))
        oids = policies(call.arg("cp_list"))
        der = await asyncio.to_thread(create_pkcs10, pair.private_key, subject, oids)
        return {"pkcs10_64": b64(der)}

    async def create_pkcs10_from_key(self, call: Call) -> dict[str, Any]:
        key = self.sessions.get(call.arg("id"), call.caller.origin)
        if key is None or key.store_type != PFX_KEY_STORE:
            raise EimzoError(Status.KEY_NOT_FOUND, "key_not_found")
        replacement = call.arg("replacement_x500_name").strip()
        subject = subject_name(replacement) if replacement else None
        oids = policies(call.arg("cp_list"))  # checked before the person is asked for the password
        opened, _ = await self.unlocker.open(call, key, "certificate_request")
        if subject is None:  # the certificate's subject, byte for byte (a CA compares DNs exactly)
            subject = opened.certificate["tbs_certificate"]["subject"].dump()
        der = await asyncio.to_thread(create_pkcs10, opened.signer.private_key, subject, oids)
        return {"pkcs10_64": b64(der)}

    async def get_pkcs10_info(self, call: Call) -> dict[str, Any]:
        try:
            der = decode_pkcs10(call.arg("pkcs10"))
            info = await asyncio.to_thread(pkcs10_info, der)
        except Pkcs10Error as exc:
            raise EimzoError(Status.PKCS10_INVALID, "pkcs10_invalid", detail=str(exc)) from None
        return {"pkcs10_info": info, "pkcs10_64": b64(der)}
