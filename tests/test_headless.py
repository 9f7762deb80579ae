"""A machine where nobody can be asked: no screen (no DISPLAY, no WAYLAND_DISPLAY) and no askpass program.

The real agent started that way says so at start (a WARNING naming the fix), `eimzo-agent doctor` reports it with
the fix, and pages get a reason that names the cause, in the person's language, instead of a bare "cancelled":
a signature (E-IMZO's -5000, so pages keep handling it as a cancel) and an unknown site's consent (-1022). It is
not counted as the person cancelling, so no cool-down follows. (tests/conftest.py removes DISPLAY, WAYLAND_DISPLAY
and $EIMZO_AGENT_ASKPASS from every test's environment.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, b64, mint, start_agent

from eimzo_agent import i18n

PORTAL = "https://portal.example.uz"
LOCAL = "http://localhost:8080"
LANGUAGE = "uz"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    folder = tmp_path_factory.mktemp("headless")
    keys = folder / "flash"
    mint(folder / "ca", keys / "DSKEYS", "p256", "--cn", "TOSHMATOV ESHMAT")
    env = dict(os.environ)
    assert not ({"DISPLAY", "WAYLAND_DISPLAY", "EIMZO_AGENT_ASKPASS"} & set(env))
    process = start_agent(folder / "agent", "--key-root", str(keys), env=env,
                          config=f'{TEST_CONFIG}[ui]\nlanguage = "{LANGUAGE}"\n')
    try:
        yield process
    finally:
        process.stop()


def reason(key: str, **params: Any) -> str:
    return i18n.text(LANGUAGE, "reasons", key, **params)


def test_start_log_says_nobody_can_be_asked_and_how_to_fix_it(agent: AgentProcess) -> None:
    warnings = [line for line in agent.log().splitlines() if "WARNING" in line and "nobody can be asked" in line]
    assert len(warnings) == 1, agent.log()
    assert "desktop session" in warnings[0] and "--askpass PROGRAM" in warnings[0]


def test_a_signature_gets_a_reason_that_names_the_cause(agent: AgentProcess) -> None:
    entry = agent.call("list_all_certificates", plugin="pfx", origin=LOCAL)["certificates"][0]
    key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"], plugin="pfx",
                        origin=LOCAL)["keyId"]
    expected = {"success": False, "status": -5000, "reason": reason("no_prompter")}
    for _ in range(4):  # more than the cancels that start a cool-down: this is not the person cancelling
        assert agent.call("create_pkcs7", b64(b"document"), key_id, "no", plugin="pkcs7", origin=LOCAL) == expected


def test_an_unknown_site_gets_a_reason_that_names_the_cause(agent: AgentProcess) -> None:
    reply = agent.call("list_disks", plugin="pfx", origin=PORTAL)
    assert reply == {"success": False, "status": -1022, "reason": reason("consent_cannot_ask", site=PORTAL)}


def doctor(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    config = tmp_path / "doctor.toml"
    config.write_text(f"{TEST_CONFIG}[server]\nws_port = 1\nwss_port = 2\n")
    done = subprocess.run([sys.executable, "-m", "eimzo_agent", "doctor", "--json", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    report = json.loads(done.stdout)
    return next(check for check in report["checks"] if check["id"] == "prompter")


def test_doctor_reports_it_with_the_fix(tmp_path: Path) -> None:
    env = dict(os.environ, LANG="ru_RU.UTF-8")
    found = doctor(tmp_path, env)
    assert found["status"] == "warning"
    assert found["message"] == i18n.text("ru", "doctor", "prompter_none")
    assert found["fix"] == i18n.text("ru", "doctor", "prompter_none_fix")
    program = shutil.which("true")
    assert program is not None
    with_askpass = doctor(tmp_path, dict(env, EIMZO_AGENT_ASKPASS=program))
    assert with_askpass["status"] == "ok" and program in with_askpass["message"]
