"""docs/js-client.md as a portal developer reads it: the "ten lines" example run verbatim, and what the doc promises.

The example is taken from the doc as it stands, put in a page served from `http://localhost:PORT/` (with the
client module at `/js/eimzo-agent.mjs`, where the example imports it, and an `/api/signed` that takes the POST) and
run in Debian's Chromium (playwright-core, tests/browser/js-client-doc.mjs) against a real agent (`serve --demo`,
the password from an askpass program). The example uses the client's default address, ws://127.0.0.1:64646, so
the agent must listen on the default ports: the whole run (agent, page server, Chromium) happens in a private
network namespace (`unshare --net`; other users than root get a user namespace with `--map-root-user`), where
those ports are free whatever runs on the machine. This module is also the program run inside it
(`python tests/test_js_client_doc.py inside CONFIG`). The posted signature is checked with `openssl cms -verify`
against the demo CA.

Needs node, /usr/bin/chromium, `npm ci` and unshare; EIMZO_AGENT_SKIP_BROWSER=1 skips on a machine without a
browser, as tests/test_browser_e2e.py does.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_harness import http_exchange, make_askpass, start_agent
from needs import require_browser_tools, skip_or_fail_on_ci

from eimzo_agent.dev.demo import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "js-client.md"
SCRIPT = REPO / "tests" / "browser" / "js-client-doc.mjs"
CLIENT = REPO / "browser_js" / "eimzo-agent.mjs"
BUDGET_SECONDS = 90


def ten_lines() -> str:
    """The doc's example, exactly as printed: the first html block under "## Ten lines"."""
    section = DOC.read_text().split("## Ten lines", 1)[1]
    match = re.search(r"```html\n(.*?)```", section, re.S)
    assert match, "docs/js-client.md has no html example under '## Ten lines'"
    return match.group(1)


# --- inside the network namespace ----------------------------------------------------------------------------------

def _loopback_up() -> None:
    """A new network namespace has its loopback down; SIOCSIFFLAGS brings it up (no dependency on iproute2)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


class _Portal(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        if self.path == "/js/eimzo-agent.mjs":
            self._answer(200, "text/javascript; charset=utf-8", CLIENT.read_bytes())
        elif self.path == "/":
            self._answer(200, "text/html; charset=utf-8", self.page)
        else:
            self._answer(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(204, "text/plain", b"")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def inside(config_file: Path) -> int:
    """Run the example once; print one JSON line with what the page posted and what the agent asked."""
    config = json.loads(config_file.read_text())
    tmp = Path(config["tmp"])
    _loopback_up()
    askpass = make_askpass(tmp)
    askpass.answer(config["password"])
    agent = start_agent(tmp / "agent", "--demo", "--askpass", str(askpass.program), "--ws-port", "64646",
                        "--wss-port", "64443", env=dict(os.environ))
    portal = ThreadingHTTPServer(("127.0.0.1", 0), type("Portal", (_Portal,), {"page": config["page"].encode()}))
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    try:
        browser = subprocess.run(["node", str(SCRIPT), f"http://localhost:{portal.server_address[1]}/"],
                                 cwd=REPO, capture_output=True, text=True, timeout=BUDGET_SECONDS, check=False)
        lines = [line for line in browser.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"event": "error", "message": browser.stderr[-3000:]}
        result.update(agentPort=agent.port, questions=askpass.questions(), agentLog=agent.log()[-3000:])
    finally:
        portal.shutdown()
        portal.server_close()
        agent.stop()
    print(json.dumps(result))
    return 0


# --- the tests -----------------------------------------------------------------------------------------------------


def _namespace_command() -> list[str] | None:
    """unshare's arguments for a private network namespace, or None when this user cannot have one."""
    command = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else None


def test_the_ten_lines_example_signs_on_localhost_as_written(tmp_path_factory: pytest.TempPathFactory) -> None:
    require_browser_tools("unshare", "openssl")
    namespace = _namespace_command()
    if namespace is None:
        skip_or_fail_on_ci("no private network namespace for this user (unshare --user --net refused)")
    started = time.monotonic()
    tmp_path = tmp_path_factory.mktemp("jsdoc")  # short: Chromium's socket path under TMPDIR has a length limit
    example = ten_lines()
    page = f"<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<title>Ten lines</title>\n{example}"
    home = tmp_path / "user"
    home.mkdir()
    (tmp_path / "tmp").mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "EIMZO_AGENT_ASKPASS", "LC_ALL", "LANGUAGE")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"), LANG="C.UTF-8",
               EIMZO_AGENT_SYSTEM_CONFIG=os.devnull, TMPDIR=str(tmp_path / "tmp"),
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tmp": str(tmp_path), "page": page, "password": DEMO_PASSWORD}))
    run = subprocess.run([*namespace, sys.executable, __file__, "inside", str(config)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=BUDGET_SECONDS + 60, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["event"] == "result", f"{result.get('message')}\nagent log:\n{result['agentLog']}"
    assert result["pageErrors"] == [], f"the example failed in the page: {result['pageErrors']}"
    assert result["agentPort"] == 64646, "the example talks to the default port"
    (question,) = result["questions"]  # the password; a page on this machine is never asked about
    assert question.startswith("password 1 http://localhost:"), result["questions"]
    # The signature the page posted: attached, over the example's text, by a demo key, verified by OpenSSL.
    text = re.search(r"agent\.sign\(key, '([^']*)'", example)
    assert text, "the example signs a text literal"
    p7s, out = tmp_path / "sig.p7s", tmp_path / "content.bin"
    p7s.write_bytes(base64.b64decode(result["posted"]))
    ca = home / "data" / "eimzo-agent" / "demo" / "ca" / "ca.crt.pem"
    verified = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s),
                               "-CAfile", str(ca), "-out", str(out)], capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    assert out.read_bytes() == text.group(1).encode()
    assert time.monotonic() - started < BUDGET_SECONDS


def test_the_agent_serves_e_imzo_client_js_beside_e_imzo_js(tmp_path: Path) -> None:
    """A portal that swaps the vendor's two script tags for the agent's finds both at the vendor's file names."""
    agent = start_agent(tmp_path)
    try:
        for path, source in (("/e-imzo.js", "browser_js/compat/e-imzo.js"),
                             ("/e-imzo-client.js", "browser_js/compat/e-imzo-client.js")):
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n\r\n".encode()
            status, headers, body = http_exchange(agent.port, request)
            assert status == 200, path
            assert headers["content-type"] == "text/javascript; charset=utf-8"
            assert body == (REPO / source).read_bytes()
    finally:
        agent.stop()
    assert b"EIMZOClient" in body


def test_every_error_code_the_client_produces_is_documented() -> None:
    """The doc's error table names each `code` the client can give a rejection, and no code it never gives."""
    source = CLIENT.read_text()
    produced = set(re.findall(r"code: '([A-Z_]+)'", source)) | set(re.findall(r"return '([A-Z_]+)';", source))
    produced -= {"ERROR"}  # EimzoError's fallback; every subclass sets its own
    section = DOC.read_text().split("**Errors.**", 1)[1].split("\n\n**", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", section))
    assert produced == documented, (produced, documented)
    # The messages in the table are checked against the client's real ones by browser_js/test/errors-doc.test.mjs.


if __name__ == "__main__" and sys.argv[1:2] == ["inside"]:
    sys.exit(inside(Path(sys.argv[2])))
