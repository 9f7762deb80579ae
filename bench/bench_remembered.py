"""create_pkcs7 with a remembered key, as a portal's signing loop sees it (issue 14: ≤ 2 ms median).

Run:  .venv/bin/python bench/bench_remembered.py [--calls 200]

The person ticked "remember for this site" once (here: the askpass program answers `remember=21600`), so the agent
keeps the opened key for the site and every further create_pkcs7 is: a new WebSocket (as e-imzo.js opens one per
call), the request, the CMS over a 1 KB document, the journal line, the reply. Measured through a real socket
against the real agent, beside a bare `version` round trip on a new socket (the floor every call pays); each with
websockets' sync client (a thread per connection) and with bench/lean_client.py (the same library's sans-I/O
protocol on a plain socket), whose difference is the measuring client's own cost.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agent_harness import PASSWORD, make_askpass, mint, start_agent
from lean_client import call as lean_call
from lean_client import call_timed
from timing import isolate_home, measure, measure_reported, print_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        isolate_home(tmp)
        keys = {
            "P-256": mint(tmp / "ca", tmp / "flash" / "DSKEYS", "p256", "--cn", "BENCH EC", "--pinfl",
                          "31234567890124"),
            "O'zDSt": mint(tmp / "ca", tmp / "flash" / "DSKEYS", "ozdst", "--cn", "BENCH OZDST", "--pinfl",
                           "31234567890125"),
        }
        askpass = make_askpass(tmp)
        askpass.answer(f"{PASSWORD}\nremember=21600")
        agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program),
                            "--log-level", "WARNING")
        try:
            version = json.dumps({"name": "version"})
            rows = [("round trip: new socket + version", *measure(lambda: agent.call("version"), args.calls)),
                    ("  the same, lean client", *measure(lambda: lean_call(agent.port, agent.origin, version),
                                                        args.calls)),
                    ("  lean client, to the reply", *measure_reported(
                        lambda: call_timed(agent.port, agent.origin, version)[1], args.calls))]
            entries = agent.call("list_all_certificates", plugin="pfx")["certificates"]
            document = base64.b64encode(bytes(range(256)) * 4).decode()  # 1 KB
            for label, pfx in keys.items():
                e = next(c for c in entries if c["name"] == pfx.stem)
                key_id = agent.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx")["keyId"]

                def sign(key_id: str = key_id) -> None:
                    reply = agent.call("create_pkcs7", document, key_id, "no", plugin="pkcs7")
                    assert reply["success"], reply

                sign()  # the one question; from here on the key is kept
                asked = len([q for q in askpass.questions() if q.startswith("password")])
                rows.append((f"create_pkcs7, remembered key, {label}", *measure(sign, args.calls)))
                request = json.dumps({"plugin": "pkcs7", "name": "create_pkcs7", "arguments": [document, key_id, "no"]})

                def sign_lean(request: str = request) -> None:
                    assert json.loads(lean_call(agent.port, agent.origin, request))["success"]

                rows.append(("  the same, lean client", *measure(sign_lean, args.calls)))

                def sign_to_reply(request: str = request) -> float:
                    reply, seconds = call_timed(agent.port, agent.origin, request)
                    assert json.loads(reply)["success"]
                    return seconds

                rows.append(("  lean client, to the reply", *measure_reported(sign_to_reply, args.calls)))
                again = len([q for q in askpass.questions() if q.startswith("password")])
                assert again == asked, "the agent asked again: the remembered key was not used"
        finally:
            agent.stop()
    print_table(f"create_pkcs7 with a remembered key, 1 KB document, {args.calls} calls each (ms)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
