"""Speed of the enrollment primitives: a new O'zDSt key pair and its PKCS#10 request (pkcs10.generate_keypair +
pkcs10.create_pkcs10 without the socket), target ≤ 5 ms median.

Run:  .venv/bin/python bench/enroll_bench.py [--runs 200]

Prints median and p90 ms over --runs calls for: key generation alone (private scalar + public point), the request
alone (subject parsing, DER, one O'zDSt signature), both together — for OZDST-1092-2009-2 and OZMST-286-2024-2 —
and, for scale, the same for EC-P256 and RSA-2048 (whose key generation is OpenSSL's prime search).
"""

from __future__ import annotations

import argparse

from timing import measure, print_table

from eimzo_agent.crypto import new_keys
from eimzo_agent.crypto.pkcs10 import create_pkcs10, parse_policies, parse_subject

SUBJECT = "CN=ALIYEV VALI,Name=VALI,SURNAME=ALIYEV,UID=512345678,1.2.860.3.16.1.2=31234567890123,C=UZ"
POLICIES = "1.2.860.3.2.2.1.1.2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="calls per figure (at least 50)")
    runs = max(50, parser.parse_args().runs)
    rows = []
    for alg in ("OZDST-1092-2009-2", "OZMST-286-2024-2", "EC-P256", "RSA-2048"):
        key = new_keys.generate(alg)

        def request(key: new_keys.PrivateKey = key) -> bytes:
            return create_pkcs10(key, parse_subject(SUBJECT), parse_policies(POLICIES))

        def both(alg: str = alg) -> bytes:
            return create_pkcs10(new_keys.generate(alg), parse_subject(SUBJECT), parse_policies(POLICIES))

        generate_runs = runs if not alg.startswith("RSA") else max(10, runs // 10)  # RSA keygen takes ~50 ms
        rows.append((f"{alg}: generate key pair", *measure(lambda alg=alg: new_keys.generate(alg), generate_runs)))
        rows.append((f"{alg}: create PKCS#10", *measure(request, runs)))
        rows.append((f"{alg}: both", *measure(both, generate_runs)))
    print_table(f"enrollment primitives, ms ({runs} calls; RSA key generation {max(10, runs // 10)})", rows, 3)


if __name__ == "__main__":
    main()
