"""How a .pfx is protected (read with asn1crypto alone, not with the code under test) and what its bags hold."""

from __future__ import annotations

from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12

from eimzo_agent.keys.pkcs12 import iter_safe_bags, parse_pfx


def protection(data: bytes) -> dict[str, object]:
    """What protects each part of a file, read with asn1crypto alone: the MAC, each key bag, each container."""
    pfx = asn1_pkcs12.Pfx.load(data)
    mac = pfx["mac_data"]
    found: dict[str, object] = {
        "mac": None if isinstance(mac, core.Void) else (mac["mac"]["digest_algorithm"]["algorithm"].native,
                                                         mac["iterations"].native),
        "keys": [],
        "containers": [],
    }
    for info in asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native):
        if info["content_type"].native == "encrypted_data":
            algorithm = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            found["containers"].append(describe_encryption(algorithm))
        else:
            for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    found["keys"].append(describe_encryption(bag["bag_value"]["encryption_algorithm"]))
                elif bag["bag_id"].native == "key_bag":
                    found["keys"].append("unencrypted")
    return found


def describe_encryption(algorithm) -> tuple:
    if algorithm["algorithm"].native == "pbes2":
        kdf = algorithm["parameters"]["key_derivation_func"]["parameters"]
        cipher = algorithm["parameters"]["encryption_scheme"]["algorithm"].native
        return ("pbes2", kdf["prf"]["algorithm"].native, cipher, kdf["iteration_count"].native)
    return (algorithm["algorithm"].native, algorithm["parameters"]["iterations"].native)


def key_bag_attributes(data: bytes) -> list[bytes]:
    """The encoded attributes (friendlyName, localKeyId) of each key bag, byte for byte."""
    return [bag["bag_attributes"].dump() for bag in iter_safe_bags(parse_pfx(data))
            if bag["bag_id"].native in ("key_bag", "pkcs8_shrouded_key_bag")]


def certificate_bags(data: bytes, password: str) -> list[bytes]:
    return [bag.dump() for bag in iter_safe_bags(parse_pfx(data), password)
            if bag["bag_id"].native == "cert_bag"]
