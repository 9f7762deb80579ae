"""Trust anchors: the bundled national root (see README.md here for its origin) and certificate files an admin
names; certificates as DER, for `cms_verify` and `pkcs7_info`."""

from __future__ import annotations

import base64
import binascii
import re
from importlib import resources
from pathlib import Path

from eimzo_agent.crypto import x509_info
from eimzo_agent.crypto.x509_info import CertificateError

__all__ = ["bundled_anchors", "parse_certificates", "read_anchor_file"]

_BUNDLED = ("uz-national-root.pem",)
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


def parse_certificates(data: bytes) -> list[bytes]:
    """Every certificate of a PEM bundle, or the one certificate of a DER file; ValueError saying why not."""
    blocks = _PEM.findall(data)
    if blocks:
        try:
            ders = [base64.b64decode(b"".join(block.split()), validate=True) for block in blocks]
        except (binascii.Error, ValueError):
            raise ValueError("a PEM block is not valid Base64") from None
    elif data[:1] == b"\x30":
        ders = [data]
    else:
        raise ValueError("neither PEM certificates nor a DER certificate")
    for number, der in enumerate(ders, 1):
        try:
            x509_info.load_certificate(der)
        except CertificateError as exc:
            raise ValueError(f"certificate {number} cannot be read: {exc}") from None
    return ders


def bundled_anchors() -> list[bytes]:
    """The roots shipped with the agent (the national root of Uzbekistan's ERI registration authority)."""
    folder = resources.files(__name__)
    return [der for name in _BUNDLED for der in parse_certificates(folder.joinpath(name).read_bytes())]


def read_anchor_file(path: Path) -> list[bytes]:
    """The certificates of an admin's anchor file; OSError or ValueError saying what is wrong."""
    return parse_certificates(path.read_bytes())
