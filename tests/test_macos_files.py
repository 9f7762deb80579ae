"""service_installers/macos/: what can be checked without a Mac.

The plists parse with plistlib and carry what launchd and codesign need; the LaunchAgent is the same job that
`eimzo-agent service install` writes; every script passes shellcheck and `bash -n` (or `sh -n`); install.sh and
uninstall.sh run here against a temporary root (`--root`), which is the whole file work they do on a Mac; the
package's launcher starts the agent through a stand-in Python; browser-policy.sh's files hold what the generator
makes. launchctl, pkgbuild, codesign and notarization need macOS and are not run (see the folder's README.md).
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from eimzo_agent.deploy.autostart.launchd import LABEL, plist_data
from eimzo_agent.deploy.browser_policy import chromium_policy, firefox_policy, parse_sites

REPO = Path(__file__).resolve().parents[1]
MACOS = REPO / "service_installers" / "macos"
PREFIX = "/Library/eimzo-agent"
SHELL_SCRIPTS = ["install.sh", "uninstall.sh", "browser-policy.sh", "build-pkg.sh", "launcher.sh", "postinstall"]


def _plist_from_template(prefix: str = PREFIX) -> dict:
    return plistlib.loads((MACOS / f"{LABEL}.plist.in").read_text().replace("@PREFIX@", prefix).encode())


def _fake_package(root: Path, prefix: str = PREFIX) -> Path:
    """The package's folder as the .pkg lays it out, with a stand-in python3 that runs this checkout's agent."""
    folder = root / prefix.lstrip("/")
    (folder / "bin").mkdir(parents=True)
    (folder / "python" / "bin").mkdir(parents=True)
    shutil.copy(MACOS / "launcher.sh", folder / "bin" / "eimzo-agent")
    python = folder / "python" / "bin" / "python3"
    # -B: the launcher's -I hides PYTHONPYCACHEPREFIX, and bytecode must not land in the checkout.
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -B "$@"\n')
    python.chmod(0o755)
    (folder / "share" / "macos").mkdir(parents=True)
    for name in ("install.sh", "uninstall.sh", f"{LABEL}.plist.in"):
        shutil.copy(MACOS / name, folder / "share" / "macos" / name)
    return folder


def _run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_launch_agent_template_is_the_same_job_as_service_install() -> None:
    data = _plist_from_template()
    # What launchd needs: a label and a program; the rest makes it a per-session agent that restarts on a crash.
    assert data["Label"] == LABEL
    assert data["ProgramArguments"] == [f"{PREFIX}/bin/eimzo-agent", "serve"]
    assert data["RunAtLoad"] is True
    assert data == plist_data([f"{PREFIX}/bin/eimzo-agent"])


def test_entitlements_and_distribution_file_parse() -> None:
    entitlements = plistlib.loads((MACOS / "entitlements.plist").read_bytes())
    assert entitlements == {"com.apple.security.cs.disable-library-validation": True,
                            "com.apple.security.cs.allow-unsigned-executable-memory": True}
    text = (MACOS / "distribution.xml.in").read_text().replace("@VERSION@", "0.1.0").replace("@ARCH@", "arm64")
    script = ElementTree.fromstring(text)
    assert script.find("options").get("hostArchitectures") == "arm64"  # type: ignore[union-attr]
    assert script.find("domains").get("enable_localSystem") == "true"  # type: ignore[union-attr]
    pkg_ref = script.findall("pkg-ref")[-1]
    assert (pkg_ref.get("id"), pkg_ref.get("version"), pkg_ref.text) == (
        "uz.eimzo-agent.pkg", "0.1.0", "eimzo-agent-component.pkg")


@pytest.mark.parametrize("name", SHELL_SCRIPTS)
def test_scripts_pass_shellcheck_and_a_syntax_check(name: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: run `bash scripts/bootstrap.sh --test`")
    script = MACOS / name
    assert os.access(script, os.X_OK), f"{name} must be executable"
    _run("shellcheck", script)
    shell = "bash" if script.read_text().startswith("#!/usr/bin/env bash") else "sh"
    _run(shell, "-n", script)


def test_install_writes_the_launch_agent_and_the_command_link(tmp_path: Path) -> None:
    _fake_package(tmp_path)
    result = _run("bash", MACOS / "install.sh", "--root", tmp_path)
    plist = tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    assert plistlib.loads(plist.read_bytes()) == plist_data([f"{PREFIX}/bin/eimzo-agent"])
    assert plist.stat().st_mode & 0o777 == 0o644
    if os.geteuid() == 0:
        assert (plist.stat().st_uid, plist.stat().st_gid) == (0, 0), "root:wheel, or launchd ignores it"
    link = tmp_path / "usr" / "local" / "bin" / "eimzo-agent"
    assert os.readlink(link) == f"{PREFIX}/bin/eimzo-agent"
    # Not the running system: nothing is loaded, and it says so.
    assert "starts at the next login" in result.stdout
    # Again (an upgrade): the same result, no error.
    _run("bash", MACOS / "install.sh", "--root", tmp_path)
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"][0] == f"{PREFIX}/bin/eimzo-agent"


def test_install_leaves_a_foreign_command_alone_and_refuses_bad_input(tmp_path: Path) -> None:
    _fake_package(tmp_path)
    foreign = tmp_path / "usr" / "local" / "bin" / "eimzo-agent"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("#!/bin/sh\necho someone else's\n")
    result = _run("bash", MACOS / "install.sh", "--root", tmp_path)
    assert "is not this package's" in result.stdout
    assert foreign.read_text().endswith("someone else's\n")
    bad = _run("bash", MACOS / "install.sh", "--root", tmp_path, "--prefix", "/Library/eimzo agent", check=False)
    assert bad.returncode == 1 and "--prefix must be an absolute path" in bad.stderr
    missing = _run("bash", MACOS / "install.sh", "--root", tmp_path, "--prefix", "/opt/elsewhere", check=False)
    assert missing.returncode == 1 and "/opt/elsewhere/bin/eimzo-agent is missing" in missing.stderr
    unknown = _run("bash", MACOS / "install.sh", "--bogus", check=False)
    assert unknown.returncode == 2 and "unknown option --bogus" in unknown.stderr


def test_the_postinstall_script_runs_the_packaged_install_script(tmp_path: Path) -> None:
    _fake_package(tmp_path)
    # Installer's arguments: package path, install location, target volume.
    _run("sh", MACOS / "postinstall", "/tmp/eimzo-agent.pkg", "/", str(tmp_path))
    assert (tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist").is_file()


def test_uninstall_removes_what_the_package_added_and_nothing_else(tmp_path: Path) -> None:
    _fake_package(tmp_path)
    _run("bash", MACOS / "install.sh", "--root", tmp_path)
    agents = tmp_path / "Library" / "LaunchAgents"
    other_agent = agents / "com.example.other.plist"
    other_agent.write_bytes(plistlib.dumps({"Label": "com.example.other", "ProgramArguments": ["/bin/true"]}))
    settings = tmp_path / "Library" / "Application Support" / "eimzo-agent" / "config.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('[sites]\nallowed_domains = ["my.gov.uz"]\n')
    keys = tmp_path / "Users" / "aziz" / "DSKEYS" / "key.pfx"
    keys.parent.mkdir(parents=True)
    keys.write_bytes(b"not touched")

    result = _run("bash", MACOS / "uninstall.sh", "--root", tmp_path)
    assert not (agents / f"{LABEL}.plist").exists()
    assert not (tmp_path / "usr" / "local" / "bin" / "eimzo-agent").is_symlink()
    assert not (tmp_path / PREFIX.lstrip("/")).exists()
    assert other_agent.is_file() and keys.read_bytes() == b"not touched"
    assert settings.is_file() and "--purge removes them" in result.stdout
    _run("bash", MACOS / "uninstall.sh", "--root", tmp_path, "--purge")
    assert not settings.parent.exists() and keys.is_file()


def test_uninstall_keeps_a_launch_agent_that_starts_another_program(tmp_path: Path) -> None:
    agents = tmp_path / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    plist = agents / f"{LABEL}.plist"
    plist.write_bytes(plistlib.dumps(plist_data(["/Users/aziz/.local/bin/eimzo-agent"])))
    result = _run("bash", MACOS / "uninstall.sh", "--root", tmp_path)
    assert plist.is_file() and "left as it is" in result.stdout


def test_the_launcher_runs_the_agent_through_the_packages_python_even_via_a_symlink(tmp_path: Path) -> None:
    from eimzo_agent import __version__

    folder = _fake_package(tmp_path)
    link = tmp_path / "usr" / "local" / "bin" / "eimzo-agent"
    link.parent.mkdir(parents=True)
    link.symlink_to(folder / "bin" / "eimzo-agent")
    for command in (folder / "bin" / "eimzo-agent", link):
        result = _run(command, "version")
        assert __version__ in result.stdout


def test_browser_policy_script_writes_the_generators_files_and_a_profile(tmp_path: Path) -> None:
    sites = ["https://my.gov.uz", "https://[*.]soliq.uz"]
    out = tmp_path / "policy"
    env = dict(os.environ, EIMZO_AGENT=str(Path(sys.executable).parent / "eimzo-agent"))
    arguments = [a for site in sites for a in ("--site", site)]
    result = subprocess.run(["bash", str(MACOS / "browser-policy.sh"), *arguments, "--out", str(out)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    expected = chromium_policy(parse_sites(sites))
    domains = ["com.google.Chrome", "com.microsoft.Edge", "org.chromium.Chromium"]
    for domain in domains:
        assert plistlib.loads((out / f"{domain}.plist").read_bytes()) == expected
    assert json.loads((out / "policies.json").read_text()) == firefox_policy(parse_sites(sites))
    profile = plistlib.loads((out / "eimzo-agent-browser-policy.mobileconfig").read_bytes())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadScope"] == "System"
    [payload] = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.ManagedClient.preferences"
    assert sorted(payload["PayloadContent"]) == sorted(domains)
    for domain in domains:
        assert payload["PayloadContent"][domain] == {"Forced": [{"mcx_preference_settings": expected}]}
    uuids = {profile["PayloadUUID"], payload["PayloadUUID"]}
    assert len(uuids) == 2 and all(len(u) == 36 and u == u.upper() for u in uuids)
    assert "https://[*.]soliq.uz" in profile["PayloadDescription"]


def test_browser_policy_script_stops_on_a_malformed_site(tmp_path: Path) -> None:
    env = dict(os.environ, EIMZO_AGENT=str(Path(sys.executable).parent / "eimzo-agent"))
    out = tmp_path / "policy"
    result = subprocess.run(["bash", str(MACOS / "browser-policy.sh"), "--site", "my.gov.uz/login", "--out",
                             str(out)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "my.gov.uz/login" in result.stderr
    assert not out.exists()
