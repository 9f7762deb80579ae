"""The browser-policy generator (`eimzo-agent policy browser`): patterns checked, every format well-formed."""

from __future__ import annotations

import json
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from eimzo_agent.deploy.browser_policy import (
    PolicyError,
    chromium_policy,
    from_allowed_domains,
    merge_firefox,
    parse_site,
    parse_sites,
    registry_values,
    unmerge_firefox,
)


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", "policy", "browser", *args], capture_output=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("text", "shown"), [
    ("https://my.gov.uz", "https://my.gov.uz"),
    ("HTTPS://My.Gov.UZ/", "https://my.gov.uz"),
    ("https://[*.]soliq.uz", "https://[*.]soliq.uz"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("https://127.0.0.2:8443", "https://127.0.0.2:8443"),
])
def test_good_patterns(text: str, shown: str) -> None:
    assert str(parse_site(text)) == shown


@pytest.mark.parametrize(("text", "why"), [
    ("my.gov.uz", "scheme is missing"),
    ("ftp://my.gov.uz", "only http and https"),
    ("https://*.soliq.uz", "[*.]domain"),
    ("https://a*.uz", "[*.]domain"),
    ("https://my.gov.uz/path", "path"),
    ("https://user@my.gov.uz", "user"),
    ("https://my.gov.uz:0", "out of range"),
    ("https://my.gov.uz:70000", "out of range"),
    ("https://-bad-.uz", "not a host name"),
    ("https://", "not a site pattern"),
])
def test_bad_patterns_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_site(text)
    assert why in str(caught.value) and "https://my.gov.uz" in str(caught.value)


def test_allowed_domains_become_https_portals() -> None:
    sites = from_allowed_domains(["my.gov.uz", " *.soliq.uz ", "", "my.gov.uz"])
    assert [str(s) for s in sites] == ["https://my.gov.uz", "https://[*.]soliq.uz"]
    with pytest.raises(PolicyError):
        from_allowed_domains([])


def test_firefox_merge_keeps_the_admins_policies_and_unmerge_removes_only_ours() -> None:
    sites = parse_sites(["https://my.gov.uz", "https://[*.]soliq.uz"])
    existing = {"policies": {"DisableTelemetry": True, "LocalNetworkAccess": {"Enabled": True, "Locked": True,
                                                                             "SkipDomains": ["intranet.local"]}}}
    merged = merge_firefox(existing, sites)
    assert merged["policies"]["DisableTelemetry"] is True
    assert merged["policies"]["LocalNetworkAccess"] == {
        "Enabled": True, "Locked": True, "SkipDomains": ["intranet.local", "my.gov.uz", "soliq.uz"]}
    assert merge_firefox(merged, sites) == merged  # idempotent
    assert unmerge_firefox(merged, sites) == existing
    fresh = merge_firefox(None, sites)
    assert unmerge_firefox(fresh, sites) == {"policies": {}}
    with pytest.raises(PolicyError):
        merge_firefox({"policies": []}, sites)


def test_registry_values_number_each_list_from_one() -> None:
    values = registry_values(parse_sites(["https://a.uz", "https://b.uz"]), "edge")
    assert values[:2] == [(r"SOFTWARE\Policies\Microsoft\Edge\LocalNetworkAccessAllowedForUrls", "1", "https://a.uz"),
                          (r"SOFTWARE\Policies\Microsoft\Edge\LocalNetworkAccessAllowedForUrls", "2", "https://b.uz")]
    assert len(values) == 4


def test_cli_formats(tmp_path: Path) -> None:
    site = ("--site", "https://my.gov.uz", "--site", "https://[*.]soliq.uz")
    printed = cli(*site)
    assert printed.returncode == 0
    assert json.loads(printed.stdout) == chromium_policy(parse_sites(["https://my.gov.uz", "https://[*.]soliq.uz"]))
    assert cli(*site, "--format", "firefox-json", "--out", str(tmp_path)).returncode == 0
    assert json.loads((tmp_path / "policies.json").read_text())["policies"]["LocalNetworkAccess"]["SkipDomains"] == [
        "my.gov.uz", "soliq.uz"]
    assert cli(*site, "--format", "macos-plist", "--out", str(tmp_path)).returncode == 0
    plist = plistlib.loads((tmp_path / "com.google.Chrome.plist").read_bytes())
    assert plist["LoopbackNetworkAllowedForUrls"] == ["https://my.gov.uz", "https://[*.]soliq.uz"]
    reg = cli(*site, "--format", "windows-reg").stdout
    assert reg.startswith(b"\xff\xfe")
    text = reg.decode("utf-16")  # the BOM says little-endian, and is consumed
    assert text.startswith("Windows Registry Editor Version 5.00\r\n")
    key = r"[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Google\Chrome\LoopbackNetworkAllowedForUrls]"
    assert f'{key}\r\n"1"="https://my.gov.uz"' in text


def test_cli_bad_site_is_a_clear_error_with_status_2() -> None:
    result = cli("--site", "soliq.uz:443")
    assert result.returncode == 2
    assert b"the scheme is missing" in result.stderr and b"Traceback" not in result.stderr


