"""The portal demo's OneID-style login and "verify a signed file", end to end in Chromium (issue 13, item 4).

One agent (`serve --demo`: the demo key set, passwords from an askpass program), one verification server
(`portal serve --demo`, trusting the demo's two development CAs, revocation off, the development TSA in this
process) and one browser for the module.
`tests/browser/portal-login.mjs` drives the pages: "Kirish (ERI bilan)" → the agent's key list → a key → the agent
signs the server's challenge (real WebSocket) → the demo's backend posts it to /backend/auth → the greeting with the
key's PINFL; for RSA, O'zDSt and P-256 keys, and the legal-entity officer's organisation role. Then signatures the
agent makes on the page are checked with the verify page (attached and time-stamped, detached, and a changed
original). The last test runs the demo's backend alone in front of a dead verification server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from agent_harness import make_askpass, start_agent
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from needs import require_browser_tools
from portal_harness import start_portal
from test_browser_e2e import _isolated_env
from test_enroll_browser import _dead_url

from eimzo_agent.dev.demo import DEMO_KEYS, DEMO_PASSWORD
from eimzo_agent.dev.tsa import start_tsa
from eimzo_agent.portal.demo_site import MAX_VERIFY_BODY, demo_app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "portal-login.mjs"
BUDGET_SECONDS = 90
TEXT = "Ariza: 2026-yil 2-dekabr. Заявление. Qaraqalpaqsha: ǵ ń ú."

#: The demo keys by PINFL: what the certificate says, so the page's greeting can be compared with it.
SUBJECTS = {subject.pinfl: (subject, alg) for _, subject, alg, _ in DEMO_KEYS}
RSA_PERSON, OZDST_PERSON, P256_PERSON = "31234567890123", "32345678901235", "33345678901237"
OZDST_OFFICER, RSA_OFFICER = "42345678901236", "41234567890124"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, screenshot_dir: Path) -> dict[str, Any]:
    require_browser_tools()
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("portal-login")
    home = tmp / "home"
    home.mkdir()
    env = _isolated_env(home, tmp)
    askpass = make_askpass(tmp)
    askpass.answer(DEMO_PASSWORD)
    agent = start_agent(tmp / "agent", "--demo", "--askpass", str(askpass.program), env=env)
    portal = None
    ca = home / "data" / "eimzo-agent" / "demo" / "ca"  # made by `serve --demo`
    tsa_url, stop_tsa = start_tsa(ca)
    try:
        portal = start_portal(tmp / "portal", "--demo", "--trust-anchor", str(ca / "ca.crt.pem"),
                              "--trust-anchor", str(ca / "ozdst" / "ca.crt.pem"), "--revocation", "off",
                              "--tsa-url", tsa_url, env=env)
        folder = tmp / "files"
        folder.mkdir()
        config = tmp / "portal-login.json"
        config.write_text(json.dumps({
            "portalUrl": portal.url, "agentWs": agent.url, "folder": str(folder), "text": TEXT,
            "screenshot": str(screenshot_dir / "portal-login.png"),
            "verifyScreenshot": str(screenshot_dir / "portal-verify.png"),
            "keysScreenshot": str(screenshot_dir / "portal-login-keys.png"),
            "signer": OZDST_PERSON,
            "logins": [{"pinfl": RSA_PERSON}, {"pinfl": OZDST_PERSON}, {"pinfl": P256_PERSON},
                       {"pinfl": OZDST_OFFICER, "organisation": True}],
        }))
        result = subprocess.run(["node", str(SCRIPT), str(config)], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=BUDGET_SECONDS, check=False)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert lines and lines[-1]["event"] == "result", (
            f"{result.stdout}\n{result.stderr}\nagent:\n{agent.log()}\nportal:\n{portal.log()}")
        return {**lines[-1], "origin": portal.url, "questions": askpass.questions(),
                "seconds": time.monotonic() - started}
    finally:
        if portal is not None:
            portal.stop()
        agent.stop()
        stop_tsa()


@pytest.mark.parametrize("pinfl", [RSA_PERSON, OZDST_PERSON, P256_PERSON, OZDST_OFFICER])
def test_login_greets_the_person_with_the_keys_pinfl_and_tin(run: dict[str, Any], pinfl: str) -> None:
    subject, alg = SUBJECTS[pinfl]
    view = run["logins"][pinfl]
    assert view["error"] is None and view["welcome"], view
    assert view["greeting"] == f"Xush kelibsiz, {subject.cn}!", alg
    assert view["pinfl"] == pinfl and view["tin"] == subject.tin
    listed = {key["pinfl"]: key for key in view["keys"]}
    assert {RSA_PERSON, OZDST_PERSON, P256_PERSON, OZDST_OFFICER, RSA_OFFICER} <= set(listed)
    assert listed["30101199012345"]["disabled"], "the expired demo key cannot be chosen"


def test_an_individual_gets_no_organisation_role(run: dict[str, Any]) -> None:
    for pinfl in (RSA_PERSON, OZDST_PERSON, P256_PERSON):
        view = run["logins"][pinfl]
        assert not view["roles"] and view["actingRole"] == "person"
        assert view["forcedRole"]["http"] == 403, "the backend refuses, not just the page"
        assert view["forcedRole"]["reply"]["error"] == "role"


def test_the_officer_enters_as_the_organisation(run: dict[str, Any]) -> None:
    view = run["logins"][OZDST_OFFICER]
    assert view["roles"] and view["organisationButton"] == "Tashkilot nomidan kirish (STIR 302345678)"
    assert view["actingRole"] == "person", "the person's own role until they choose"
    chosen = view["asOrganisation"]
    assert chosen["actingRole"] == "organisation"
    assert chosen["acting"] == "Raqamli Hujjatlar MChJ (STIR 302345678) nomidan ishlayapsiz."
    again = view["afterReload"]
    assert again["welcome"] and again["actingRole"] == "organisation" and again["pinfl"] == OZDST_OFFICER
    kaa, ru = view["languages"]["kaa"], view["languages"]["ru"]
    assert kaa["greeting"].startswith("Xosh keldińiz, ") and "STIR 302345678" in kaa["acting"]
    assert ru["greeting"] == "Добро пожаловать, RAHIMOVA DILNOZA SHAVKATOVNA!"
    assert ru["acting"] == "Вы работаете от имени Raqamli Hujjatlar MChJ (ИНН 302345678)."


def test_a_challenge_the_server_never_issued_is_refused_with_a_clear_message(run: dict[str, Any]) -> None:
    stale = run["staleLogin"]
    assert not stale["welcome"] and stale["errorStatus"] == "-20" and stale["errorKind"] == "auth-20"
    assert stale["languages"] == {
        "uz": "Kirish so'rovi topilmadi yoki muddati o'tgan. Qayta urinib ko'ring.",
        "kaa": "Kiriw sorawı tabılmadı yamasa múddeti ótken. Qaytadan urınıp kóriń.",
        "ru": "Запрос на вход не найден или устарел. Попробуйте ещё раз.",
    }


def _signer_row(result: dict[str, Any]) -> dict[str, Any]:
    assert result["error"] is None, result
    [row] = result["rows"]
    return row


def test_verify_a_signed_file_shows_the_signer(run: dict[str, Any]) -> None:
    subject, _ = SUBJECTS[OZDST_PERSON]
    for name in ("verifyAttached", "verifyDetached"):
        result = run[name]
        row = _signer_row(result)
        assert result["verdictStatus"] == "1" and result["verdict"] == "Imzo haqiqiy: 1 ta imzo tekshirildi."
        assert row["pinfl"] == OZDST_PERSON and row["verified"] == "true"
        name_cell, pinfl, tin, signing_time, signature, certificate, stamp = row["cells"]
        assert name_cell == subject.cn and pinfl == OZDST_PERSON and tin == subject.tin
        assert len(signing_time) == len("2026-12-02 15:30:00")
        assert signature == "haqiqiy" and certificate == "haqiqiy"
        if name == "verifyDetached":
            assert stamp == "yo'q"
        else:  # signed on the page with `timestampUrl`: the server's TSA stamped it, the verify endpoint checked it
            assert row["timestampValid"] and stamp.startswith(signing_time[:10]) and "eimzo-agent dev" in stamp
    assert run["verifyAttached"]["document"] == f"Hujjat imzo ichida: {len(TEXT.encode())} bayt."
    assert run["verifyDetached"]["document"] == "Ajratilgan imzo: asl fayl bilan tekshirildi."


def test_verify_with_a_changed_original_says_the_signature_does_not_hold(run: dict[str, Any]) -> None:
    changed = run["verifyChanged"]
    assert changed["errorKind"] == "verify-10", changed
    assert changed["error"] == "Imzo haqiqiy emas yoki hujjat o'zgartirilgan."


def test_the_agent_asked_for_passwords_on_behalf_of_the_portal_and_time_is_in_budget(run: dict[str, Any]) -> None:
    assert run["pageErrors"] == []
    assert run["questions"], "the askpass program answered the agent's password questions"
    assert {line.split(" ", 2)[2] for line in run["questions"]} == {run["origin"]}
    assert run["seconds"] < BUDGET_SECONDS


def test_the_demo_backend_says_when_the_verification_server_does_not_answer() -> None:
    """The demo's own backend alone (no browser), in front of a port nothing listens on: clear JSON, no crash."""
    async def scenario() -> dict[str, Any]:
        app = web.Application()
        app.add_subapp("/demo/", demo_app(_dead_url().rstrip("/"), None))
        async with TestClient(TestServer(app)) as client:
            login = await client.post("/demo/api/login", data="MIIBAA==")
            verify = await client.post("/demo/api/verify", data="MIIBAA==|MIIBAA==")
            role = await client.post("/demo/api/role", json={"role": "organisation"})
            session = await client.get("/demo/api/session")
            empty = await client.post("/demo/api/login", data="")
            huge = await client.post("/demo/api/verify", data=b"A" * (MAX_VERIFY_BODY + 1))
            page = await client.get("/demo/")
            missing = await client.get("/demo/../setup.py")
            return {
                "login": (login.status, await login.json()), "verify": (verify.status, await verify.json()),
                "role": role.status, "session": session.status, "empty": empty.status, "huge": huge.status,
                "page": (page.status, page.headers.get("Content-Security-Policy", ""), await page.text()),
                "missing": missing.status,
            }

    answers = asyncio.run(scenario())
    for name in ("login", "verify"):
        status, reply = answers[name]
        assert status == 502 and reply["error"] == "backend" and "did not answer" in reply["message"], reply
    assert (answers["role"], answers["session"], answers["empty"], answers["huge"]) == (401, 401, 400, 413)
    status, csp, html = answers["page"]
    assert status == 200 and "frame-ancestors 'none'" in csp and 'src="login.mjs"' in html
    assert answers["missing"] == 404


def test_screenshots_are_written(run: dict[str, Any], screenshot_dir: Path) -> None:
    """The officer's greeting, the key list with -20's message, the verify page (docs/screenshots/ when
    scripts/refresh-screenshots.sh runs)."""
    for name in ("portal-login.png", "portal-login-keys.png", "portal-verify.png"):
        assert (screenshot_dir / name).read_bytes().startswith(b"\x89PNG"), name
