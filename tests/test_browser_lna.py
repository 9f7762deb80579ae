"""Chromium's Local Network Access, for real: a public portal reaches the agent only with the admin's policy.

The portal is served over https as "portal.example.uz" from 127.0.0.2; Chromium resolves the name there
(`--host-resolver-rules`) and treats that address and port as the public internet
(`--ip-address-space-overrides=127.0.0.2:PORT=public`), so the page's connections to the agent on 127.0.0.1 are
local-network requests that Chromium gates. The agent itself lets the portal in (its test config allowlists the
domain): the browser's gate is the only one under test. `tests/browser/lna.mjs` runs Chromium twice:
1. without any policy: the page's `diagnose()` must report the local-network block ("lna-prompt": headless
   Chromium dismisses the permission prompt), not "not running", and `listKeys()` must fail;
2. after `eimzo-agent policy browser --site <portal origin> --out /etc/chromium/policies/managed` (the generator's
   file as it is, where Debian's Chromium reads managed policy): the page lists the keys and signs, and the
   signature verifies with `openssl cms -verify` against the demo CA.

The real /etc is never changed. node (and so Chromium and the policy command) run in a private mount namespace
(`unshare --mount --propagation private`, as root; other users get a user namespace with `--map-root-user` when
the kernel allows it, else the test is skipped) in which a temporary folder is bind-mounted over the policy
folder. Debian's chromium package ships /etc/chromium but not /etc/chromium/policies, so the mount goes over the
deepest folder that exists: /etc/chromium/policies when it does (an empty folder with managed/ in it, hiding any
policy of the machine), else /etc/chromium (a copy of its files plus policies/managed/). A mount point has to
exist, and creating one in /etc would change the machine. The test checks /etc/chromium is unchanged afterwards.

Needs node, /usr/bin/chromium, `npm ci` and unshare; EIMZO_AGENT_SKIP_BROWSER=1 skips on a machine without a
browser, as tests/test_browser_e2e.py does.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_harness import TEST_CONFIG, make_askpass, start_agent
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from needs import require_browser_tools, skip_or_fail_on_ci

from eimzo_agent.deploy.browser_policy import chromium_policy, parse_sites
from eimzo_agent.dev.demo import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "lna.mjs"
PAGE = REPO / "tests" / "browser" / "lna-portal.html"
CLIENT = REPO / "browser_js" / "eimzo-agent.mjs"
#: Where Debian's Chromium reads managed policy, and the folder of the package that always exists.
POLICY_DIR = Path("/etc/chromium/policies/managed")
CHROMIUM_ETC = Path("/etc/chromium")
PORTAL_HOST = "portal.example.uz"
#: An address of this machine that is not 127.0.0.1, so that only the portal is declared public.
PORTAL_ADDRESS = "127.0.0.2"
TEXT = "Ijara shartnomasi № 42: portal.example.uz orqali imzolandi. Подписано через портал."
BUDGET_SECONDS = 120


@dataclass
class LnaRun:
    result: dict[str, Any]
    origin: str
    demo_ca: Path
    questions: list[str]
    etc_before: list[tuple[str, int, float]]
    policy_source: Path
    seconds: float



def _namespace_command() -> list[str] | None:
    """unshare's arguments for a private mount namespace, or None when this user cannot have one."""
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--propagation", "private"]
    command = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else None


def _etc_listing() -> list[tuple[str, int, float]]:
    return sorted((str(p), p.lstat().st_size, p.lstat().st_mtime) for p in [CHROMIUM_ETC, *CHROMIUM_ETC.rglob("*")])


def _policy_mount(tmp: Path) -> tuple[Path, Path, Path]:
    """(folder to mount, where to mount it, where the policy folder is inside it): see the module docstring."""
    policies = POLICY_DIR.parent
    source = tmp / "policy-mount"
    if policies.is_dir():
        (source / "managed").mkdir(parents=True)
        return source, policies, source / "managed"
    if not CHROMIUM_ETC.is_dir():
        pytest.fail(f"{CHROMIUM_ETC} is missing: Debian's chromium package provides it")
    shutil.copytree(CHROMIUM_ETC, source, symlinks=True)
    inside = source / POLICY_DIR.relative_to(CHROMIUM_ETC)
    inside.mkdir(parents=True)
    return source, CHROMIUM_ETC, inside


