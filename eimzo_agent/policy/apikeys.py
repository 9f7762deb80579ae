"""Offline check of E-IMZO API keys: the vendor's signatures over a portal's domain name.

An API key (128 hex digits) is s||r, each 32 bytes big-endian: a GOST R 34.10-2001 (O'zDSt 1092) signature on
curve CryptoPro-A by the vendor's key below, over GOST R 34.11-94(GOST R 34.11-94(domain as ASCII)), the double
hash read little-endian as the number e — exactly the layout of E-IMZO's CMS signatures. So a key proves the
vendor registered that domain, and we can check it without asking e-imzo.uz. Keys are public (every portal ships
its key in its JavaScript), so a valid key identifies the domain it was issued for, never the page sending it:
the domain gate only lets a page use keys issued for its *own* Origin.
"""

from __future__ import annotations

import functools
import re

from eimzo_agent.crypto import ozdst
from eimzo_agent.crypto.gost94 import gost94_digest

#: The vendor's public key that signs every published E-IMZO API key (the same for all of them).
VENDOR_PUBLIC_KEY = (
    0x29C7371ABEB628C21DEA54D24E6F17AD5DE119BC495DCD402B27E642EFA78CBD,
    0xBE1401D23A79D1270D13332A0B4B1AEFA533D2F75133C3CBC0061D8E47869749,
)

_KEY = re.compile(r"[0-9A-Fa-f]{128}")


def apikey_digest(domain: str) -> bytes:
    """The 32 bytes an API key signs: gost94(gost94(domain)), domain lower-case ASCII."""
    return gost94_digest(gost94_digest(domain.strip().lower().encode("ascii")))


class VendorApiKeyVerifier:
    """`ApiKeyVerifier` for the vendor's signed keys: True if `key` is the vendor's signature over `domain`.

    Never returns None: a key that is not the vendor's signature is simply invalid (E-IMZO answers -1020).
    """

    def __init__(self, public_key: tuple[int, int] = VENDOR_PUBLIC_KEY, curve: ozdst.Curve = ozdst.CRYPTOPRO_A):
        self.public_key = public_key
        self.curve = curve

    def verify(self, domain: str, key: str) -> bool:
        key = key.strip()
        if not _KEY.fullmatch(key) or not domain.strip().isascii():
            return False
        return self._verify(domain.strip().lower(), key.lower())

    # Pure-Python EC verification costs tens of milliseconds and portals send the same keys on every page load;
    # the answer depends on nothing but the arguments, so it is remembered (bounded, so junk cannot grow it).
    @functools.lru_cache(maxsize=256)  # noqa: B019 - verifiers live as long as the agent
    def _verify(self, domain: str, key: str) -> bool:
        signature = bytes.fromhex(key)
        return ozdst.verify_digest(self.curve, self.public_key, apikey_digest(domain), signature)
