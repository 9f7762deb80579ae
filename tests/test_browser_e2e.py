"""The bundled JS client and the demo portal in a real browser: Debian's Chromium driven by playwright-core.

`tests/browser/e2e.mjs` does the browser part and prints JSON; this module starts the real agent
(`serve --demo`, passwords from an askpass program) and a portal's web server on 127.0.0.1, answers the script's
"stop the agent now", and checks what came back — every signature with `openssl cms -verify` against the demo CA.
The demo page's screenshot, demo-portal.png, goes to a temporary folder (docs/screenshots/ only when
scripts/refresh-screenshots.sh runs this).

Needs node, /usr/bin/chromium and `npm ci` (scripts/bootstrap.sh --test installs them). Missing tools fail the
suite; set EIMZO_AGENT_SKIP_BROWSER=1 to skip these tests on a machine without a browser.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, make_askpass, start_agent
from needs import require_browser_tools

from eimzo_agent.dev.demo import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "e2e.mjs"
COMPAT_PAGE = REPO / "tests" / "browser" / "compat-page.html"
SANDBOX_PAGE = REPO / "tests" / "browser" / "sandbox-page.html"
NULL_KEY = json.loads((REPO / "tests" / "data" / "eimzo-kat.json").read_text())["eimzo_api_keys"]["keys"]["null"]
TEXT = "Shartnoma № 17: ijara to'lovi 1 200 000 so'm. Договор аренды. Qaraqalpaqsha: ǵ ń ú."
#: A binary document (not valid UTF-8), as a chosen file would be; 400 KB, so that the attached signature's reply
#: (≈ 540 K characters) reaches the page as a fragmented WebSocket message.
FILE_BYTES = bytes(range(256)) * 1600 + "\nariza.pdf — ариза\n".encode()
#: The whole browser part must stay well under two minutes.
BUDGET_SECONDS = 120


@dataclass
class BrowserRun:
    result: dict[str, Any]
    demo_ca: Path
    agent_lines: list[str]
    seconds: float
    started: float
    screenshot: Path
    #: What the agent asked the person (askpass log lines "<kind> <attempt> <site>").
    questions: list[str]



class _Portal(BaseHTTPRequestHandler):
    """A portal's web server on 127.0.0.1: serves the classic-flow page, and is "another program" on its port."""

    pages: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, b"<!DOCTYPE html><h1>Some portal</h1>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _isolated_env(home: Path, tmp: Path) -> dict[str, str]:
    """The agent's and node's environment; TMPDIR too, so Chromium's profile folder never lands in the real /tmp."""
    env = dict(os.environ)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "EIMZO_AGENT_ASKPASS", "LC_ALL", "LANGUAGE"):
        env.pop(var, None)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        EIMZO_AGENT_SYSTEM_CONFIG=os.devnull,
        LANG="C.UTF-8",
        TMPDIR=str(tmp / "tmp"),
    )
    (tmp / "tmp").mkdir()
    return env


