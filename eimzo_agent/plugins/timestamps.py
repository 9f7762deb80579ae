"""Time-stamps (CAdES-T): `pkcs7.attach_timestamp_token_pkcs7` and the `tsaclient` plugin of older E-IMZO builds.

The page fetches the token from its TSA itself (the vendor's e-imzo-client.js did); the agent only builds the
request, reads the token and attaches it. Pure functions of their arguments: no key, no password, no dialog.
Which imprint: E-IMZO used O'zDSt 1106 always; we keep its arguments and choose by the signature's size (128 hex
digits = the s||r of a 256-bit O'zDSt signature, E-IMZO's only algorithm), SHA-256 otherwise (docs/compat.md).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from eimzo_agent.crypto import timestamp
from eimzo_agent.plugins.pkcs7 import decode_base64, decode_document
from eimzo_agent.protocol import base64data
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status

#: Bytes of an O'zDSt/OZMST signature value on a 256-bit curve (s||r).
OZDST_SIGNATURE_BYTES = 64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_hex(value: str, argument: str) -> bytes:
    try:
        data = bytes.fromhex("".join(value.split()))
    except ValueError:
        raise EimzoError(Status.OTHER, "hex_invalid", argument=argument) from None
    if not data:
        raise EimzoError(Status.OTHER, "hex_invalid", argument=argument)
    return data


def _read_token(value: str) -> timestamp.TimestampToken:
    try:
        return timestamp.read_token(decode_base64(value, "timestamp_token_64"))
    except timestamp.TimestampError as exc:
        raise EimzoError(Status.OTHER, "timestamp_invalid", detail=str(exc)) from None


class TimestampsPlugin:
    """pkcs7.attach_timestamp_token_pkcs7 and tsaclient.*."""

    def functions(self) -> list[PluginFunction]:
        token = Argument("timestamp_token_64", "Токен штампа времени (RFC 3161) в кодировке Base64")
        return [
            PluginFunction(
                "pkcs7", "attach_timestamp_token_pkcs7", self.attach_timestamp_token_pkcs7,
                (
                    Argument("pkcs7_64", "PKCS#7 документ в кодировке Base64"),
                    Argument("signer_serial_number", "Серийный номер сертификата подписавшего (hex)"),
                    token,
                ),
                "Прикрепить токен штампа времени к подписи в PKCS#7 документе",
            ),
            PluginFunction(
                "tsaclient", "get_timestamp_token_request_for_signature", self.request_for_signature,
                (Argument("signature_hex", "Значение подписи в шестнадцатеричном виде"),),
                "Создать запрос штампа времени (RFC 3161) для значения подписи",
            ),
            PluginFunction(
                "tsaclient", "get_timestamp_token_request_for_data", self.request_for_data,
                (Argument("data_64", "Данные в кодировке Base64"),),
                "Создать запрос штампа времени (RFC 3161) для данных",
            ),
            PluginFunction(
                "tsaclient", "get_timestamp_token_info", self.token_info, (token,),
                "Получить информацию о токене штампа времени",
            ),
        ]

    async def attach_timestamp_token_pkcs7(self, call: Call) -> dict[str, Any]:
        pkcs7 = await decode_document(call.arg("pkcs7_64"), "pkcs7_64")
        token = decode_base64(call.arg("timestamp_token_64"), "timestamp_token_64")
        serial = call.arg("signer_serial_number")
        try:
            result = await asyncio.to_thread(timestamp.attach_token, pkcs7, serial, token)
        except timestamp.TimestampError as exc:
            raise EimzoError(Status.OTHER, "timestamp_attach_failed", detail=str(exc)) from None
        return {"pkcs7_64": base64data.encode(result)}

    async def request_for_signature(self, call: Call) -> dict[str, Any]:
        signature = decode_hex(call.arg("signature_hex"), "signature_hex")
        ozdst = len(signature) == OZDST_SIGNATURE_BYTES
        request = timestamp.request_for_signature(signature, ozdst=ozdst)
        return {"timestamp_request_64": _b64(request)}

    async def request_for_data(self, call: Call) -> dict[str, Any]:
        data = await decode_document(call.arg("data_64"), "data_64")
        # GOST R 34.11-94 of a large document takes a while: off the event loop.
        request = await asyncio.to_thread(timestamp.request_for_data, data, ozdst=True)
        return {"timestamp_request_64": _b64(request)}

    async def token_info(self, call: Call) -> dict[str, Any]:
        token = _read_token(call.arg("timestamp_token_64"))
        return {"timestamp_token_info": timestamp.token_info(token)}


__all__ = ["OZDST_SIGNATURE_BYTES", "TimestampsPlugin", "decode_hex"]
