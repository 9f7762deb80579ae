"""Issue 12's smaller gaps, against the real agent: optional trailing arguments, /apidoc.html, the agent without the
tokens extra, app.show_menu, ckc.supported_ckc and app.get_jvm_version.

One agent process serves the module (portals' way: a new WebSocket per call); keys are minted by the real CLI.
"""

from __future__ import annotations

import base64
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, Askpass, http_exchange, make_askpass, mint, start_agent
from xsession import require_gui_tools, xvfb

from eimzo_agent import __version__, i18n
from eimzo_agent.agent import build_agent
from eimzo_agent.config import AgentConfig
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.server import apidoc_page
from eimzo_agent.ui.prompter import NoPrompter

# The vendor's published API key for localhost (e-imzo-client.js), as portals send it.
LOCALHOST_KEY = ("96D0C1491615C82B9A54D9989779DF825B690748224C2B04F500F370D51827CE"
                 "2644D8D4A82C18184D73AB8530BB8ED537269603F61DB0D03D2104ABF789970B")
DOCUMENT = "Hujjat № 12: optional arguments".encode()


class Setup:
    def __init__(self, agent: AgentProcess, askpass: Askpass, ca: Path, key: Path) -> None:
        self.agent, self.askpass, self.ca, self.key = agent, askpass, ca, key


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("gaps")
    key = mint(tmp / "ca", tmp / "flash" / "DSKEYS", "p256", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123")
    askpass = make_askpass(tmp)
    agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program))
    try:
        assert agent.call("apikey", "localhost", LOCALHOST_KEY)["success"] is True
        yield Setup(agent, askpass, tmp / "ca", key)
    finally:
        agent.stop()


def load_key(setup: Setup) -> str:
    entry = next(c for c in setup.agent.call("list_all_certificates", plugin="pfx")["certificates"]
                 if c["name"] == setup.key.stem)
    reply = setup.agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"], plugin="pfx")
    assert reply["success"] is True, reply
    return reply["keyId"]


def openssl_attached_content(tmp: Path, ca: Path, pkcs7_64: str) -> bytes:
    """OpenSSL verifies the signature with no -content: it succeeds only for an attached one."""
    (tmp / "sig.p7s").write_bytes(base64.b64decode(pkcs7_64))
    result = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.p7s"),
                             "-CAfile", str(ca / "ca.crt.pem"), "-out", str(tmp / "out.bin")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return (tmp / "out.bin").read_bytes()


# --- 1. optional trailing arguments ---------------------------------------------------------------------------


def test_create_pkcs7_without_detached_signs_attached(setup: Setup, tmp_path: Path) -> None:
    """E-IMZO's apidoc marks `detached` optional; a call that leaves it out gets an attached signature."""
    key_id = load_key(setup)
    reply = setup.agent.call("create_pkcs7", base64.b64encode(DOCUMENT).decode(), key_id, plugin="pkcs7")
    assert reply["success"] is True, reply
    assert openssl_attached_content(tmp_path, setup.ca, reply["pkcs7_64"]) == DOCUMENT


def test_apidoc_marks_optional_arguments(setup: Setup) -> None:
    doc = setup.agent.call("apidoc")
    functions = {f"{f['plugin']}.{f['name']}": f for plugin in doc for f in plugin["functions"]}
    create = functions["pkcs7.create_pkcs7"]["arguments"]
    assert [(a["name"], a["optional"]) for a in create] == [("data_64", False), ("id", False), ("detached", True)]


@pytest.mark.parametrize(
    ("plugin", "name", "arguments", "reason"),
    [
        ("pkcs7", "create_pkcs7", ["ZGF0YQ=="], "Функция pkcs7.create_pkcs7 принимает аргументов: 2–3, передано: 1."),
        ("pkcs7", "create_pkcs7", ["ZGF0YQ==", "x", "no", "extra"],
         "Функция pkcs7.create_pkcs7 принимает аргументов: 2–3, передано: 4."),
        # load_key's `path` is optional in E-IMZO's apidoc but comes before `alias`: the count must still be 4.
        ("pfx", "load_key", ["/", "", "DS1"], "Функция pfx.load_key принимает аргументов: 4, передано: 3."),
        ("", "version", ["x"], "Функция version принимает аргументов: 0, передано: 1."),
    ],
)
def test_other_argument_counts_keep_the_status_0_reply(setup: Setup, plugin: str, name: str, arguments: list[str],
                                                        reason: str) -> None:
    reply = setup.agent.call(name, *arguments, plugin=plugin or None)
    assert reply == {"success": False, "status": 0, "reason": reason}


