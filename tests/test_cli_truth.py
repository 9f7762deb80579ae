"""The CLI tells the truth (issue 15, "CLI and docs"): `keys` sees the demo keys with their algorithm and names
as on the certificate; `journal --json | head -1` and SIGTERM with open tabs end without a traceback;
`--version` works. Everything runs the real CLI as a subprocess, with real pipes and a real agent."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_harness import mint, start_agent
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from eimzo_agent.config import user_data_path
from eimzo_agent.policy.journal import JOURNAL_FILE

NO_SYSTEM_KEYS = "[keys]\nscan_system_locations = false\n"


def cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args, *extra], capture_output=True, text=True,
                          timeout=120, check=False)


def test_version_option_prints_what_the_version_command_prints() -> None:
    option, command = cli("--version"), cli("version")
    assert option.returncode == command.returncode == 0
    assert option.stdout == command.stdout and option.stdout.startswith("eimzo-agent ")


def test_keys_demo_lists_what_serve_demo_serves(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(NO_SYSTEM_KEYS)
    agent = start_agent(tmp_path / "agent", "--demo", config=NO_SYSTEM_KEYS)
    try:
        served = agent.call("list_all_certificates", plugin="pfx")["certificates"]
    finally:
        agent.stop()
    assert len(served) == 6
    assert json.loads(cli("keys", "--json", config=config).stdout)["keys"] == []  # without --demo: not there
    listing = json.loads(cli("keys", "--demo", "--json", config=config).stdout)
    rows = {row["name"]: row for row in listing["keys"]}
    assert sorted(rows) == sorted(c["name"] for c in served)
    assert {row["alias"] for row in rows.values()} == {c["alias"] for c in served}
    employee = rows["DS412345678901240001"]
    assert employee["cn"] == "KARIMOVA NODIRA BAXTIYOROVNA" and employee["org"] == "Yangi Texnologiyalar, MChJ"
    assert employee["alias"].startswith("cn=karimova nodira baxtiyorovna,")  # the alias itself stays as stored
    assert employee["legal_entity"] is True and "is_legal_entity" not in employee
    assert rows["DS312345678901230001"]["legal_entity"] is False
    assert sorted(row["algorithm"] for row in rows.values()) == ["ECDSA P-256", "O'zDSt", "O'zDSt", "RSA 2048",
                                                               "RSA 2048", "RSA 2048"]
    text = cli("keys", "--demo", config=config).stdout
    assert "KARIMOVA NODIRA BAXTIYOROVNA" in text and "organisation: Yangi Texnologiyalar, MChJ" in text
    assert text.count("algorithm: RSA 2048") == 3 and text.count("algorithm: O'zDSt") == 2


def test_keys_shows_the_algorithm_of_other_key_files(tmp_path: Path) -> None:
    root = tmp_path / "flash"
    files = {alg: mint(tmp_path / "ca", root / "DSKEYS", alg, "--cn", f"Test {alg}", "--pinfl", pinfl)
             for alg, pinfl in (("p256", "41234567890123"), ("rsa2048", "51234567890123"))}
    config = tmp_path / "c.toml"
    config.write_text(NO_SYSTEM_KEYS)
    rows = {row["name"]: row for row in json.loads(cli("keys", "--json", "--key-root", str(root),
                                                       config=config).stdout)["keys"]}
    # Without the password the certificates are encrypted: RSA is told by its size, EC keys only as EC
    # (O'zDSt keys too; `dev mint-key --alg ozdst` is left out here, it fails now and then: see the report).
    assert rows[files["rsa2048"].stem]["algorithm"] == "RSA 2048"
    assert rows[files["p256"].stem]["algorithm"] == "EC (O'zDSt or ECDSA; certificate encrypted)"
    assert rows[files["rsa2048"].stem]["cn"] == "TEST RSA2048"  # from the lower-cased alias: shown upper-case


def test_journal_json_into_head_ends_without_a_traceback(tmp_path: Path) -> None:
    journal = user_data_path() / JOURNAL_FILE
    journal.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": "2026-01-01T10:00:00+00:00", "site": "https://my.gov.uz", "operation":
                       "pkcs7.create_pkcs7", "certificate_serial": "1f", "owner": "ALIYEV VALI",
                       "content_sha256": "ab" * 32, "result": "signed"})
    journal.write_text((line + "\n") * 5000)  # far more than a pipe buffer holds
    for args in ("journal --json", "journal"):
        result = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {sys.executable} -m eimzo_agent {args} | head -1"],
            capture_output=True, text=True, timeout=60, check=False)
        assert result.stderr == "", result.stderr
        assert result.stdout.count("\n") == 1 and "https://my.gov.uz" in result.stdout
        assert result.returncode == 141  # as a program SIGPIPE ended: 128 + 13


SLOW_ASKPASS = """#!/bin/sh
echo $$ > "$(dirname "$0")/asked"
exec sleep 60
"""


def test_sigterm_with_open_tabs_exits_cleanly(tmp_path: Path) -> None:
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(SLOW_ASKPASS)
    askpass.chmod(0o755)
    agent = start_agent(tmp_path / "agent", "--askpass", str(askpass))
    try:
        with contextlib.ExitStack() as stack:
            tabs = [stack.enter_context(connect(agent.url, origin=agent.origin, open_timeout=10)) for _ in range(3)]
            waiting = stack.enter_context(connect(agent.url, origin="https://portal.example.uz", open_timeout=10))
            tabs.append(waiting)
            waiting.send(json.dumps({"plugin": "pfx", "name": "list_disks", "arguments": []}))
            deadline = time.monotonic() + 20
            while not (tmp_path / "asked").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # the consent question is open (askpass running)
            assert (tmp_path / "asked").exists(), agent.log()
            agent.process.send_signal(signal.SIGTERM)
            assert agent.process.wait(15) == 0
            for tab in tabs:
                try:
                    tab.recv(5)
                    raise AssertionError("a tab got a frame instead of the close")
                except ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 1001, closed
    finally:
        agent.stop()
    log = agent.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    pid = int((tmp_path / "asked").read_text())
    try:  # the open question's askpass program went with the agent
        os.kill(pid, 0)
        raise AssertionError(f"askpass {pid} still running")
    except ProcessLookupError:
        pass


def test_algorithm_names_from_readable_certificates(tmp_path: Path) -> None:
    """The names `keys` gives when a certificate is readable (tokens, demo keys, files with plain cert bags)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    from eimzo_agent.cli.keys import algorithm_label
    from eimzo_agent.dev.mint import ensure_dev_ca
    from eimzo_agent.dev.ozdst_ca import ensure_ozdst_ca

    dev_ca = ensure_dev_ca(tmp_path / "ca")
    p256 = asn1_x509.Certificate.load(dev_ca.certificate.public_bytes(serialization.Encoding.DER))
    assert algorithm_label(p256) == "ECDSA P-256"
    assert algorithm_label(ensure_ozdst_ca(tmp_path / "ca").certificate) == "O'zDSt"