def _portal_certificate(tmp: Path) -> tuple[Path, Path, str]:
    """A self-made certificate for the portal: (cert file, key file, base64 SHA-256 of its public key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PORTAL_HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(PORTAL_HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "portal.crt", tmp / "portal.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_file, key_file, base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _start_portal(tmp: Path, page: bytes) -> tuple[ThreadingHTTPServer, str]:
    """The portal's https server on 127.0.0.2: the signing page and the JS client module."""
    cert_file, key_file, spki = _portal_certificate(tmp)
    files = {"/": ("text/html; charset=utf-8", page),
             "/eimzo-agent.mjs": ("text/javascript; charset=utf-8", CLIENT.read_bytes())}

    class Portal(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = files.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((PORTAL_ADDRESS, 0), Portal)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, spki


def _environment(home: Path, tmp: Path) -> dict[str, str]:
    """The agent's and node's environment; TMPDIR too, so Chromium's profile folder never lands in the real /tmp."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "EIMZO_AGENT_ASKPASS", "LC_ALL", "LANGUAGE")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"),
               EIMZO_AGENT_SYSTEM_CONFIG=os.devnull, LANG="C.UTF-8", TMPDIR=str(tmp / "tmp"))
    (tmp / "tmp").mkdir()
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LnaRun]:
    require_browser_tools("unshare", "openssl")
    namespace = _namespace_command()
    if namespace is None:
        skip_or_fail_on_ci("no private mount namespace for this user (not root, and user namespaces are disabled)")
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("lna")
    home = tmp / "home"
    home.mkdir()
    env = _environment(home, tmp)
    askpass = make_askpass(tmp)
    askpass.answer(DEMO_PASSWORD)
    # The agent's own site gate lets the portal in; what is tested is the browser's.
    config = TEST_CONFIG + f'[sites]\nallowed_domains = ["{PORTAL_HOST}"]\nask_unknown_sites = false\n'
    agent = start_agent(tmp / "agent", "--demo", "--askpass", str(askpass.program), config=config, env=env)
    portal: ThreadingHTTPServer | None = None
    try:
        page = PAGE.read_text().replace("__AGENT_WS__", agent.url).replace("__TEXT__", json.dumps(TEXT))
        portal, spki = _start_portal(tmp, page.encode())
        port = portal.server_address[1]
        origin = f"https://{PORTAL_HOST}:{port}"
        source, target, policy_source = _policy_mount(tmp)
        etc_before = _etc_listing()
        script_config = tmp / "lna-config.json"
        script_config.write_text(json.dumps({
            "portalUrl": f"{origin}/",
            "publicEndpoint": f"{PORTAL_ADDRESS}:{port}",
            "hostRules": f"MAP {PORTAL_HOST} {PORTAL_ADDRESS}",
            "spki": spki,
            "policyDir": str(POLICY_DIR),
            "policyCommand": [sys.executable, "-m", "eimzo_agent", "policy", "browser", "--site", origin,
                              "--out", str(POLICY_DIR)],
        }))
        command = [*namespace, "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
                   str(source), str(target), "node", str(SCRIPT), str(script_config)]
        try:
            finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                      timeout=BUDGET_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the browser script ran out of time\n{exc.stderr!r}") from None
        messages = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith('{"event"')]
        assert messages, f"no result (exit {finished.returncode}):\n{finished.stdout}\n{finished.stderr}"
        message = messages[-1]
        assert message["event"] == "result", f"{message.get('message')}\nagent log:\n{agent.log()}"
        assert finished.returncode == 0, finished.stderr
        demo_ca = home / "data" / "eimzo-agent" / "demo" / "ca" / "ca.crt.pem"
        yield LnaRun(message, origin, demo_ca, askpass.questions(), etc_before, policy_source,
                     time.monotonic() - started)
    finally:
        agent.stop()
        if portal is not None:
            portal.shutdown()
            portal.server_close()


def test_without_a_policy_diagnose_reports_the_local_network_block(run: LnaRun) -> None:
    unmanaged = run.result["unmanaged"]
    assert unmanaged["origin"] == run.origin and unmanaged["secure"] is True
    assert run.result["policyBefore"] == [], "the browser must start without any managed policy"
    diagnosis = unmanaged["diagnosis"]
    # Headless Chromium dismisses the permission prompt: the permission stays "prompt", every request fails.
    assert unmanaged["permissions"]["loopback-network"] == "prompt", unmanaged["permissions"]
    assert diagnosis["status"] == "lna-prompt", diagnosis
    assert diagnosis["permission"] == "prompt"
    assert diagnosis["checks"]["websocket"]["outcome"] == "failed"
    assert diagnosis["checks"]["websocket"]["opened"] is False
    # The person is told what to choose; the admin which policy to set, and the exact command for this portal.
    assert "Разрешить" in diagnosis["message"]
    for text in diagnosis["messages"].values():
        assert "LocalNetworkAccessAllowedForUrls" in text
        assert f"eimzo-agent policy browser --site {run.origin}" in text
    assert diagnosis["admin"] == {
        "site": run.origin,
        "policies": ["LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls"],
        "command": f"eimzo-agent policy browser --site {run.origin}",
    }


def test_without_a_policy_the_portal_cannot_reach_the_agent(run: LnaRun) -> None:
    unmanaged = run.result["unmanaged"]
    assert "keys" not in unmanaged and "signed" not in unmanaged
    assert unmanaged["error"]["name"] == "AgentUnavailableError", unmanaged["error"]
    assert unmanaged["error"]["code"] == "UNAVAILABLE"


def test_the_policy_file_is_the_generators_output_in_the_managed_folder(run: LnaRun) -> None:
    policy = run.result["policy"]
    assert policy["stdout"] == str(POLICY_DIR / "eimzo-agent.json")
    assert policy["files"] == ["eimzo-agent.json"]
    assert json.loads(policy["content"]) == chromium_policy(parse_sites([run.origin]))
    # Written through the mount: it landed in the test's folder.
    assert json.loads((run.policy_source / "eimzo-agent.json").read_text()) == json.loads(policy["content"])


def test_with_the_policy_the_portal_lists_keys_and_signs(run: LnaRun, tmp_path: Path) -> None:
    managed = run.result["managed"]
    assert managed["diagnosis"]["status"] == "ok", managed["diagnosis"]
    # The policy shows through the Permissions API too: what diagnose() relies on in the other direction.
    assert managed["permissions"]["loopback-network"] == "granted" and managed["diagnosis"]["permission"] == "granted"
    assert "error" not in managed, managed.get("error")
    names = sorted(key["cn"].split(" ")[0].upper() for key in managed["keys"])
    assert names == ["ALIYEV", "KARIMOVA", "QODIROV", "RAHIMOVA", "SAIDOV", "TOSHMATOV"]
    signed = managed["signed"]
    assert signed["text"] == TEXT
    p7s, out = tmp_path / "sig.p7s", tmp_path / "out.bin"
    p7s.write_bytes(base64.b64decode(signed["pkcs7"]))
    verified = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(p7s),
                               "-CAfile", str(run.demo_ca), "-out", str(out)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and "Verification successful" in verified.stderr, verified.stderr
    assert out.read_bytes() == TEXT.encode()
    assert signed["signerSerialNumber"] == signed["serial"]
    # The agent saw the portal only once the policy let it through: one password question, for the portal.
    assert run.questions == [f"password 1 {run.origin}"]


def test_the_real_etc_is_untouched_and_within_budget(run: LnaRun) -> None:
    assert _etc_listing() == run.etc_before
    assert run.result["pageErrors"] == []
    assert run.seconds < BUDGET_SECONDS, run.result["timings"]
