"""The Windows installer's settings and browser-policy step (eimzo_agent.deploy.windows_setup), on Linux.

The registry is a dictionary here (`MemoryRegistry`, HKLM as {key: {name: (type, data)}}), the one stand-in for
the operating system; the same module runs against the real registry under Wine in test_msi_package.py. What is
checked: every property rule (with the message naming the value), that nothing is written before all values are
checked, what lands where, upgrades and re-runs, exact undo on uninstall (values we replaced come back, values
changed since stay), Firefox's policies.json merged and restored, and undo of a half-done install.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eimzo_agent.config import REG_DWORD, REG_SZ, policy_settings
from eimzo_agent.deploy import windows_setup
from eimzo_agent.deploy.windows_setup import STATE_KEY, SetupError, install, uninstall

POLICY = r"SOFTWARE\Policies\eimzo-agent"
CHROME_LNA = r"SOFTWARE\Policies\Google\Chrome\LocalNetworkAccessAllowedForUrls"
EDGE_LOOPBACK = r"SOFTWARE\Policies\Microsoft\Edge\LoopbackNetworkAllowedForUrls"


class MemoryRegistry:
    """HKLM as a dictionary, case-insensitive like the real one; keys exist once created (as with winreg)."""

    def __init__(self, keys: dict[str, dict[str, tuple[int, Any]]] | None = None) -> None:
        self.keys: dict[str, dict[str, tuple[int, Any]]] = {}
        self.names: dict[str, str] = {}
        for key in ["SOFTWARE", r"SOFTWARE\Policies", r"SOFTWARE\Policies\Microsoft", *(keys or {})]:
            self._create(key)
        for key, values in (keys or {}).items():
            for name, value in values.items():
                self.keys[key.lower()][name.lower()] = value
                self.names[f"{key.lower()}|{name.lower()}"] = name
        self.fail_on: str | None = None  # a value name whose write raises (a full registry, a denied key)

    def _create(self, key: str) -> None:
        parts = key.split("\\")
        for n in range(1, len(parts) + 1):
            self.keys.setdefault("\\".join(parts[:n]).lower(), {})

    def read(self, key: str, name: str) -> tuple[int, Any] | None:
        return self.keys.get(key.lower(), {}).get(name.lower())

    def write(self, key: str, name: str, kind: int, data: Any) -> None:
        if name == self.fail_on:
            raise PermissionError(f"access denied writing {name}")
        self._create(key)
        self.keys[key.lower()][name.lower()] = (kind, data)

    def delete_value(self, key: str, name: str) -> None:
        self.keys.get(key.lower(), {}).pop(name.lower(), None)

    def key_exists(self, key: str) -> bool:
        return key.lower() in self.keys

    def delete_key(self, key: str) -> bool:
        lowered = key.lower()
        if lowered not in self.keys or self.keys[lowered] or any(k.startswith(lowered + "\\") for k in self.keys):
            return False
        del self.keys[lowered]
        return True

    def snapshot(self) -> dict[str, dict[str, tuple[int, Any]]]:
        return {key: dict(values) for key, values in self.keys.items()}

    # config.PolicyReader, so the agent's own reader can read what the installer wrote
    def values(self, key: str) -> list[tuple[str, Any, int]]:
        return [(name, data, kind) for name, (kind, data) in self.keys.get(key.lower(), {}).items()]

    def subkeys(self, key: str) -> list[str]:
        prefix = key.lower() + "\\"
        return [k[len(prefix):] for k in self.keys if k.startswith(prefix) and "\\" not in k[len(prefix):]]


def run_install(registry: MemoryRegistry, firefox: list[Path] | None = None, **given: str) -> list[str]:
    said: list[str] = []
    install(registry, given, firefox=lambda: list(firefox or []), say=said.append)
    return said


# --- property rules ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("my.gov.uz", ["my.gov.uz"]),
    ("my.gov.uz, *.soliq.uz", ["my.gov.uz", "*.soliq.uz"]),
    ("MY.GOV.UZ.;*.Soliq.uz  my.gov.uz", ["my.gov.uz", "*.soliq.uz"]),
    ("localhost", ["localhost"]),
    ("10.0.0.5 my.gov.uz", ["10.0.0.5", "my.gov.uz"]),  # an intranet portal by address
])
def test_domains_accepted(text: str, expected: list[str]) -> None:
    assert windows_setup.parse_domains(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("https://my.gov.uz", "ALLOWED_DOMAINS: 'https://my.gov.uz' is a web address; name only the host, e.g. "
                          "'my.gov.uz'"),
    ("my.gov.uz/login", "ALLOWED_DOMAINS: 'my.gov.uz/login' is a web address"),
    ("my.gov.uz:8443", "ALLOWED_DOMAINS: 'my.gov.uz:8443' has a port"),
    ("soliq.*.uz", "ALLOWED_DOMAINS: 'soliq.*.uz': a wildcard may only start an entry"),
    ("*soliq.uz", "ALLOWED_DOMAINS: '*soliq.uz': a wildcard may only start an entry"),
    ("my_gov.uz", "ALLOWED_DOMAINS: 'my_gov.uz' is not a host name"),
    ("-x.uz", "ALLOWED_DOMAINS: '-x.uz' is not a host name"),
    ("*.10.0.0", "ALLOWED_DOMAINS: '*.10.0.0' is not a host name"),
    ("010.0.0.5", "ALLOWED_DOMAINS: '010.0.0.5' is not a host name"),
    (" , ;", "ALLOWED_DOMAINS: ' , ;' names no host"),
])
def test_domains_refused_with_the_value_named(text: str, message: str) -> None:
    with pytest.raises(SetupError) as caught:
        windows_setup.parse_domains(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("given", "message"), [
    ({"ASK_UNKNOWN_SITES": "2"}, "ASK_UNKNOWN_SITES: '2' must be 0 or 1"),
    ({"ASK_UNKNOWN_SITES": "yes"}, "ASK_UNKNOWN_SITES: 'yes' must be 0 or 1"),
    ({"CHROME_POLICY": "true"}, "CHROME_POLICY: 'true' must be 0 or 1"),
    ({"EDGE_POLICY": "-1"}, "EDGE_POLICY: '-1' must be 0 or 1"),
    ({"FIREFOX_POLICY": "on"}, "FIREFOX_POLICY: 'on' must be 0 or 1"),
    ({"CHROME_POLICY": "1", "LANGUAGE": "de"}, "LANGUAGE: 'de' is not one of ru, uz, kaa, en"),
    ({"COLOUR": "1"}, "COLOUR is not a property of this installer"),
    ({"ALLOWED_DOMAINS": "", "CHROME_POLICY": "1"}, "CHROME_POLICY=1 needs ALLOWED_DOMAINS"),
    ({"ALLOWED_DOMAINS": " ", "FIREFOX_POLICY": "1"}, "FIREFOX_POLICY=1 needs ALLOWED_DOMAINS"),
    ({"ALLOWED_DOMAINS": "https://x.uz", "CHROME_POLICY": "1"}, "ALLOWED_DOMAINS: 'https://x.uz' is a web address"),
])
def test_bad_values_fail_before_anything_is_written(given: dict[str, str], message: str) -> None:
    registry = MemoryRegistry({r"SOFTWARE\Policies\Google\Chrome": {"Other": (REG_SZ, "kept")}})
    before = registry.snapshot()
    with pytest.raises(SetupError) as caught:
        run_install(registry, **{"ALLOWED_DOMAINS": "my.gov.uz", **given})
    assert str(caught.value).startswith(message)
    assert registry.snapshot() == before


def test_empty_values_are_properties_not_given() -> None:
    registry = MemoryRegistry()
    run_install(registry, ALLOWED_DOMAINS=" ", ASK_UNKNOWN_SITES="", LANGUAGE="", CHROME_POLICY="")
    assert policy_settings(registry) == {}
    assert json.loads(registry.read(STATE_KEY, "State")[1])["properties"] == {}


# --- what lands where ----------------------------------------------------------------------------------------

def test_settings_become_the_group_policy_the_agent_reads() -> None:
    registry = MemoryRegistry()
    said = run_install(registry, ALLOWED_DOMAINS="my.gov.uz,*.soliq.uz", ASK_UNKNOWN_SITES="0", LANGUAGE="UZ")
    assert registry.read(POLICY + r"\sites\allowed_domains", "1") == (REG_SZ, "my.gov.uz")
    assert registry.read(POLICY + r"\sites\allowed_domains", "2") == (REG_SZ, "*.soliq.uz")
    assert registry.read(POLICY + r"\sites", "ask_unknown_sites") == (REG_DWORD, 0)
    assert registry.read(POLICY + r"\ui", "language") == (REG_SZ, "uz")
    # the agent's own reader sees exactly the admin file's shape
    assert policy_settings(registry) == {"sites": {"allowed_domains": ["my.gov.uz", "*.soliq.uz"],
                                                   "ask_unknown_sites": False},
                                         "ui": {"language": "uz"}}
    assert rf"set HKLM\{POLICY}\ui language = 'uz'" in said
    # no browser policy unless asked
    assert not registry.key_exists(r"SOFTWARE\Policies\Google")
    assert not registry.key_exists(r"SOFTWARE\Policies\Microsoft\Edge")


def test_browser_policies_when_asked() -> None:
    registry = MemoryRegistry()
    run_install(registry, ALLOWED_DOMAINS="my.gov.uz,*.soliq.uz", CHROME_POLICY="1", EDGE_POLICY="1")
    for key in (CHROME_LNA, EDGE_LOOPBACK):
        assert registry.read(key, "1") == (REG_SZ, "https://my.gov.uz")
        assert registry.read(key, "2") == (REG_SZ, "https://[*.]soliq.uz")


def test_rerun_keeps_what_is_not_given_and_changes_what_is() -> None:
    registry = MemoryRegistry()
    run_install(registry, ALLOWED_DOMAINS="a.uz,b.uz,c.uz", CHROME_POLICY="1", LANGUAGE="kaa")
    run_install(registry)  # an upgrade without properties
    assert policy_settings(registry)["sites"]["allowed_domains"] == ["a.uz", "b.uz", "c.uz"]
    assert registry.read(CHROME_LNA, "3") == (REG_SZ, "https://c.uz")
    run_install(registry, ALLOWED_DOMAINS="b.uz")  # a shorter list: the extra numbered values go
    assert policy_settings(registry) == {"sites": {"allowed_domains": ["b.uz"]}, "ui": {"language": "kaa"}}
    assert registry.read(CHROME_LNA, "1") == (REG_SZ, "https://b.uz")
    assert registry.read(CHROME_LNA, "2") is None
    run_install(registry, CHROME_POLICY="0")  # switched off: the values and the keys made for them go
    assert not registry.key_exists(r"SOFTWARE\Policies\Google")
    uninstall(registry, say=lambda _: None)
    assert registry.snapshot() == MemoryRegistry().snapshot()


def test_uninstall_takes_away_exactly_what_was_added() -> None:
    admin = {r"SOFTWARE\Policies\Google\Chrome": {"HomepageLocation": (REG_SZ, "https://intranet")},
             POLICY + r"\ui": {"language": (REG_SZ, "ru"), "tray": (REG_DWORD, 0)}}
    registry = MemoryRegistry(admin)
    before = registry.snapshot()
    run_install(registry, ALLOWED_DOMAINS="my.gov.uz", LANGUAGE="uz", CHROME_POLICY="1", EDGE_POLICY="1")
    assert registry.read(POLICY + r"\ui", "language") == (REG_SZ, "uz")
    said: list[str] = []
    uninstall(registry, say=said.append)
    # the GPO's language comes back, its other values and the admin's Chrome policy were never touched
    assert registry.snapshot() == before
    assert rf"restored HKLM\{POLICY}\ui language = 'ru'" in said


def test_uninstall_leaves_values_changed_since() -> None:
    registry = MemoryRegistry()
    run_install(registry, ALLOWED_DOMAINS="my.gov.uz", ASK_UNKNOWN_SITES="1")
    registry.write(POLICY + r"\sites", "ask_unknown_sites", REG_DWORD, 0)  # a GPO set it since
    said: list[str] = []
    uninstall(registry, say=said.append)
    assert registry.read(POLICY + r"\sites", "ask_unknown_sites") == (REG_DWORD, 0)
    assert registry.read(POLICY + r"\sites\allowed_domains", "1") is None
    assert rf"left HKLM\{POLICY}\sites ask_unknown_sites: it was changed after the install" in said
    assert not registry.key_exists(STATE_KEY)


def test_uninstall_without_a_record_does_nothing() -> None:
    registry = MemoryRegistry({POLICY + r"\ui": {"language": (REG_SZ, "ru")}})
    before = registry.snapshot()
    uninstall(registry, say=lambda _: None)
    assert registry.snapshot() == before


def test_a_failed_write_puts_everything_back() -> None:
    registry = MemoryRegistry({POLICY + r"\ui": {"language": (REG_SZ, "ru")}})
    run_install(registry, ALLOWED_DOMAINS="a.uz")
    before = registry.snapshot()
    registry.fail_on = "language"
    with pytest.raises(PermissionError):
        run_install(registry, ALLOWED_DOMAINS="b.uz,c.uz", LANGUAGE="en", CHROME_POLICY="1")
    assert registry.snapshot() == before


def test_damaged_record_is_named() -> None:
    registry = MemoryRegistry({STATE_KEY: {"State": (REG_SZ, "{not json")}})
    with pytest.raises(SetupError, match=r"HKLM\\SOFTWARE\\eimzo-agent\\Installer State is damaged"):
        run_install(registry, LANGUAGE="en")


def test_main_reports_bad_values_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    registry = MemoryRegistry()
    status = windows_setup.main(["install", "--allowed-domains", "https://my.gov.uz", "--language", ""], registry)
    assert status == 2
    assert capsys.readouterr().out == ("eimzo-agent setup: ALLOWED_DOMAINS: 'https://my.gov.uz' is a web address; "
                                       "name only the host, e.g. 'my.gov.uz'\n")
    assert registry.snapshot() == MemoryRegistry().snapshot()


def test_main_uninstall_removes_left_byte_code(tmp_path: Path) -> None:
    (tmp_path / "python.exe").write_bytes(b"")
    cache = tmp_path / "Lib" / "site-packages" / "x" / "__pycache__"
    cache.mkdir(parents=True)
    (cache / "m.cpython-313.pyc").write_bytes(b"")
    (tmp_path / "Lib" / "site-packages" / "x" / "m.py").write_text("")
    assert windows_setup.main(["uninstall", "--install-dir", str(tmp_path)], MemoryRegistry()) == 0
    assert not cache.exists()
    assert (tmp_path / "Lib" / "site-packages" / "x" / "m.py").exists()


# --- Firefox -------------------------------------------------------------------------------------------------

def test_firefox_policies_merged_and_restored(tmp_path: Path) -> None:
    firefox = tmp_path / "Mozilla Firefox"
    (firefox / "distribution").mkdir(parents=True)
    admin = {"policies": {"DisableTelemetry": True,
                          "LocalNetworkAccess": {"Enabled": True, "SkipDomains": ["intranet.uz", "my.gov.uz"]}}}
    (firefox / "distribution" / "policies.json").write_text(json.dumps(admin))
    registry = MemoryRegistry()
    run_install(registry, [firefox], ALLOWED_DOMAINS="my.gov.uz,*.soliq.uz", FIREFOX_POLICY="1")
    merged = json.loads((firefox / "distribution" / "policies.json").read_text())
    assert merged["policies"]["DisableTelemetry"] is True
    assert merged["policies"]["LocalNetworkAccess"]["SkipDomains"] == ["intranet.uz", "my.gov.uz", "soliq.uz"]
    uninstall(registry, say=lambda _: None)
    # my.gov.uz was the admin's before us: it stays
    assert json.loads((firefox / "distribution" / "policies.json").read_text()) == admin


def test_firefox_file_we_made_is_removed(tmp_path: Path) -> None:
    firefox = tmp_path / "Program Files" / "Mozilla Firefox"
    firefox.mkdir(parents=True)
    registry = MemoryRegistry()
    run_install(registry, [firefox], ALLOWED_DOMAINS="my.gov.uz", FIREFOX_POLICY="1")
    assert json.loads((firefox / "distribution" / "policies.json").read_text()) == {
        "policies": {"LocalNetworkAccess": {"Enabled": True, "SkipDomains": ["my.gov.uz"]}}}
    run_install(registry, [firefox], FIREFOX_POLICY="0")
    assert not (firefox / "distribution").exists()
    uninstall(registry, say=lambda _: None)
    assert list(firefox.iterdir()) == []


def test_firefox_broken_policies_json_is_named(tmp_path: Path) -> None:
    firefox = tmp_path / "Mozilla Firefox"
    (firefox / "distribution").mkdir(parents=True)
    (firefox / "distribution" / "policies.json").write_text("{oops")
    registry = MemoryRegistry()
    before = registry.snapshot()
    with pytest.raises(SetupError, match=r"FIREFOX_POLICY: .*policies\.json is not readable JSON"):
        run_install(registry, [firefox], ALLOWED_DOMAINS="my.gov.uz", CHROME_POLICY="1", FIREFOX_POLICY="1")
    assert registry.snapshot() == before  # the Chrome values written before were taken back


def test_firefox_found_from_mozilla_registry_keys(tmp_path: Path) -> None:
    installed = tmp_path / "Firefox ESR"
    default = tmp_path / "Program Files"
    (default / "Mozilla Firefox").mkdir(parents=True)
    (default / "Mozilla Firefox" / "firefox.exe").write_bytes(b"")
    registry = MemoryRegistry({
        r"SOFTWARE\Mozilla\Mozilla Firefox ESR": {"CurrentVersion": (REG_SZ, "128.5.0esr (x64 ru)")},
        r"SOFTWARE\Mozilla\Mozilla Firefox ESR\128.5.0esr (x64 ru)\Main": {
            "Install Directory": (REG_SZ, str(installed))},
    })
    assert windows_setup.firefox_folders(registry, [str(default), str(tmp_path / "none")]) == [
        installed, default / "Mozilla Firefox"]