def _drive(process: subprocess.Popen[str], agent: AgentProcess, deadline: float) -> dict[str, Any]:
    """Read the script's JSON lines, stop the agent when asked, return its final message."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the browser script ran out of time")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError("the browser script ran out of time") from None
        if line is None:
            raise AssertionError(f"the browser script ended without a result (exit {process.wait()})")
        try:
            message = json.loads(line)
        except ValueError:
            continue  # not one of ours
        if message.get("event") == "stop-agent":
            agent.stop()
            assert process.stdin is not None
            process.stdin.write("stopped\n")
            process.stdin.flush()
        elif message.get("event") in ("result", "error"):
            return message


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, screenshot_dir: Path) -> Iterator[BrowserRun]:
    require_browser_tools()
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("browser")
    home = tmp / "home"
    home.mkdir()
    env = _isolated_env(home, tmp)
    askpass = make_askpass(tmp)
    askpass.answer(DEMO_PASSWORD)
    # An earlier agent version approved "null" (the vendor's key for it) and saved it: it must count for nothing.
    approved = home / "data" / "eimzo-agent" / "approved-domains.json"
    approved.parent.mkdir(parents=True)
    approved.write_text(json.dumps({"version": 1, "domains": ["null"]}))
    # Exactly what a newcomer gets from `serve --demo` (the screenshot shows it), plus an askpass program.
    agent = start_agent(tmp / "agent", "--demo", "--askpass", str(askpass.program), env=env)
    process: subprocess.Popen[str] | None = None
    portal: ThreadingHTTPServer | None = None
    try:
        page = COMPAT_PAGE.read_text().replace("__AGENT_HTTP__", f"http://127.0.0.1:{agent.port}")
        page = page.replace("__AGENT_WS__", agent.url)
        sandbox = SANDBOX_PAGE.read_text().replace("__AGENT_WS__", agent.url).replace("__NULL_KEY__", NULL_KEY)
        portal_class = type("Portal", (_Portal,), {"pages": {"/compat.html": page.encode(),
                                                             "/sandbox.html": sandbox.encode()}})
        portal = ThreadingHTTPServer(("127.0.0.1", 0), portal_class)
        threading.Thread(target=portal.serve_forever, daemon=True).start()
        assert agent.process.stdout is not None
        agent_lines = [agent.process.stdout.readline(), agent.process.stdout.readline()]
        document = tmp / "ariza.pdf"
        document.write_bytes(FILE_BYTES)
        screenshot = screenshot_dir / "demo-portal.png"
        config = tmp / "browser-config.json"
        config.write_text(json.dumps({
            "agentPort": agent.port,
            "wssPort": agent.wss_port,
            "portalPort": portal.server_address[1],
            "text": TEXT,
            "file": str(document),
            "screenshot": str(screenshot),
            "clientModule": str(REPO / "browser_js" / "eimzo-agent.mjs"),
        }))
        stderr = tmp / "node-stderr.txt"
        with stderr.open("w") as stderr_file:
            process = subprocess.Popen(["node", str(SCRIPT), str(config)], cwd=REPO, env=env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file)
        try:
            message = _drive(process, agent, started + BUDGET_SECONDS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nnode stderr:\n{stderr.read_text()}") from None
        assert message["event"] == "result", f"{message.get('message')}\nagent log:\n{agent.log()}"
        # The script closes Chromium after its result; killing it halfway would leave the profile folder behind.
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=30) == 0, stderr.read_text()
        demo_ca = home / "data" / "eimzo-agent" / "demo" / "ca" / "ca.crt.pem"
        yield BrowserRun(message, demo_ca, agent_lines, time.monotonic() - started, started, screenshot,
                         askpass.questions())
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        agent.stop()
        if portal is not None:
            portal.shutdown()
            portal.server_close()


def openssl_verify(tmp: Path, ca: Path, pkcs7_64: str, content: bytes | None = None) -> bytes:
    der = base64.b64decode(pkcs7_64)
    p7s, out = tmp / "sig.p7s", tmp / "out.bin"
    p7s.write_bytes(der)
    command = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s), "-CAfile", str(ca),
               "-out", str(out)]
    if content is not None:
        (tmp / "content.bin").write_bytes(content)
        command += ["-content", str(tmp / "content.bin")]
    verified = subprocess.run(command, capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    assert "Verification successful" in verified.stderr
    return out.read_bytes()


def test_serve_demo_prints_the_password_and_the_demo_address(run: BrowserRun) -> None:
    made, address = run.agent_lines
    assert "6 demo keys made in" in made and f"password: {DEMO_PASSWORD}" in made
    assert address.startswith("demo: open http://127.0.0.1:") and address.rstrip().endswith("/demo/ in a browser")


def test_demo_page_lists_keys_with_owner_ids_validity_and_kind(run: BrowserRun) -> None:
    demo = run.result["demo"]
    assert demo["diagnosis"] == "ok"
    assert "Imzolash agenti ishlamoqda" in demo["diagnosisText"]
    assert "eimzo-agent" in demo["version"] and "E-IMZO 6.4.7" in demo["version"]
    keys = {k["text"].split(" ")[0]: k for k in demo["keys"]}
    assert list(keys) == ["ALIYEV", "KARIMOVA", "QODIROV", "RAHIMOVA", "SAIDOV", "TOSHMATOV"], "valid keys first"
    individual, legal, expired = keys["ALIYEV"], keys["KARIMOVA"], keys["TOSHMATOV"]
    assert individual["type"] == "individual" and not individual["expired"]
    assert "31234567890123 / 512345678" in individual["text"] and "Jismoniy shaxs" in individual["text"]
    assert legal["type"] == "legal" and "Yuridik shaxs" in legal["text"]
    assert "YANGI TEXNOLOGIYALAR, MCHJ" in legal["text"], "the escaped comma in the alias is read correctly"
    assert "STIR 301234567" in legal["text"] and "DIREKTOR" in legal["text"]
    assert expired["expired"] and expired["disabled"] and "Muddati o'tgan" in expired["text"]
    assert not individual["disabled"] and not legal["disabled"]
    assert demo["languages"] == {"kaa": "Giltler", "ru": "Ключи", "uz": "Kalitlar"}


def test_demo_page_signs_text_and_a_file_attached_and_detached(run: BrowserRun, tmp_path: Path) -> None:
    signatures = run.result["signatures"]
    assert [(s["kind"], s["mode"]) for s in signatures] == [
        ("text", "attached"), ("text", "detached"), ("file", "attached"), ("file", "detached")]
    for signature in signatures:
        assert (signature["shownKind"], signature["shownMode"]) == (signature["kind"], signature["mode"])
        document = TEXT.encode() if signature["kind"] == "text" else FILE_BYTES
        der = base64.b64decode(signature["pkcs7"])
        if signature["mode"] == "attached":
            assert openssl_verify(tmp_path, run.demo_ca, signature["pkcs7"]) == document
            assert signature["signer"]["content"] == f"imzo ichida, {len(document)} bayt"
        else:
            assert document not in der
            openssl_verify(tmp_path, run.demo_ca, signature["pkcs7"], content=document)
            assert signature["signer"]["content"] == "imzoda yo'q (ajratilgan imzo)"
        # The page's own DER decoding shows the signer: the chosen key's certificate.
        signer = signature["signer"]
        assert signer["serial"] == signature["serial"]
        assert signer["issuer"] == "CN=eimzo-agent dev CA"
        assert signer["digest"] == "SHA-256" and signer["signatureAlgorithm"] == "SHA-256 with RSA"
        assert "PINFL=" in signer["subject"] and "C=UZ" in signer["subject"]
        assert len(signer["signingTime"]) == len("23.11.2026 20:36:10")
    legal_file = signatures[2]["signer"]["subject"]
    assert "CN=KARIMOVA NODIRA BAXTIYOROVNA" in legal_file and "O=Yangi Texnologiyalar\\, MChJ" in legal_file


def test_compat_globals_run_the_classic_e_imzo_client_flow(run: BrowserRun, tmp_path: Path) -> None:
    compat = run.result["compat"]
    assert "error" not in compat, compat.get("error")
    assert compat["steps"] == ["checkVersion", "installApiKeys", "listAllUserKeys", "loadKey", "createPkcs7",
                               "createPkcs7 detached"]
    assert compat["version"] == ["6", "4"] and compat["flags"] == [True, True, True]
    items = {item["CN"]: item for item in compat["items"]}
    # The expired key is listed too: e-imzo-client.js leaves that to the portal (vo.validTo).
    assert set(items) == {"ALIYEV VALI ANVAROVICH", "KARIMOVA NODIRA BAXTIYOROVNA", "TOSHMATOV ESHMAT",
                          "QODIROV JASUR BAHODIROVICH", "RAHIMOVA DILNOZA SHAVKATOVNA", "SAIDOV BOBUR ALISHEROVICH"}
    assert compat["firstId"] is None
    for item in compat["items"]:
        assert item["type"] == "pfx" and item["validToValid"]
        assert item["id"].startswith(f"itm-{item['serialNumber']}-")
        assert item["serialNumber"] == item["serialNumber"].upper()
    assert [int(i["id"].rsplit("-", 1)[1]) for i in compat["items"]] == sorted(
        int(i["id"].rsplit("-", 1)[1]) for i in compat["items"])
    legal = items["KARIMOVA NODIRA BAXTIYOROVNA"]
    assert legal["O"] == "YANGI TEXNOLOGIYALAR, MCHJ" and legal["TIN"] == "301234567" and legal["UID"] == "498765432"
    assert items["ALIYEV VALI ANVAROVICH"]["TIN"] == "512345678"
    assert len(compat["keyId"]) == 32
    assert openssl_verify(tmp_path, run.demo_ca, compat["attached"]) == compat["text"].encode()
    openssl_verify(tmp_path, run.demo_ca, compat["detached"], content=compat["text"].encode())


def test_a_sandboxed_frame_gets_a_question_never_a_silent_key_list(run: BrowserRun) -> None:
    """Issue #10's first "High": the "null" API key had approved every sandboxed iframe on the Internet."""
    sandboxed = run.result["sandboxed"]
    assert sandboxed["origin"] == "null"
    apikey, first, second = sandboxed["replies"]
    assert apikey["success"] is True  # the vendor's key for "null" is genuine, it just approves nothing
    for listing in (first, second):
        assert listing["success"] is False and "certificates" not in listing, listing
        assert listing["status"] == -1022
    # The person was asked each time (the test's askpass answers "deny"); no password was ever asked for.
    assert [q for q in run.questions if q.endswith(" null")] == ["consent 1 null", "consent 1 null"]


