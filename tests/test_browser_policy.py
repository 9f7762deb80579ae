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
