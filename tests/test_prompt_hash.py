"""The password question's fingerprint of a binary document uses the hash the key's family really uses.

Through the real agent: a page signs a binary document with an RSA key and with an O'zDSt key (both minted by
`eimzo-agent dev mint-key`, whose files, like E-IMZO's, encrypt the certificates), and an askpass program records
the fingerprints the agent hands every dialog (EIMZO_AGENT_DOCUMENT_SHA256 / _OZDST, the same values the Tk dialog
shows as "Fingerprint (SHA-256)" / "Fingerprint (O'zDSt 1106)"). Before: the RSA key got an O'zDSt 1106 line it
never uses, and an O'zDSt key signing a document over 1 MiB got only SHA-256, a hash it never uses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import PASSWORD, AgentProcess, b64, mint, start_agent

from eimzo_agent.crypto import gost94
from eimzo_agent.crypto.gost94 import gost94_digest
from eimzo_agent.plugins.prompt_info import document_preview

#: Over the 1 MiB the O'zDSt fingerprint used to be limited to when the key's family was unknown.
BINARY = bytes(range(256)) * (5 * 1024 + 7)
#: Under it: where an RSA key used to get both lines.
SMALL = bytes(range(256)) * 64

ASKPASS = """#!/bin/sh
# Records the document fingerprints of each question (one JSON object a line), then answers the password.
dir="$(dirname "$0")"
printf '{"kind": "%s", "sha256": "%s", "ozdst": "%s"}\\n' "$EIMZO_AGENT_PROMPT_KIND" \\
  "$EIMZO_AGENT_DOCUMENT_SHA256" "$EIMZO_AGENT_DOCUMENT_OZDST" >> "$dir/questions"
cat "$dir/password"
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, Path]]:
    tmp = tmp_path_factory.mktemp("prompt-hash")
    root, ca = tmp / "flash", tmp / "ca"
    mint(ca, root, "ozdst", "--cn", "RAHIMOV JASUR", "--pinfl", "31505901234567")
    mint(ca, root, "rsa2048", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    askpass = tmp / "askpass"
    askpass.mkdir()
    (askpass / "password").write_text(PASSWORD + "\n")
    program = askpass / "askpass.sh"
    program.write_text(ASKPASS)
    program.chmod(0o755)
    process = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(program))
    try:
        yield process, askpass / "questions"
    finally:
        process.stop()


def _fingerprints_asked(agent: AgentProcess, log: Path, cn: str, document: bytes) -> dict[str, str]:
    log.unlink(missing_ok=True)
    entry = next(c for c in agent.call("list_all_certificates", plugin="pfx")["certificates"]
                 if f"cn={cn.lower()}" in c["alias"])
    key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                        plugin="pfx")["keyId"]
    reply = agent.call("create_pkcs7", b64(document), key_id, "no", plugin="pkcs7", timeout=120)
    assert reply["success"] is True, reply
    (question,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert question["kind"] == "password"
    return {name: value for name, value in question.items() if name != "kind" and value}


def test_an_rsa_key_is_shown_only_the_sha256_fingerprint(agent: tuple[AgentProcess, Path]) -> None:
    assert _fingerprints_asked(*agent, "ALIYEV VALI", SMALL) == {"sha256": hashlib.sha256(SMALL).hexdigest()}


def test_an_ozdst_key_is_shown_its_ozdst_1106_fingerprint_whatever_the_size(agent: tuple[AgentProcess, Path]) -> None:
    if not gost94.ACCELERATED and os.environ.get("CI") != "true":  # CI builds the C hash: it must run there
        pytest.skip("pure-Python GOST hashing: the O'zDSt fingerprint of an unknown key stops at 1 MiB by design")
    shown = _fingerprints_asked(*agent, "RAHIMOV JASUR", BINARY)
    assert len(BINARY) > 1024 * 1024
    # Its certificate is encrypted, so O'zDSt cannot be told from ECDSA before the password: SHA-256 is shown too.
    assert shown == {"ozdst": gost94_digest(BINARY).hex(), "sha256": hashlib.sha256(BINARY).hexdigest()}


def test_a_known_family_gets_exactly_its_own_hash() -> None:
    assert [name for name, _ in document_preview(BINARY, "ozdst").fingerprints] == ["O'zDSt 1106"]
    assert [name for name, _ in document_preview(BINARY, "other").fingerprints] == ["SHA-256"]