def test_diagnose_tells_the_failures_apart_in_the_browser(run: BrowserRun) -> None:
    diagnose = run.result["diagnose"]
    assert diagnose["running"]["status"] == "ok" and diagnose["running"]["agent"] == "eimzo-agent"
    # wss with the agent's certificate not trusted by this browser profile, while ws answers.
    untrusted = diagnose["untrustedTls"]
    assert untrusted["status"] == "tls-untrusted", untrusted
    assert untrusted["checks"]["plainHttp"]["agent"] == "eimzo-agent"
    other = diagnose["otherProgram"]
    assert other["status"] == "port-busy", other
    assert other["checks"]["http"]["outcome"] == "opaque"  # answers HTTP, but without CORS: not an agent


def test_diagnose_sees_local_network_access_on_public_portals(run: BrowserRun) -> None:
    """Chromium's Local Network Access, for real: pages of a public site reaching the agent on 127.0.0.1."""
    diagnose = run.result["diagnose"]
    # An http:// public page may not reach the local machine at all; Chromium reports the permission as denied.
    assert diagnose["publicHttp"]["status"] == "insecure-page", diagnose["publicHttp"]
    assert diagnose["publicHttp"]["permission"] == "denied" and diagnose["publicHttp"]["secure"] is False
    # An https:// page must ask first (headless Chromium dismisses the prompt: the request fails at once).
    assert diagnose["publicHttpsGranted"]["secure"] is True
    assert diagnose["publicHttps"]["status"] == "lna-prompt", diagnose["publicHttps"]
    assert diagnose["publicHttps"]["permission"] == "prompt"
    assert "Разрешить" in diagnose["publicHttps"]["message"]
    # Once allowed, the page reaches the agent (ws:// from https); the agent then wants the site's API key.
    granted = diagnose["publicHttpsGranted"]
    assert granted["status"] == "ok" and granted["permission"] == "granted", granted
    assert granted["listKeysError"] == {"name": "AgentError", "code": "DOMAIN_NOT_ALLOWED", "status": -1022,
                                        "reason": granted["listKeysError"]["reason"]}
    assert "portal.example.uz" in granted["listKeysError"]["reason"]


def test_diagnose_reports_not_running_once_the_agent_is_stopped(run: BrowserRun) -> None:
    stopped = run.result["stopped"]
    assert stopped["shownStatus"] == "not-running"
    assert "ishga tushirilmagan" in stopped["shownText"]
    assert stopped["direct"]["status"] == "not-running", stopped["direct"]
    assert stopped["direct"]["message"].startswith("Агент подписи (eimzo-agent или E-IMZO) не запущен")
    assert stopped["direct"]["checks"]["websocket"]["opened"] is False


def test_demo_screenshot_is_written(run: BrowserRun) -> None:
    data = run.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1200 and height > 900  # the full page: status, keys, signing form, result
    # Written by this run (a refresh into docs/screenshots/ must not pass on the previous picture).
    assert run.screenshot.stat().st_mtime >= time.time() - (time.monotonic() - run.started) - 1


def test_no_page_errors_and_within_budget(run: BrowserRun) -> None:
    assert run.result["pageErrors"] == []
    assert run.seconds < BUDGET_SECONDS, run.result["timings"]
