"""Settings that can never work are refused with file, key and expected form; `config check|show` report them.

Everything runs the real CLI as a subprocess in the temporary HOME conftest.py gives (EIMZO_AGENT_SYSTEM_CONFIG is
/dev/null there: no admin file); the docs example is started as a real agent and asked over a real WebSocket.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_harness import PASSWORD, b64, mint, start_agent
from xsession import require_gui_tools, xvfb

DOCS = Path(__file__).resolve().parents[1] / "docs" / "admin.md"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, timeout=30,
                          check=False, env={**os.environ, **(env or {})})


def settings(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ('[sites]\nallowed_domains = ["my.gov.uz", "https://my.gov.uz/"]\n',
     "sites.allowed_domains: 'https://my.gov.uz/' is a web address; name only the host, e.g. 'my.gov.uz'"),
    ('[sites]\nallowed_domains = ["soliq.uz:443"]\n',
     "sites.allowed_domains: 'soliq.uz:443' has a port; name only the host, e.g. 'soliq.uz'"),
    ('[sites]\nallowed_domains = ["soliq.*.uz"]\n', "sites.allowed_domains: 'soliq.*.uz': a wildcard may only start"),
    ('[sites]\nallowed_domains = ["*.10.0.0"]\n', "sites.allowed_domains: '*.10.0.0' is not a host name"),
    ("[server]\nws_port = 0\n", "server.ws_port = 0: expected a port number from 1 to 65535"),
    ("[server]\nwss_port = 70000\n", "server.wss_port = 70000: expected a port number from 1 to 65535"),
    ("[keys]\nkey_id_ttl_hours = 1\n", "keys.key_id_ttl_hours = 1: expected hours from 6 "),
    ("[keys]\nkey_id_ttl_hours = 100000\n", "keys.key_id_ttl_hours = 100000: expected hours from 6 "),
    ("[ui]\nprompt_timeout_seconds = 0\n", "ui.prompt_timeout_seconds = 0: expected seconds, above 0"),
    ("[limits]\nidle_timeout_seconds = nan\n", "limits.idle_timeout_seconds = nan: expected seconds, above 0"),
    ("[limits]\nrequests_per_second = inf\n", "limits.requests_per_second = inf: expected a number above 0"),
    ("[ui]\npassword_tries = 11\n", "ui.password_tries = 11: expected a whole number from 1 to 10"),
    ('[server]\nws_port = "64646"\n', "server.ws_port has the wrong type (str): expected a whole number"),
    ("[ui]\npassword_tries = 2.5\n", "ui.password_tries has the wrong type (float): expected a whole number"),
    ('[sites]\nask_unknown_sites = "no"\n', "sites.ask_unknown_sites has the wrong type (str): expected true or false"),
    ('[sites]\nallowed_domains = "my.gov.uz"\n',
     "sites.allowed_domains has the wrong type (str): expected a list of strings"),
    ("[ui]\nlanguage = 1\n", "ui.language has the wrong type (int): expected a string in quotes"),
    ('[ui]\naskpass = "/nonexistent/pw"\n', "ui.askpass = '/nonexistent/pw': the program does not exist"),
], ids=lambda value: re.sub(r"\W+", "-", value)[:40])
def test_check_refuses_values_that_can_never_work(tmp_path: Path, text: str, expected: str) -> None:
    config = settings(tmp_path, text)
    result = cli("config", "check", "--config", str(config))
    assert result.returncode == 2, result
    assert f"error: {config}: {expected}" in result.stderr, result.stderr
    assert "OK" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ('[sites]\nallowed_domains = ["https://my.gov.uz/"]\n', "sites.allowed_domains: 'https://my.gov.uz/' is a web"),
    ("[server]\nws_port = 0\n", "server.ws_port = 0: expected a port number from 1 to 65535"),
    ("[keys]\nkey_id_ttl_hours = 1\n", "keys.key_id_ttl_hours = 1: expected hours from 6 "),
])
def test_serve_refuses_them_at_start(tmp_path: Path, text: str, expected: str) -> None:
    """The same check as `config check` (one loader): a clean exit naming the file, not a silent fix."""
    config = settings(tmp_path, text)
    # Free ports unless the port is what is tested (the command line would win over the file's value).
    ports = [] if "_port" in text else ["--ws-port", "0", "--wss-port", "0"]
    served = cli("serve", *ports, "--no-tray", "--config", str(config))
    assert served.returncode == 2 and f"configuration error: {config}: {expected}" in served.stderr, served.stderr
    assert "Traceback" not in served.stderr


def test_an_askpass_program_that_cannot_run_stops_serve_naming_where_it_was_set(tmp_path: Path) -> None:
    plain = tmp_path / "pw.txt"
    plain.write_text("#!/bin/sh\necho secret\n")  # a script, but not executable
    config = settings(tmp_path, "[keys]\nscan_system_locations = false\n")
    expected = f"'{plain}': the program is not an executable program"
    for args, env, where in (
        (["--askpass", str(plain)], {}, "command line"),
        ([], {"EIMZO_AGENT_ASKPASS": str(plain)}, "$EIMZO_AGENT_ASKPASS"),
    ):
        served = cli("serve", "--ws-port", "0", "--wss-port", "0", "--no-tray", "--config", str(config), *args,
                     env=env)
        assert served.returncode == 2 and f"{where}: ui.askpass = {expected}" in served.stderr, served.stderr
    checked = cli("config", "check", "--config", str(config), env={"EIMZO_AGENT_ASKPASS": str(plain)})
    assert checked.returncode == 2 and f"error: $EIMZO_AGENT_ASKPASS: ui.askpass = {expected}" in checked.stderr
    plain.chmod(0o755)  # the same program, now runnable: accepted
    assert cli("config", "check", "--config", str(config), env={"EIMZO_AGENT_ASKPASS": str(plain)}).returncode == 0


def test_a_missing_admin_file_named_by_the_variable_is_an_error(tmp_path: Path) -> None:
    config = settings(tmp_path, "[keys]\nscan_system_locations = false\n")
    absent = tmp_path / "admin" / "config.toml"
    result = cli("config", "check", "--config", str(config), env={"EIMZO_AGENT_SYSTEM_CONFIG": str(absent)})
    assert result.returncode == 2
    assert f"EIMZO_AGENT_SYSTEM_CONFIG names the admin file {absent}, which does not exist" in result.stderr
    admin = settings(tmp_path, '[sites]\nallowed_domains = ["https://portal.uz"]\n', "admin.toml")
    result = cli("config", "check", "--config", str(config), env={"EIMZO_AGENT_SYSTEM_CONFIG": str(admin)})
    assert result.returncode == 2 and f"error: {admin}: sites.allowed_domains: 'https://portal.uz' is a web" \
                                      in result.stderr


def test_a_missing_key_folder_is_a_warning_and_listed_by_keys(tmp_path: Path) -> None:
    absent = tmp_path / "flash" / "DSKEYS"
    config = settings(tmp_path, f'[keys]\nscan_system_locations = false\nroots = ["{absent}"]\n')
    result = cli("config", "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"warning: {config}: keys.roots: the key folder {absent} does not exist" in result.stderr
    assert result.stdout.strip() == f"OK: settings from {config}"
    listing = cli("keys", "--config", str(config))
    assert listing.returncode == 0 and f"  {absent} (missing)" in listing.stdout.splitlines(), listing.stdout
    also = tmp_path / "usb"
    listing = cli("keys", "--json", "--config", str(config), "--key-root", str(also))
    assert json.loads(listing.stdout)["missing"] == [str(also), str(absent)]


def test_show_names_where_each_value_came_from(tmp_path: Path) -> None:
    user = settings(tmp_path, '[server]\nws_port = 64000\n[sites]\nallowed_domains = ["user.uz"]\n', "user.toml")
    admin = settings(tmp_path, '[sites]\nallowed_domains = ["MY.GOV.UZ.", "*.soliq.uz", "10.0.0.5"]\n', "admin.toml")
    askpass = tmp_path / "pw"
    askpass.write_text("#!/bin/sh\necho x\n")
    askpass.chmod(0o755)
    env = {"EIMZO_AGENT_SYSTEM_CONFIG": str(admin), "EIMZO_AGENT_ASKPASS": str(askpass)}
    result = cli("config", "show", "--json", "--config", str(user), env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["files"] == [str(user), str(admin)]
    assert shown["settings"]["server"]["ws_port"] == {"value": 64000, "from": "user file", "file": str(user)}
    assert shown["settings"]["sites"]["allowed_domains"] == {"value": ["my.gov.uz", "*.soliq.uz", "10.0.0.5"],
                                                             "from": "admin file", "file": str(admin)}
    assert shown["settings"]["server"]["wss_port"] == {"value": 64443, "from": "default"}
    assert shown["settings"]["ui"]["askpass"] == {"value": str(askpass), "from": "$EIMZO_AGENT_ASKPASS"}
    text = cli("config", "show", "--config", str(user), env=env).stdout.splitlines()
    assert f"ws_port = 64000  # user file {user}" in text and "wss_port = 64443  # default" in text
    assert "# language is not set  (default)" in text
    checked = cli("config", "check", "--config", str(user), env=env)
    assert checked.returncode == 0 and checked.stdout.strip() == f"OK: settings from {user}, {admin}"


def test_the_admin_guide_example_works_as_written_with_the_dialog(tmp_path: Path) -> None:
    """docs/admin.md's settings example, copied verbatim: checked, then a real agent started with it signs after
    its Tk password dialog (on a private Xvfb screen) was answered: the example does not switch the dialog off."""
    require_gui_tools("xwininfo")
    guide = DOCS.read_text()
    example = re.search(r"## Settings files\n.*?```toml\n(.*?)```", guide, re.S)
    assert example is not None
    config = settings(tmp_path, example[1], "admin-example.toml")
    checked = cli("config", "check", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"OK: settings from {config}"
    shown = json.loads(cli("config", "show", "--json", "--config", str(config)).stdout)["settings"]
    assert shown["ui"]["askpass"]["value"] is None
    assert shown["sites"]["allowed_domains"]["value"] == ["my.gov.uz", "*.soliq.uz"]
    key = mint(tmp_path / "ca", tmp_path / "keys" / "DSKEYS", "p256", "--cn", "ALIYEV VALI",
               "--pinfl", "31234567890123")
    portal = "https://my.gov.uz"  # on the example's allowlist: no consent question
    with xvfb() as screen, ThreadPoolExecutor(max_workers=1) as pool:
        agent = start_agent(tmp_path / "agent", "--key-root", str(tmp_path / "keys"), config=example[1],
                            env=screen.env())
        try:
            # A folder of the example that does not exist here: a warning at start, not a stop.
            assert "keys.roots: the key folder /srv/dskeys does not exist" in agent.log()
            listed = agent.call("list_all_certificates", plugin="pfx", origin=portal)
            assert listed["success"] is True, listed
            entry = next(c for c in listed["certificates"] if c["name"] == key.stem)
            loaded = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                plugin="pfx", origin=portal)
            assert loaded["success"] is True, loaded
            signed = pool.submit(agent.call, "create_pkcs7", b64(b"hujjat"), loaded["keyId"], "no", plugin="pkcs7",
                                 origin=portal)
            window = screen.wait_window("^eimzo-agent")
            assert screen.wait_focus(window), "the password dialog did not take the keyboard focus"
            screen.type(PASSWORD)
            screen.key("Return")
            reply = signed.result(timeout=30)
            assert reply["success"] is True, reply
        finally:
            agent.stop()


def test_the_linux_packages_admin_file_passes_the_check_it_names(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "service_installers" / "linux" / "eimzo-agent" / "config.toml"
    assert "eimzo-agent config check" in shipped.read_text()
    result = cli("config", "check", "--config", str(settings(tmp_path, "")),
                 env={"EIMZO_AGENT_SYSTEM_CONFIG": str(shipped)})
    assert result.returncode == 0 and result.stdout.startswith("OK"), result
    # Every example value in it, uncommented, is valid too (an admin removes the "#" as the file says).
    uncommented = re.sub(r"(?m)^# ?([a-z_]+ = .*)$", r"\1", shipped.read_text())
    assert "allowed_domains = [" in uncommented
    result = cli("config", "check", "--config", str(settings(tmp_path, "")),
                 env={"EIMZO_AGENT_SYSTEM_CONFIG": str(settings(tmp_path, uncommented, "admin.toml"))})
    assert result.returncode == 0 and result.stdout.startswith("OK"), result