# --apply / --remove: what the Linux package's scripts run, here under a temporary --root.

def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under root."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def settings(tmp_path: Path, sites_section: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[ui]\nlanguage = \"uz\"\n\n[sites]\n{sites_section}\n")
    return path


CHROMIUM_FILES = ["etc/chromium/policies/managed/eimzo-agent.json", "etc/opt/chrome/policies/managed/eimzo-agent.json",
                  "etc/opt/edge/policies/managed/eimzo-agent.json"]


@pytest.mark.parametrize("admins", [
    None,  # no policies.json yet: ours is made, and removed again with the folders it needed
    {"policies": {"LocalNetworkAccess": {"Enabled": True}}},  # the admin's own LNA setting, without domains
    {"policies": {"DisableTelemetry": True, "LocalNetworkAccess": {
        "Enabled": True, "Locked": True, "SkipDomains": ["intranet.uz", "my.gov.uz"]}}},
], ids=["no-file", "lna-without-domains", "own-domains"])
def test_apply_merges_into_firefox_and_remove_undoes_exactly_that(tmp_path: Path, admins: dict | None) -> None:
    root = tmp_path / "root"
    (root / "etc/chromium/policies/managed").mkdir(parents=True)
    (root / "etc/chromium/policies/managed/admin.json").write_text('{"HomepageLocation": "https://intranet.uz"}\n')
    firefox = root / "etc/firefox/policies/policies.json"
    if admins is not None:
        firefox.parent.mkdir(parents=True)
        firefox.write_text(json.dumps(admins))
    before = tree(root)
    config = settings(tmp_path, 'allowed_domains = ["my.gov.uz", "*.soliq.uz"]')

    assert cli("--apply", "--from-config", str(config), "--root", str(root)).returncode == 0
    for name in CHROMIUM_FILES:
        assert json.loads((root / name).read_text()) == chromium_policy(
            parse_sites(["https://my.gov.uz", "https://[*.]soliq.uz"]))
    merged = json.loads(firefox.read_text())
    own = (admins or {}).get("policies", {}).get("LocalNetworkAccess", {}).get("SkipDomains", [])
    assert merged["policies"]["LocalNetworkAccess"]["SkipDomains"] == [*own, *(d for d in ("my.gov.uz", "soliq.uz")
                                                                              if d not in own)]
    # Applied again with other portals: the earlier ones are replaced, not added to.
    assert cli("--apply", "--site", "https://new.uz", "--root", str(root)).returncode == 0
    assert json.loads((root / CHROMIUM_FILES[0]).read_text())["LoopbackNetworkAllowedForUrls"] == ["https://new.uz"]
    assert json.loads(firefox.read_text())["policies"]["LocalNetworkAccess"]["SkipDomains"] == [*own, "new.uz"]

    assert cli("--remove", "--root", str(root)).returncode == 0
    after = tree(root)
    if admins is not None:  # rewritten, so compared as JSON
        assert json.loads(after.pop("etc/firefox/policies/policies.json") or b"") == admins
        before.pop("etc/firefox/policies/policies.json")
    assert after == before
    assert cli("--remove", "--root", str(root)).returncode == 0  # nothing recorded: nothing to do


@pytest.mark.parametrize(("sites_section", "message"), [
    ('allowed_domains = "my.gov.uz"', "{config}: sites.allowed_domains has the wrong type (str)"),
    ("ask_unknown_sites = false", "{config}: [sites] allowed_domains names no portal"),
    ('allowed_domains = ["my.gov.uz/login"]', "{config}: sites.allowed_domains: 'my.gov.uz/login' is a web address"),
    ('allowed_domains = ["my.gov.uz"', "{config}: not valid TOML"),
])
def test_apply_with_bad_settings_names_the_file_and_key_and_writes_nothing(tmp_path: Path, sites_section: str,
                                                                           message: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config = settings(tmp_path, sites_section)
    result = cli("--apply", "--from-config", str(config), "--root", str(root))
    assert result.returncode == 2
    assert message.format(config=config) in result.stderr.decode() and b"Traceback" not in result.stderr
    assert tree(root) == {}


def test_apply_refuses_an_unreadable_firefox_policies_file_before_writing_anything(tmp_path: Path) -> None:
    root = tmp_path / "root"
    firefox = root / "etc/firefox/policies/policies.json"
    firefox.parent.mkdir(parents=True)
    firefox.write_text('{"policies": ')
    before = tree(root)
    result = cli("--apply", "--site", "https://my.gov.uz", "--root", str(root))
    assert result.returncode == 2
    assert f"{firefox}: cannot read it as JSON".encode() in result.stderr
    assert tree(root) == before


@pytest.mark.parametrize("args", [
    ("--apply", "--site", "https://my.gov.uz", "--format", "firefox-json"),
    ("--remove", "--site", "https://my.gov.uz"),
    ("--apply",),
    (),
])
def test_apply_and_remove_reject_what_they_cannot_use(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = cli(*args, "--root", str(root))
    assert result.returncode == 2 and result.stderr.startswith(b"eimzo-agent: ")
    assert tree(root) == {}
