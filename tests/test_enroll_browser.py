"""Getting a key online, end to end: the demo portal's enroll page in Chromium, the real agent, the dev registration
service, and the written key signing.

`tests/browser/enroll.mjs` drives the page (form → pki.enroll_pfx_step1 → POST /issue → pki.enroll_pfx_step2 →
key list → test signature) and prints JSON; this module starts the agent (askpass answers the enrollment questions:
the disk's number, the new password twice, then the new key's password for the test signature) and the
registration service in-process, and checks the result independently: the .pfx files on the "flash drive", their
aliases, and the signatures (OpenSSL for RSA; our verifier and the independent GOST check for O'zDSt).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from agent_harness import make_askpass, start_agent
from asn1crypto import cms, pem
from needs import require_browser_tools
from test_browser_e2e import _isolated_env, openssl_verify
from test_ozdst_e2e import signature_is_valid

from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.dev.registration_service import start_registration
from eimzo_agent.keys.pkcs12 import open_pfx

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "enroll.mjs"
NEW_PASSWORD = "Yangi-Kalit7Parol"
BUDGET_SECONDS = 150


def _dead_url() -> str:
    """A loopback port nothing listens on (bound and released: the kernel does not hand it out again at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, screenshot_dir: Path) -> dict:
    require_browser_tools("openssl")
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("enroll")
    home = tmp / "home"
    home.mkdir()
    env = _isolated_env(home, tmp)
    flash = tmp / "flash"
    flash.mkdir()
    askpass = make_askpass(tmp)
    askpass.answer("1", "choose_disk")
    askpass.answer(NEW_PASSWORD, "new_password")
    askpass.answer(NEW_PASSWORD, "repeat_new_password")
    askpass.answer(NEW_PASSWORD)  # the test signature with the new key
    agent = start_agent(tmp / "agent", "--key-root", str(flash), "--askpass", str(askpass.program), env=env)
    ra_url, stop_ra = start_registration(tmp / "ca")
    try:
        config = tmp / "enroll-config.json"
        config.write_text(json.dumps({
            "agentPort": agent.port, "raUrl": ra_url, "deadUrl": _dead_url(), "askpassDir": str(askpass.directory),
            "screenshot": str(screenshot_dir / "demo-enroll.png"),
        }))
        result = subprocess.run(["node", str(SCRIPT), str(config)], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=BUDGET_SECONDS, check=False)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert lines and lines[-1]["event"] == "result", f"{result.stdout}\n{result.stderr}\n{agent.log()}"
        yield {"result": lines[-1], "flash": flash, "ca": tmp / "ca", "questions": askpass.questions(),
               "seconds": time.monotonic() - started, "tmp": tmp}
    finally:
        stop_ra()
        agent.stop()


def _pfx_files(flash: Path) -> dict[str, Path]:
    return {p.name: p for p in (flash / "DSKEYS").glob("*.pfx")}


def test_the_demo_portal_links_to_the_page_and_back(run: dict) -> None:
    result = run["result"]
    assert result["title"] == "eimzo-agent — получение ключа онлайн"
    assert result["back"].startswith("./")
    assert result["defaultAlg"] == "OZDST-1092-2009-2"
    assert result["pageErrors"] == []


def test_failures_are_explained(run: dict) -> None:
    result = run["result"]
    assert result["cancelled"]["done"] is None
    assert result["cancelled"]["error"] == "Отменено: ключ не создан."
    assert result["unreachable"]["error"].startswith("Служба регистрации не отвечает (http://127.0.0.1:")
    assert result["unreachable"]["steps"] == ["done", "failed"]  # the key pair was made, the request not issued
    assert result["noAgent"]["error"] == "Агент не запущен: запустите его командой «eimzo-agent serve --demo»."
    # Only the two successful runs wrote files.
    assert sorted(_pfx_files(run["flash"])) == ["DS312345678901230001.pfx", "DS412345678901240001.pfx"]
    kinds = [line.split()[0] for line in run["questions"]]
    assert kinds[:1] == ["choose_disk"] and "consent" not in kinds


@pytest.mark.parametrize(("run_name", "file_name", "cn"), [
    ("ozdst", "DS312345678901230001.pfx", "qo'chqorov vali"),
    ("rsa", "DS412345678901240001.pfx", "karimova nodira"),
])
def test_new_key_is_written_listed_and_signs(run: dict, tmp_path: Path, run_name: str, file_name: str,
                                             cn: str) -> None:
    outcome, signed = run["result"][run_name], run["result"][f"{run_name}Sign"]
    assert outcome["error"] is None, outcome
    assert outcome["steps"] == ["done", "done", "done"]
    path = _pfx_files(run["flash"])[file_name]
    # The file opens in our reader with the new password; its alias is the one the page shows as new.
    new_rows = [row for row in outcome["keys"] if row["isNew"]]
    assert len(new_rows) == 1 and new_rows[0]["alias"].startswith(f"cn={cn},")
    alias = new_rows[0]["alias"]
    key = open_pfx(path.read_bytes(), NEW_PASSWORD)
    assert key.alias == alias
    assert f"{run['flash']}/DSKEYS" in outcome["done"] and alias in outcome["done"]
    assert file_name in new_rows[0]["text"]
    assert signed["state"] == "signed", signed
    signature = base64.b64decode(signed["pkcs7"])
    signed_data = cms.ContentInfo.load(signature)["content"]
    assert key.certificate.dump() in [c.chosen.dump() for c in signed_data["certificates"]]
    assert key.certificate.subject.native["common_name"].lower() == cn
    document = signed["text"].encode()
    if run_name == "rsa":
        assert openssl_verify(tmp_path, run["ca"] / "ca.crt.pem", signed["pkcs7"]) == document
        assert "Qol qoyıldı" in signed["status"]
    else:
        root = pem.unarmor((run["ca"] / "ozdst" / "ca.crt.pem").read_bytes())[2]
        report = verify_cms(signature, trust_anchors=[root])
        assert report.valid and report.content == document, report
        info = signed_data["signer_infos"][0]
        assert signature_is_valid(document, info["signed_attrs"].untag().dump(), info["signature"].native,
                                  key.certificate)  # the independent GOST check (gostcrypto)
        assert "Imzolandi" in signed["status"]


def test_budget(run: dict) -> None:
    # Not a speed target: a hang (a dialog waiting forever) must not eat the CI's half hour.
    assert run["seconds"] < BUDGET_SECONDS
    assert os.path.isdir(run["tmp"])
