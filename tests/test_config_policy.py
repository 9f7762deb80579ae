"""Group Policy: the admin file's twin in the Windows registry, and the ADMX/ADML templates that write it.

The registry is a dictionary here (`Hive`); config.WinregReader, the real one, runs under Wine in
test_msi_package.py. Checked: the mapping of every registry type to the settings' types (wrong ones named),
the precedence (defaults < user file < admin file < Group Policy < command line, key by key), and that the ADMX
templates are well-formed, complete in en/ru/uz, and write exactly the names the agent reads.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from eimzo_agent.config import (
    POLICY_KEY,
    POLICY_SOURCE,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_QWORD,
    REG_SZ,
    ConfigError,
    load_config,
    policy_settings,
    policy_values,
    registry_policy,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "service_installers" / "windows" / "policy"
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}
LANGUAGES = ("en-US", "ru-RU", "uz-Latn-UZ")


class Hive:
    """HKLM as {key: {name: (data, type)}} (case-insensitive), read the way config.PolicyReader reads."""

    def __init__(self, keys: dict[str, dict[str, tuple[Any, int]]]) -> None:
        self.keys = {key.lower(): values for key, values in keys.items()}
        for key in list(self.keys):  # parents exist too
            parts = key.split("\\")
            for n in range(1, len(parts)):
                self.keys.setdefault("\\".join(parts[:n]), {})
        self.original = {key.lower(): key for key in keys}

    def values(self, key: str) -> list[tuple[str, Any, int]]:
        return [(name, data, kind) for name, (data, kind) in self.keys.get(key.lower(), {}).items()]

    def subkeys(self, key: str) -> list[str]:
        prefix = key.lower() + "\\"
        return [self.original.get(k, k)[len(prefix):] for k in self.keys
                if k.startswith(prefix) and "\\" not in k[len(prefix):]]


def hive(**sections: dict[str, tuple[Any, int]]) -> Hive:
    return Hive({f"{POLICY_KEY}\\{section}": values for section, values in sections.items()})


def test_registry_types_become_setting_types() -> None:
    reader = Hive({
        POLICY_KEY + r"\sites": {"ask_unknown_sites": (0, REG_DWORD)},
        POLICY_KEY + r"\sites\allowed_domains": {"10": ("j.uz", REG_SZ), "2": ("b.uz", REG_SZ),
                                                  "1": ("a.uz", REG_SZ)},
        POLICY_KEY + r"\ui": {"Language": ("uz", REG_SZ), "password_tries": (5, REG_DWORD),
                              "prompt_timeout_seconds": ("90.5", REG_SZ)},
        POLICY_KEY + r"\keys": {"roots": (["D:\\Keys", "E:\\"], REG_MULTI_SZ), "key_id_ttl_hours": (48, REG_QWORD)},
        POLICY_KEY + r"\server": {"ws_port": (64646, REG_DWORD)},
    })
    assert policy_settings(reader) == {
        "sites": {"ask_unknown_sites": False, "allowed_domains": ["a.uz", "b.uz", "j.uz"]},
        "ui": {"language": "uz", "password_tries": 5, "prompt_timeout_seconds": 90.5},
        "keys": {"roots": ["D:\\Keys", "E:\\"], "key_id_ttl_hours": 48},
        "server": {"ws_port": 64646},
    }


@pytest.mark.parametrize(("sections", "message"), [
    ({"sites": {"ask_unknown_sites": (2, REG_DWORD)}}, r"\sites ask_unknown_sites: must be a DWORD 0 or 1"),
    ({"sites": {"ask_unknown_sites": ("0", REG_SZ)}}, r"\sites ask_unknown_sites: must be a DWORD 0 or 1"),
    ({"ui": {"password_tries": ("3", REG_SZ)}}, r"\ui password_tries: must be a DWORD (a whole number)"),
    ({"ui": {"language": (1, REG_DWORD)}}, r"\ui language: must be a string (REG_SZ)"),
    ({"ui": {"prompt_timeout_seconds": ("soon", REG_EXPAND_SZ)}}, "must be a DWORD or a number as text"),
    ({"sites": {"allowed_domains": ("a.uz", REG_SZ)}}, "must be a subkey of numbered string values"),
])
def test_wrong_registry_types_are_named(sections: dict[str, dict[str, tuple[Any, int]]], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        registry_policy(hive(**sections))
    assert str(caught.value).startswith(POLICY_SOURCE) and message in str(caught.value)


def test_unknown_names_are_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    """A newer ADMX template must not stop an older agent."""
    reader = Hive({POLICY_KEY: {"stray": (1, REG_DWORD)},
                   POLICY_KEY + r"\future": {"x": (1, REG_DWORD)},
                   POLICY_KEY + r"\ui": {"theme": ("dark", REG_SZ), "tray": (0, REG_DWORD)},
                   POLICY_KEY + r"\ui\colours": {"1": ("red", REG_SZ)}})
    with caplog.at_level(logging.WARNING):
        assert policy_settings(reader) == {"ui": {"tray": False}}
    assert len(caplog.records) == 4


def test_nothing_off_windows_without_a_reader() -> None:
    assert registry_policy() == {}


def test_policy_values_round_trip() -> None:
    """What the MSI writes (policy_values) is what the agent reads back."""
    written: dict[str, dict[str, tuple[Any, int]]] = {}
    for section, key, value in [("sites", "allowed_domains", ["my.gov.uz", "*.soliq.uz"]),
                                ("sites", "ask_unknown_sites", False), ("ui", "language", "kaa"),
                                ("ui", "prompt_timeout_seconds", 12.5), ("ui", "password_tries", 4)]:
        for registry_key, name, kind, data in policy_values(section, key, value):
            written.setdefault(registry_key, {})[name] = (data, kind)
    assert policy_settings(Hive(written)) == {
        "sites": {"allowed_domains": ["my.gov.uz", "*.soliq.uz"], "ask_unknown_sites": False},
        "ui": {"language": "kaa", "prompt_timeout_seconds": 12.5, "password_tries": 4}}


def test_precedence_user_admin_policy_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[ui]\nlanguage = "en"\npassword_tries = 7\ntray = false\n[sites]\nask_unknown_sites = false\n')
    admin = tmp_path / "admin.toml"
    admin.write_text('[ui]\nlanguage = "ru"\npassword_tries = 5\n[sites]\nallowed_domains = ["file.uz", "x.uz"]\n')
    monkeypatch.setenv("EIMZO_AGENT_SYSTEM_CONFIG", str(admin))
    policy = hive(ui={"language": ("uz", REG_SZ)}, **{"sites\\allowed_domains": {"1": ("gpo.uz", REG_SZ)}})
    config = load_config(user, policy=policy)
    assert config.language == "uz"  # Group Policy over the admin file over the user's
    assert config.password_tries == 5  # the admin file over the user's; the policy does not set it
    assert config.tray is False  # only the user's file says it
    assert config.ask_unknown_sites is False
    assert config.allowed_domains == ["gpo.uz"]  # lists are replaced whole, not merged
    assert config.sources == [user, admin, Path(POLICY_SOURCE)]
    assert load_config(user, {"language": "kaa"}, policy=policy).language == "kaa"  # the command line wins


def test_policy_values_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"^HKLM\\SOFTWARE\\Policies\\eimzo-agent: ui\.password_tries = 50: "
                                          "expected a whole number from 1 to 10"):
        load_config(policy=hive(ui={"password_tries": (50, REG_DWORD)}))
    with pytest.raises(ConfigError, match=r"ui\.language = 'de': expected one of"):
        load_config(policy=hive(ui={"language": ("de", REG_SZ)}))


# --- the ADMX/ADML templates ---------------------------------------------------------------------------------

def admx() -> ET.Element:
    return ET.parse(TEMPLATES / "eimzo-agent.admx").getroot()


def adml(language: str) -> ET.Element:
    return ET.parse(TEMPLATES / language / "eimzo-agent.adml").getroot()


def enabled_values(policy: ET.Element) -> dict[str, dict[str, tuple[Any, int]]]:
    """The registry values an enabled policy writes, with a sample for each element."""
    written: dict[str, dict[str, tuple[Any, int]]] = {}
    key = policy.get("key")
    assert key is not None and key.lower().startswith("software\\policies\\eimzo-agent\\")
    if policy.get("valueName"):
        decimal = policy.find("p:enabledValue/p:decimal", NS)
        assert decimal is not None
        written.setdefault(key, {})[policy.get("valueName")] = (int(decimal.get("value")), REG_DWORD)
    for element in policy.findall("p:elements/*", NS):
        tag = element.tag.split("}")[1]
        if tag == "list":
            assert element.get("valuePrefix") == "", "list values must be named 1, 2, ..."
            first = "a.uz" if element.get("key", "").lower().endswith("allowed_domains") else "D:\\a.uz"
            written.setdefault(element.get("key"), {}).update({"1": (first, REG_SZ), "2": ("b.uz", REG_SZ)})
        elif tag == "enum":
            first = element.find("p:item/p:value/p:string", NS)
            written.setdefault(key, {})[element.get("valueName")] = (first.text, REG_SZ)
        elif tag == "decimal":
            written.setdefault(key, {})[element.get("valueName")] = (int(element.get("minValue", "1")), REG_DWORD)
        else:
            raise AssertionError(f"element {tag} not handled by this test")
    return written


def test_admx_policies_write_what_the_agent_reads(caplog: pytest.LogCaptureFixture) -> None:
    policies = admx().findall("p:policies/p:policy", NS)
    assert {p.get("name") for p in policies} >= {"AllowedDomains", "AskUnknownSites", "Language", "Tray",
                                                  "PasswordTries"}
    for policy in policies:
        assert policy.get("class") == "Machine"
        with caplog.at_level(logging.WARNING):
            read = registry_policy(Hive(enabled_values(policy)))
        assert not caplog.records, f"{policy.get('name')}: the agent does not know {caplog.records[0].message}"
        assert read, policy.get("name")
        load_config(policy=Hive(enabled_values(policy)))  # and the values are acceptable settings


def test_admx_language_choices_are_the_agents() -> None:
    from eimzo_agent.i18n import LANGUAGES as AGENT_LANGUAGES

    items = admx().findall(".//p:enum[@id='LanguageEnum']/p:item/p:value/p:string", NS)
    assert sorted(item.text for item in items) == sorted(AGENT_LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_adml_complete(language: str) -> None:
    definitions = admx()
    resources = adml(language)
    strings = {s.get("id"): (s.text or "") for s in resources.findall(".//p:stringTable/p:string", NS)}
    presentations = {p.get("id"): p for p in resources.findall(".//p:presentationTable/p:presentation", NS)}
    text = ET.tostring(definitions, encoding="unicode")
    for ref in re.findall(r"\$\(string\.(\w+)\)", text):
        assert strings.get(ref, "").strip(), f"{language}: string {ref} is missing"
    for policy in definitions.findall("p:policies/p:policy", NS):
        reference = policy.get("presentation")
        elements = {e.get("id") for e in policy.findall("p:elements/*", NS)}
        if reference is None:
            assert not elements
            continue
        presentation = presentations[reference.removeprefix("$(presentation.").removesuffix(")")]
        assert {child.get("refId") for child in presentation} == elements
    assert set(strings) == {s.get("id") for s in adml("en-US").findall(".//p:stringTable/p:string", NS)}