# --- 2. /apidoc.html ----------------------------------------------------------------------------------------------


class FunctionNames(HTMLParser):
    """The `<dt><code>plugin.name(args)</code>` entries of the page, and whether any script/img element exists."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.elements: set[str] = set()
        self._in_dt = self._in_code = False
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)
        if tag == "dt":
            self._in_dt = True
        elif tag == "code" and self._in_dt:
            self._in_code, self._text = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "code" and self._in_code:
            self._in_code = False
            self.names.append(self._text.split("(")[0])
        elif tag == "dt":
            self._in_dt = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self._text += data


def test_apidoc_html_lists_every_registered_function(setup: Setup) -> None:
    port = setup.agent.port
    status, headers, body = http_exchange(port, f"GET /apidoc.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    # The demo page's protection: no framing, no foreign scripts, no sniffing; generated, so never cached.
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    page = FunctionNames()
    page.feed(body.decode())
    # Every function of a table built the agent's way (the same plugins), and every one `apidoc` lists.
    registry = build_agent(AgentConfig(scan_system_locations=False), prompter=NoPrompter()).registry
    assert sorted(page.names) == sorted(f.full_name for f in registry)
    described = {f"{f['plugin']}.{f['name']}" for plugin in setup.agent.call("apidoc") for f in plugin["functions"]}
    assert described <= set(page.names) and {"version", "apikey", "apidoc", "pkcs7.create_pkcs7"} <= set(page.names)
    text = body.decode()
    assert "Аргументы" in text  # the agent's language (Russian by default)
    assert "<li><code>detached</code> <em>(необязательный)</em>" in text
    head = f"HEAD /apidoc.html HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
    status, headers, body = http_exchange(port, head)
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(text.encode())


def test_apidoc_html_escapes_the_table() -> None:
    async def handler(call: Call) -> dict[str, Any]:
        return {}

    registry = Registry()
    registry.add(PluginFunction('x"><script>', "f<img src=x>", handler,
                                (Argument("a&b", "<script>alert(1)</script>", optional=True),),
                                "<b>bold</b> & 'quoted'"))
    page_text = apidoc_page.render(registry, "en")
    page = FunctionNames()
    page.feed(page_text)
    assert not page.elements & {"script", "img", "b"}
    assert page.names == ['x"><script>.f<img src=x>']
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page_text


# --- 3. without the tokens extra ----------------------------------------------------------------------------------

#: The PKCS#11 module the token tests use (scripts/bootstrap.sh --test installs softhsm2); the agent never gets as
#: far as loading it here, so any existing path would do.
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(scope="module")
def without_tokens_extra(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which `import pkcs11` and `import smartcard` fail as when the extra is not installed: a
    folder first on PYTHONPATH holds modules of those names that raise ImportError (the venv has the extra)."""
    block = tmp_path_factory.mktemp("no-tokens-extra")
    (block / "pkcs11.py").write_text('raise ImportError("No module named \'pkcs11\'")\n')
    (block / "smartcard").mkdir()
    (block / "smartcard" / "__init__.py").write_text('raise ImportError("No module named \'smartcard\'")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(block), env.get("PYTHONPATH")]))
    check = subprocess.run([sys.executable, "-c", "import pkcs11"], env=env, capture_output=True, check=False)
    assert check.returncode != 0  # the block works
    return env


def test_token_functions_answer_empty_lists_without_the_extra(tmp_path: Path, without_tokens_extra: dict[str, str],
                                                              ) -> None:
    agent = start_agent(tmp_path / "agent", "--pkcs11-module", SOFTHSM, env=without_tokens_extra)
    try:
        assert agent.call("apikey", "localhost", LOCALHOST_KEY)["success"] is True
        expected = {
            ("baikey", "list_tokens"): {"tokens": []},
            ("ckc", "list_ckc"): {"devices": []},
            ("idcard", "list_readers"): {"readers": []},
            ("token", "list_tokens"): {"tokens": []},
            ("token", "list_keys"): {"keys": []},
            ("token", "list_readers"): {"readers": []},
        }
        for (plugin, name), payload in expected.items():
            assert agent.call(name, plugin=plugin) == {"success": True, "status": 1, **payload}, (plugin, name)
        # Signing with "baikey" says there is no token key (as with no token plugged in), not an internal error.
        reply = agent.call("create_pkcs7", "ZGF0YQ==", "baikey", plugin="pkcs7")
        assert reply == {"success": False, "status": -9999, "reason": i18n.text("ru", "reasons", "token_key_none")}
        assert "eimzo-agent[tokens]" in agent.log() and "Traceback" not in agent.log()
    finally:
        agent.stop()


def test_keys_with_a_module_says_install_the_extra(without_tokens_extra: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "eimzo_agent", "keys", "--pkcs11-module", SOFTHSM],
                            env=without_tokens_extra, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "install" in result.stderr.lower() and "eimzo-agent[tokens]" in result.stderr
    assert "Traceback" not in result.stderr


# --- 4. app.show_menu, app.get_jvm_version, ckc.supported_ckc -----------------------------------------------------


def test_show_menu_without_a_tray_says_so(setup: Setup) -> None:
    """The module's agent runs with --no-tray: nothing can be shown, and the page is told (not a false success)."""
    reply = setup.agent.call("show_menu", plugin="app")
    assert reply == {"success": False, "status": -9999, "reason": i18n.text("ru", "reasons", "menu_unavailable")}


def test_show_menu_opens_the_tray_menu(tmp_path: Path) -> None:
    """A real agent with its tray icon on a virtual X screen: a page's app.show_menu pops the menu up."""
    require_gui_tools()
    with xvfb("1024x600x24") as screen:
        agent = start_agent(tmp_path / "agent", env=screen.env(), tray=True)
        try:
            deadline = time.monotonic() + 20
            while "tray icon shown" not in agent.log():
                assert time.monotonic() < deadline, agent.log()
                time.sleep(0.1)
            assert not screen.xdotool("search", "--onlyvisible", "--class", "^Menu$", check=False)
            assert agent.call("apikey", "localhost", LOCALHOST_KEY)["success"] is True
            assert agent.call("show_menu", plugin="app") == {"success": True, "status": 1}
            menu = wait_for(lambda: screen.xdotool("search", "--onlyvisible", "--class", "^Menu$", check=False),
                            "the tray menu")
            screen.xdotool("key", "Escape")
            wait_for(lambda: not screen.xdotool("search", "--onlyvisible", "--class", "^Menu$", check=False),
                     f"the menu {menu} to close")
            assert agent.call("version")["success"] is True
            assert "Traceback" not in agent.log()
        finally:
            agent.stop()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_get_jvm_version_names_the_runtime_there_is(setup: Setup) -> None:
    reply = setup.agent.call("get_jvm_version", plugin="app")
    assert reply["success"] is True and reply["status"] == 1
    assert reply["message"] == f"Python {platform.python_version()} (eimzo-agent {__version__}, no JVM)"


def test_supported_ckc_lists_the_device_type_list_ckc_reports(setup: Setup) -> None:
    assert setup.agent.call("supported_ckc", plugin="ckc") == {"success": True, "status": 1, "list": ["PKCS11"]}


# --- 5. .yks files -------------------------------------------------------------------------------------------------


def test_the_ytks_plugin_is_not_answered(setup: Setup) -> None:
    """docs/compat.md: the YTKS format is not public, so `ytks.*` is an unknown function (status 0), as it says."""
    reply = setup.agent.call("list_all_certificates", plugin="ytks")
    assert reply == {"success": False, "status": 0,
                     "reason": i18n.text("ru", "reasons", "function_unknown", function="ytks.list_all_certificates")}
