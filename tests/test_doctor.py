"""`eimzo-agent doctor` against the real agent: all green on a healthy setup, and each blocked case reported as
blocking with a non-zero exit, in the person's language.

The healthy setup is made once per module, the way a person would make it: the real agent (tests/agent_harness.py)
on free ports, a minted key in a key folder, the agent's CA trusted with `eimzo-agent trust install` in an NSS
database of the test's home, `eimzo-agent service install --user`, and a Chromium policy written by `eimzo-agent
policy browser` into a temporary system root (given through $EIMZO_AGENT_SYSTEM_ROOT, which also holds the stand-in
/usr/bin/chromium that makes Chromium count as installed). Each test then changes one thing: the ports (nothing
there, a plain HTTP server of the test, an E-IMZO stand-in), the NSS database, the portal, the language.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, mint, start_agent
from other_user import other_user, scratch_dir
from websockets.sync.server import ServerConnection, serve

from eimzo_agent import i18n
from eimzo_agent.deploy import browsers
from eimzo_agent.deploy.browser_policy import matches
from eimzo_agent.deploy.places import ENV_SYSTEM_ROOT, Places

pytestmark = pytest.mark.skipif(shutil.which("certutil") is None, reason="certutil (libnss3-tools) is needed")

SITE = "https://my.gov.uz"


@dataclass
class Setup:
    env: dict[str, str]
    root: Path
    folder: Path
    agent: AgentProcess
    keys: Path

    def config(self, name: str = "doctor.toml", *, ws_port: int | None = None, wss_port: int | None = None,
               extra: str = "") -> Path:
        """A settings file for the doctor: the agent's ports unless told otherwise, the test's key folder."""
        path = self.folder / name
        path.write_text(f"[server]\nws_port = {ws_port or self.agent.port}\n"
                        f"wss_port = {wss_port or self.agent.wss_port}\n"
                        f'[keys]\nroots = ["{self.keys}"]\nscan_system_locations = false\n'
                        f'[sites]\nallowed_domains = ["my.gov.uz"]\n{extra}')
        return path

    def doctor(self, config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        done = subprocess.run([sys.executable, "-m", "eimzo_agent", "doctor", "--json", "--config", str(config),
                               *args], capture_output=True, text=True, env=env or self.env, timeout=120, check=False)
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["status"] for check in report["checks"]}


def check(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == check_id)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("doctor")
    root = folder / "root"
    env = dict(os.environ, **{ENV_SYSTEM_ROOT: str(root)})  # this module's home and XDG folders (conftest)
    for name in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):  # no session manager may be reached
        env.pop(name, None)
    chromium = root / "usr/bin/chromium"
    chromium.parent.mkdir(parents=True)
    chromium.write_text("")  # Chromium "installed" in the test's root
    keys = folder / "flash"
    mint(folder / "ca", keys / "DSKEYS", "p256", "--cn", "TOSHMATOV ESHMAT")
    agent = start_agent(folder / "agent", env=env)
    try:
        cli(env, "trust", "install", "--nss-db", str(Path(env["HOME"]) / ".pki" / "nssdb"))
        cli(env, "service", "install", "--user")
        cli(env, "policy", "browser", "--site", SITE, "--out", str(root / "etc/chromium/policies/managed"))
        yield Setup(env, root, folder, agent, keys)
    finally:
        agent.stop()


def test_healthy_setup_is_all_green(setup: Setup) -> None:
    # No screen in the test, so a healthy setup names an askpass program (tests/test_headless.py: without one).
    healthy = setup.config(extra=f'[ui]\naskpass = "{shutil.which("true")}"\n')
    code, report = setup.doctor(healthy, "--site", SITE)
    assert code == 0 and report["ok"] and report["blocking"] == []
    assert set(statuses(report).values()) == {"ok"}, statuses(report)
    assert set(statuses(report)) == {"settings", "prompter", "port.ws", "port.wss", "certificate", "autostart",
                                     "keys", "browsers", "site.agent", "site.chromium"}
    chromium = check(report, "browsers")["details"]["browsers"][0]
    assert [(p["policy"], p["entries"]) for p in chromium["policies"]] == [
        ("LocalNetworkAccessAllowedForUrls", [SITE]), ("LoopbackNetworkAllowedForUrls", [SITE])]
    ws = check(report, "port.ws")["details"]
    assert ws["answers"] == "eimzo-agent"
    assert [p["pid"] for p in ws["processes"]] == [setup.agent.process.pid]  # who holds the port, from /proc
    assert check(report, "keys")["details"]["key_files"] == 1
    assert check(report, "site.chromium")["details"]["policy"] == "LocalNetworkAccessAllowedForUrls"
    # The person's view: the same verdicts, exit 0, the summary in their language (Russian by default).
    text = subprocess.run([sys.executable, "-m", "eimzo_agent", "doctor", "--site", SITE, "--config",
                           str(healthy)], capture_output=True, text=True, env=setup.env, timeout=120,
                          check=False)
    assert text.returncode == 0 and i18n.text("ru", "doctor", "summary_ok") in text.stdout


def test_agent_down(setup: Setup) -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    code, report = setup.doctor(setup.config("down.toml", ws_port=ports[0], wss_port=ports[1]))
    assert code == 1 and report["blocking"] == ["port.ws", "port.wss"]
    ws = check(report, "port.ws")
    assert ws["details"]["answers"] == "nothing"
    assert ws["message"] == i18n.text("ru", "doctor", "port_free", url=f"ws://127.0.0.1:{ports[0]}/service/cryptapi")
    assert ws["fix"] == i18n.text("ru", "doctor", "port_free_fix")


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_port_taken_by_another_program(setup: Setup) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, report = setup.doctor(setup.config("other.toml", ws_port=server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and report["blocking"] == ["port.ws"]
    ws = check(report, "port.ws")
    assert ws["details"]["answers"] == "other program"
    holder = ws["details"]["processes"][0]
    assert holder["pid"] == os.getpid() and holder["name"]  # this test's own process holds it
    assert f"{os.getpid()}" in ws["message"]
    assert check(report, "port.wss")["status"] == "ok"  # the real agent still answers there


def test_eimzo_on_the_port_is_a_warning(setup: Setup) -> None:
    """E-IMZO answers `version` without our "agent" field: portals still sign (with E-IMZO), so it does not block."""
    def handler(connection: ServerConnection) -> None:
        connection.recv()
        connection.send(json.dumps({"success": True, "status": 1, "major": "6", "minor": "4", "patch": "7",
                                    "edition": "Standard"}))

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        code, report = setup.doctor(setup.config("eimzo.toml", ws_port=server.socket.getsockname()[1]))
        server.shutdown()
    ws = check(report, "port.ws")
    assert (code, ws["status"], ws["details"]["answers"], ws["details"]["version"]) == (0, "warning", "E-IMZO",
                                                                                        "6.4.7")


def test_ca_not_trusted(setup: Setup) -> None:
    home = setup.folder / "other-home"
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{database}", "--empty-password"], check=True, timeout=60)
    code, report = setup.doctor(setup.config(), env=dict(setup.env, HOME=str(home)))
    assert code == 1 and report["blocking"] == ["certificate"]
    certificate = check(report, "certificate")
    assert certificate["details"]["nss_databases"] == {str(database): False}
    assert str(database) in certificate["message"] and "eimzo-agent trust install" in certificate["fix"]


def test_site_without_browser_policy(setup: Setup) -> None:
    firefox = setup.root / "usr/lib/firefox-esr/firefox-esr"
    firefox.parent.mkdir(parents=True, exist_ok=True)
    firefox.write_text("")
    try:
        code, report = setup.doctor(setup.config(), "--site", "https://soliq.uz/login")
    finally:
        firefox.unlink()
    assert code == 1 and report["blocking"] == ["site.chromium"]
    chromium = check(report, "site.chromium")
    assert chromium["details"]["state"] == "no_policy"
    assert "policy browser --site https://soliq.uz --out" in chromium["fix"]
    # Firefox without a policy is a warning; the agent itself would ask the person about this site.
    assert statuses(report)["site.firefox"] == "warning" and statuses(report)["site.agent"] == "ok"


def test_texts_come_in_the_persons_language(setup: Setup) -> None:
    down = setup.config("lang.toml", ws_port=1)
    code, report = setup.doctor(down, env=dict(setup.env, LANG="uz_UZ.UTF-8"))
    assert code == 1 and report["language"] == "uz"
    assert check(report, "port.ws")["fix"] == i18n.text("uz", "doctor", "port_free_fix")
    # The settings' language wins over the environment's.
    chosen = setup.config("lang-kaa.toml", ws_port=1, extra='[ui]\nlanguage = "kaa"\n')
    code, report = setup.doctor(chosen, env=dict(setup.env, LANG="uz_UZ.UTF-8"))
    assert code == 1 and report["language"] == "kaa" and check(report, "port.ws")["fix"] == i18n.text("kaa", "doctor",
                                                                                         "port_free_fix")
    text = subprocess.run([sys.executable, "-m", "eimzo_agent", "doctor", "--config", str(chosen)],
                          capture_output=True, text=True, env=setup.env, timeout=120, check=False)
    assert text.returncode == 1 and i18n.text("kaa", "doctor", "status_blocking") in text.stdout


def test_another_users_agent_is_named_by_its_user(setup: Setup) -> None:
    """Run by a second user, the doctor meets this user's agent: it refuses (peer check) and says why, and the
    port's holder is known only by uid (another user's /proc/<pid>/fd is closed)."""
    user = other_user()
    with scratch_dir(user) as home:
        config = home / "doctor.toml"
        config.write_text(f"[server]\nws_port = {setup.agent.port}\nwss_port = {setup.agent.wss_port}\n"
                          "[keys]\nscan_system_locations = false\n")
        done = subprocess.run(user.python_command("-m", "eimzo_agent", "doctor", "--json", "--config", str(config)),
                              capture_output=True, text=True, env=user.env(home), cwd=home, timeout=120, check=False)
    assert done.returncode == 1 and done.stdout, done.stderr
    ws = check(json.loads(done.stdout), "port.ws")
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert ws["status"] == "blocking" and ws["details"]["answers"] == "other program"
    assert ws["details"]["error"] == i18n.text("ru", "reasons", "other_user")
    assert ws["details"]["processes"] == [{"address": "127.0.0.1", "pid": None, "name": None, "command": None,
                                           "user": me}]
    assert i18n.text("ru", "doctor", "owner_user", user=me) in ws["message"]


def test_bad_settings_and_bad_site(setup: Setup) -> None:
    broken = setup.folder / "broken.toml"
    broken.write_text("[server]\nws_port = 'x'\n")
    code, report = setup.doctor(broken)
    settings = check(report, "settings")
    assert code == 1 and settings["status"] == "blocking" and str(broken) in settings["message"]
    assert "server.ws_port" in settings["message"]
    done = subprocess.run([sys.executable, "-m", "eimzo_agent", "doctor", "--site", "ftp://x.uz"],
                          capture_output=True, text=True, env=setup.env, timeout=60, check=False)
    assert done.returncode == 2 and "ftp://x.uz" in done.stderr and not done.stdout


# --- the policy reading, without an agent -------------------------------------------------------------------------


def test_url_patterns_match_as_chrome_documents() -> None:
    cases = [
        ("https://my.gov.uz", "https://my.gov.uz", True),
        ("https://my.gov.uz", "http://my.gov.uz", False),
        ("https://my.gov.uz", "https://my.gov.uz:8443", True),  # no port in the pattern: any port
        ("https://my.gov.uz:8443", "https://my.gov.uz", False),
        ("https://my.gov.uz:443", "https://my.gov.uz", True),
        ("https://[*.]soliq.uz", "https://a.b.soliq.uz", True),
        ("https://[*.]soliq.uz", "https://soliq.uz", True),
        ("https://[*.]soliq.uz", "https://notsoliq.uz", False),
        ("soliq.uz", "http://soliq.uz", True),  # no scheme: any scheme
        ("soliq.uz", "https://a.soliq.uz", False),
        ("*://soliq.uz:*/*", "https://soliq.uz:1", True),
        ("*", "https://anything.uz", True),
        ("https://*", "https://anything.uz", True),
        ("https://127.0.0.2:8443", "https://127.0.0.2:8443", True),
        ("https://[::1]", "https://[::1]", True),
        ("https://my.gov.uz/any/path", "https://my.gov.uz", True),
        ("[*.].bad", "https://x.bad", False),
        ("https://*.soliq.uz", "https://a.soliq.uz", False),  # not a pattern Chrome accepts
    ]
    for pattern, origin, expected in cases:
        assert matches(pattern, origin) is expected, (pattern, origin)


def test_policy_files_are_read_as_chromium_reads_them(tmp_path: Path) -> None:
    places = Places(root=tmp_path, home=tmp_path / "home", config_home=tmp_path / "home" / ".config")
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/chromium").write_text("")
    (tmp_path / "opt/google/chrome").mkdir(parents=True)
    (tmp_path / "opt/google/chrome/chrome").write_text("")
    assert [b.id for b in browsers.installed(places, "linux")] == ["chromium", "chrome"]
    chromium = browsers.installed(places, "linux")[0]
    managed = tmp_path / "etc/chromium/policies/managed"
    managed.mkdir(parents=True)
    (managed / "a.json").write_text(json.dumps({"LocalNetworkAccessAllowedForUrls": ["https://[*.]gov.uz"]}))
    assert browsers.verdict(chromium, "https://my.gov.uz", places, "linux").state == "allowed"
    # The same policy in a file whose name sorts later replaces it; a broken file is ignored and named.
    (managed / "b.json").write_text(json.dumps({"LocalNetworkAccessAllowedForUrls": ["https://soliq.uz"]}))
    (managed / "c.json").write_text("{not json")
    found = browsers.verdict(chromium, "https://my.gov.uz", places, "linux")
    assert found.state == "no_policy" and [f for f, _ in found.unreadable] == [str(managed / "c.json")]
    # A block list wins over an allow list.
    (managed / "b.json").write_text(json.dumps({"LoopbackNetworkAllowedForUrls": ["https://my.gov.uz"],
                                                "LocalNetworkAccessBlockedForUrls": ["*"]}))
    found = browsers.verdict(chromium, "https://my.gov.uz", places, "linux")
    assert (found.state, found.policy, found.source) == ("blocked", "LocalNetworkAccessBlockedForUrls",
                                                         str(managed / "b.json"))


def test_firefox_policies(tmp_path: Path) -> None:
    places = Places(root=tmp_path, home=tmp_path / "home", config_home=tmp_path / "home" / ".config")
    firefox = next(b for b in browsers.known_browsers("linux") if b.id == "firefox")
    policies = tmp_path / "etc/firefox/policies/policies.json"
    policies.parent.mkdir(parents=True)
    policies.write_text(json.dumps({"policies": {"LocalNetworkAccess": {"Enabled": True,
                                                                        "SkipDomains": ["soliq.uz"]}}}))
    assert browsers.verdict(firefox, "https://my.soliq.uz", places, "linux").state == "allowed"
    assert browsers.verdict(firefox, "https://my.gov.uz", places, "linux").state == "no_policy"
    policies.write_text(json.dumps({"policies": {"LocalNetworkAccess": {"Enabled": False}}}))
    assert browsers.verdict(firefox, "https://my.gov.uz", places, "linux").state == "allowed"


def test_portal_addresses_become_origins() -> None:
    assert browsers.origin_of("my.gov.uz/login?x=1") == "https://my.gov.uz"
    assert browsers.origin_of("HTTPS://My.Gov.Uz:443/") == "https://my.gov.uz"
    assert browsers.origin_of("http://127.0.0.2:8080") == "http://127.0.0.2:8080"
    for bad in ("ftp://x.uz", "https://", "https://user@x.uz", "https://x.uz:99999"):
        with pytest.raises(ValueError):
            browsers.origin_of(bad)


def test_every_language_has_the_doctors_texts_with_the_same_placeholders() -> None:
    reference = i18n.catalogue("en")["doctor"]
    for lang in i18n.LANGUAGES:
        texts = i18n.catalogue(lang)["doctor"]
        assert set(texts) == set(reference), lang
        for key, template in reference.items():
            assert set(re.findall(r"{(\w+)}", texts[key])) == set(re.findall(r"{(\w+)}", template)), (lang, key)


def test_askpass_program_that_cannot_run_is_blocking(setup: Setup) -> None:
    # An agent with this setting starts, and then every password question silently comes back "cancelled".
    missing = setup.folder / "no-such-askpass"
    not_executable = setup.folder / "askpass.txt"
    not_executable.write_text("#!/bin/sh\necho secret\n")
    for program in (missing, not_executable):
        code, report = setup.doctor(setup.config(extra=f'[ui]\naskpass = "{program}"\n'))
        prompter = check(report, "prompter")
        assert code == 1 and prompter["status"] == "blocking", prompter
        assert str(program) in prompter["message"] and "askpass" in prompter["fix"]
