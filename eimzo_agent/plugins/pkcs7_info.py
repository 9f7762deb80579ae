"""pkcs7.get_pkcs7_attached_info / get_pkcs7_detached_info: who signed a document, and whether it checks out.

Portals call these before co-signing, to show who signed. Only what the page sends is read: no key, no password,
no dialog. The checks (signatures, messageDigest, chain to the trusted roots at signing time, timestamps) are
`crypto.pkcs7_info`'s and run in a worker thread, because O'zDSt verification is pure Python. Trusted roots:
the bundled national root plus the admin's `[verify] trust_anchors`; revocation is not checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from eimzo_agent.crypto import cms
from eimzo_agent.crypto.pkcs7_info import pkcs7_info
from eimzo_agent.plugins.pkcs7 import decode_document
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status

#: The only truststore_id: E-IMZO's reference names no other store a page may choose.
DEFAULT_TRUSTSTORE = ""
#: A page's truststore_id is echoed in the error; longer ones are cut.
_ECHO_LIMIT = 64


class Pkcs7InfoPlugin:
    """Reads CMS documents a page sends; `anchors` (DER) are the trusted roots for truststore_id ""."""

    def __init__(self, *, anchors: Sequence[bytes]) -> None:
        self.anchors = tuple(anchors)

    def functions(self) -> list[PluginFunction]:
        truststore = Argument("truststore_id", "Идентификатор хранилища доверенных сертификатов ('' — по умолчанию)",
                              optional=True)
        pkcs7_64 = Argument("pkcs7_64", "PKCS#7 документ в кодировке Base64")
        return [
            PluginFunction("pkcs7", "get_pkcs7_attached_info", self.get_pkcs7_attached_info,
                           (pkcs7_64, truststore),
                           "Получить информацию о подписантах присоединённого PKCS#7 документа и проверить подписи"),
            PluginFunction("pkcs7", "get_pkcs7_detached_info", self.get_pkcs7_detached_info,
                           (Argument("data_64", "Подписанные данные в кодировке Base64"), pkcs7_64, truststore),
                           "Получить информацию о подписантах отсоединённого PKCS#7 документа и проверить подписи"),
        ]

    async def get_pkcs7_attached_info(self, call: Call) -> dict[str, Any]:
        document = await decode_document(call.arg("pkcs7_64"), "pkcs7_64")
        anchors = self._anchors(call)
        return {"pkcs7Info": await self._info(document, None, anchors, attached=True)}

    async def get_pkcs7_detached_info(self, call: Call) -> dict[str, Any]:
        data = await decode_document(call.arg("data_64"), "data_64")
        document = await decode_document(call.arg("pkcs7_64"), "pkcs7_64")
        anchors = self._anchors(call)
        return {"pkcs7Info": await self._info(document, data, anchors, attached=False)}

    def _anchors(self, call: Call) -> tuple[bytes, ...]:
        truststore = call.arg("truststore_id")
        if truststore.strip() != DEFAULT_TRUSTSTORE:
            raise EimzoError(Status.OTHER, "truststore_unknown", truststore=truststore[:_ECHO_LIMIT])
        return self.anchors

    @staticmethod
    async def _info(document: bytes, data: bytes | None, anchors: tuple[bytes, ...], *,
                    attached: bool) -> dict[str, Any]:
        try:
            info = await asyncio.to_thread(pkcs7_info, document, content=data, anchors=anchors)
        except cms.CmsError as exc:
            raise EimzoError(Status.OTHER, "pkcs7_invalid", detail=str(exc)) from None
        if attached and "documentBase64" not in info:
            # Said plainly: "not verified, no content" would send the page looking for a broken signature.
            raise EimzoError(Status.OTHER, "pkcs7_info_detached")
        if not attached:
            info.pop("documentBase64", None)  # E-IMZO-server's detached reply carries no document
        return info
