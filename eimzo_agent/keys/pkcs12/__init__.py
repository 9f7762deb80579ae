"""PKCS#12 (.pfx) key files: list aliases without the password, open them with precise errors, write them.

`cryptography` says "Invalid password or PKCS12 data" for every failure, but the person at the keyboard needs to
know whether the password was wrong, the file damaged or the algorithm unknown. So the structure is parsed with
asn1crypto, the MAC verified and the key bags decrypted here just far enough to read their algorithm, and only
then is the file handed to a backend that turns it into signers.

Modules, bottom up: `asn1` (what malformed input raises), `kdf` (PKCS#12 KDF, password encodings), `rc2` (40-bit
RC2), `pbe` (PBE/PBES2 decryption and encryption), `structure` (walking the file), `mac`, `keybags`, `listing`
(aliases without the password), `certs`, `entries` (`UnlockedKey`, `PfxBackend`), `cryptography_backend`,
`ozdst_backend`, `backends` (the registry: which backends, in which order), `opening` (`open_pfx`), `bags` and
`ozdst_writer` and `writer` (new files), `rewrite` (password change keeping the file's scheme).
"""

from .backends import default_backends, register_backend, registered_backends, unregister_backend
from .entries import PfxBackend, UnlockedKey
from .kdf import MAX_ITERATIONS, bmp_passwords, pkcs12_kdf
from .keybags import KeyAlgorithm, decrypt_key_bag, key_algorithms, pkcs8_algorithm
from .listing import list_aliases
from .mac import verify_mac
from .opening import open_pfx
from .pbe import decrypt_pbe
from .rewrite import change_pfx_password
from .structure import has_mac, iter_safe_bags, parse_pfx
from .writer import serialize_pfx

__all__ = [
    "MAX_ITERATIONS",
    "KeyAlgorithm",
    "PfxBackend",
    "UnlockedKey",
    "bmp_passwords",
    "change_pfx_password",
    "decrypt_key_bag",
    "decrypt_pbe",
    "default_backends",
    "has_mac",
    "iter_safe_bags",
    "key_algorithms",
    "list_aliases",
    "open_pfx",
    "parse_pfx",
    "pkcs8_algorithm",
    "pkcs12_kdf",
    "register_backend",
    "registered_backends",
    "serialize_pfx",
    "unregister_backend",
    "verify_mac",
]
