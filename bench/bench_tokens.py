"""Token signing latency through the agent, beside python-pkcs11 signing directly with the same SoftHSM2 keys.

Run:  .venv/bin/python bench/bench_tokens.py [--calls 200]

Mints RSA-2048 and P-256 keys onto a throw-away SoftHSM2 token (tests/softhsm.py), then prints medians (and p90)
over N calls made in this one run:
  * create_pkcs7 through the agent with a token keyId (askpass for the PIN, login, CMS, C_Sign, logout),
  * python-pkcs11 directly: C_Sign only, in a session logged in once (the floor the token itself sets),
  * python-pkcs11 directly: open session + login + sign + logout (what one agent signature pays on the token).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pkcs11
from agent_harness import make_askpass, start_agent
from pkcs11 import Attribute, Mechanism, ObjectClass
from softhsm import MODULE, PIN, make_softhsm, mint_pfx
from timing import isolate_home, measure, print_table

DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        hsm = make_softhsm(tmp / "hsm")
        hsm.add_token("BENCH")
        keys = {"RSA-2048": ("rsa2048", "01", Mechanism.RSA_PKCS, DIGEST_INFO),
                "P-256": ("p256", "02", Mechanism.ECDSA, bytes(32))}
        for n, (label, (alg, cka_id, _, _)) in enumerate(keys.items()):
            pfx = mint_pfx(tmp / "ca", tmp / "pfx", alg, f"BENCH {label}", f"3123456789012{n}")
            hsm.import_key("BENCH", pfx, "Token-Passw0rd", cka_id, label)
        os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
        askpass = make_askpass(tmp)
        askpass.answer(PIN, "pin")
        agent = start_agent(tmp / "agent", "--askpass", str(askpass.program), "--pkcs11-module", MODULE,
                            "--log-level", "WARNING", env=hsm.env())
        lib = pkcs11.lib(MODULE)
        token = lib.get_token(token_label="BENCH")
        try:
            entries = {k["label"]: k for k in agent.call("list_keys", plugin="token")["keys"]}
            document = base64.b64encode(b"Shartnoma " * 100).decode()
            for label, (_, cka_id, mechanism, message) in keys.items():
                e = entries[label]
                key_id = agent.call("load_key", e["tokenId"], e["alias"], plugin="token")["keyId"]

                def sign(key_id: str = key_id) -> None:
                    reply = agent.call("create_pkcs7", document, key_id, "no", plugin="pkcs7")
                    assert reply["success"], reply

                rows.append((f"create_pkcs7 via agent, {label}", *measure(sign, args.calls)))
                with token.open(user_pin=PIN) as session:
                    # list() ends the search before signing (an open search + sign is OperationActive).
                    (key,) = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                       Attribute.ID: bytes.fromhex(cka_id)}))

                    def raw(key: object = key, mechanism: Mechanism = mechanism, message: bytes = message) -> None:
                        key.sign(message, mechanism=mechanism)  # type: ignore[attr-defined]

                    rows.append((f"python-pkcs11 C_Sign only, {label}", *measure(raw, args.calls)))

                def with_login(cka_id: str = cka_id, mechanism: Mechanism = mechanism,
                               message: bytes = message) -> None:
                    with token.open(user_pin=PIN) as session:
                        (key,) = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                           Attribute.ID: bytes.fromhex(cka_id)}))
                        key.sign(message, mechanism=mechanism)

                rows.append((f"python-pkcs11 login+sign+logout, {label}", *measure(with_login, args.calls)))
        finally:
            agent.stop()
    print_table(f"token signing latency (SoftHSM2), {args.calls} calls each (ms)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
