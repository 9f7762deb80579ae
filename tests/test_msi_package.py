"""The Windows installer, built here and installed into Wine: what an IT admin's `msiexec /i … /qn` does.

`bash service_installers/build.sh msi` builds the package once per test session (downloads kept for the session,
so the upgrade package built later reuses them); Debian's wine64 gets a private prefix (a Windows machine in a
temporary folder), made once. Each test installs and uninstalls in that prefix and leaves it as it found it.
What is checked: the tables (`msiinfo`), a silent install with properties (files, Run value, Start-menu entry,
the settings as Group Policy values that the bundled Python's load_config() reads), the browser policies only when
asked and gone after uninstall, Firefox's policies.json merged and restored, bad property values (the install fails
naming the value, nothing stays), an upgrade (settings kept, running agents ended), and the bundled Python running
the O'zDSt hash through gost94.dll on the known-answer vectors, signing through ozdst_ec.dll, importing
websockets and Tk.
`cryptography` 50 does not load under Wine 8 (no ProcessPrng in bcryptprimitives), so nothing here imports it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wine import INSTALL_FAILURE, Wine

from eimzo_agent import __version__

ROOT = Path(__file__).resolve().parents[1]
KAT = ROOT / "tests" / "data" / "eimzo-kat.json"
INSTALL_DIR = r"C:\Program Files\eimzo-agent"
RUN_KEY = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run"
POLICY = r"HKLM\SOFTWARE\Policies\eimzo-agent"
CHROME = r"HKLM\SOFTWARE\Policies\Google\Chrome"
EDGE = r"HKLM\SOFTWARE\Policies\Microsoft\Edge"
STATE = r"HKLM\SOFTWARE\eimzo-agent"
UNINSTALL = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall"
MAX_MSI_BYTES = 45 * 1024 * 1024


def build(out: Path, downloads: Path, home: Path, version: str | None = None) -> Path:
    env = {**os.environ, "EIMZO_MSI_DOWNLOADS": str(downloads), "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config")}
    if version:
        env["EIMZO_MSI_VERSION"] = version
    started = time.monotonic()
    result = subprocess.run(["bash", str(ROOT / "service_installers" / "build.sh"), "msi", "--out", str(out)],
                            env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"MSI build: {time.monotonic() - started:.0f} s")
    (msi,) = out.glob("eimzo-agent-*-x64.msi")
    return msi


@pytest.fixture(scope="session")
def msi_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("msi")


@pytest.fixture(scope="session")
def msi(msi_workspace: Path) -> Path:
    return build(msi_workspace / "out", msi_workspace / "downloads", msi_workspace / "home")


@pytest.fixture(scope="session")
def upgrade_msi(msi: Path, msi_workspace: Path) -> Path:
    """The same agent as a newer product version: what an upgrade looks like to Windows Installer."""
    major, minor, patch = (int(n) for n in re.findall(r"\d+", __version__)[:3])
    return build(msi_workspace / "out-upgrade", msi_workspace / "downloads", msi_workspace / "home",
                 version=f"{major}.{minor}.{patch + 1}")


@pytest.fixture(scope="session")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    machine = Wine(tmp_path_factory.mktemp("wine"))
    machine.boot()
    yield machine
    machine.close()


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def msiexec(wine: Wine, logs: Path, *args: str) -> tuple[int, str]:
    name = f"msiexec-{len(list(logs.glob('msiexec-*.log')))}.log"
    return wine.msiexec(*args, log=logs / name)


def installed_products(wine: Wine) -> list[str]:
    """Display names of what is registered under Uninstall whose name is ours."""
    found = wine.reg_query(UNINSTALL) or {}
    return [values["DisplayVersion"][1] for values in found.values()
            if values.get("DisplayName", ("", ""))[1] == "eimzo-agent" and "DisplayVersion" in values]


def assert_nothing_left(wine: Wine) -> None:
    assert not wine.host_path(INSTALL_DIR).exists(), sorted(p.name for p in wine.host_path(INSTALL_DIR).iterdir())
    assert wine.reg_value(RUN_KEY, "eimzo-agent") is None
    for key in (POLICY, STATE, CHROME + r"\LocalNetworkAccessAllowedForUrls", EDGE + r"\LoopbackNetworkAllowedForUrls"):
        assert wine.reg_query(key) is None, key
    assert installed_products(wine) == []
    assert not list((wine.prefix / "drive_c").rglob("eimzo-agent.lnk"))


def bundled_python(wine: Wine, tmp_path: Path, code: str, *args: str) -> str:
    """Run `code` with the installed python.exe (it ignores PYTHON* variables: its ._pth makes it isolated).

    Without -B, as an administrator running it by hand would: the byte-code it writes into Program Files must not
    keep the uninstall from removing the folder."""
    script = tmp_path / "check.py"
    script.write_text(code, encoding="utf-8")
    result = wine.run([str(wine.host_path(INSTALL_DIR) / "python.exe"), "-X", "utf8", wine.windows_path(script),
                       *args])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


CHECK = """
import json, sys
from eimzo_agent.config import load_config
from eimzo_agent.crypto import gost94, ozdst, ozdst_libcrypto
import websockets, tkinter
config = load_config()
kat = json.load(open(sys.argv[1], encoding="utf-8"))
results = []
for vector in kat["gost94_cryptopro_hash"]["vectors"]:
    message = vector["text"] if "text" in vector else vector["repeat"] * vector["times"]
    data = message.encode("ascii")
    streamed = gost94.Gost94()
    for start in range(0, len(data), 1000):
        streamed.update(data[start:start + 1000])
    results.append([gost94.gost94_digest(data).hex(), streamed.hexdigest(), vector["digest"]])
ec = ozdst._ec
signatures = []
for curve in ozdst.CURVES:  # k*G's additions in ozdst_ec.dll; checked by libcrypto's and by Python's verification
    ozdst._ec = None
    d = ozdst.generate_private_key(curve)
    public = ozdst.public_point(curve, d)
    ozdst._ec = ec
    signature = ozdst.sign_digest(curve, d, bytes(range(32)))
    ozdst._ec = None
    for libcrypto in (True, False):
        ozdst_libcrypto.set_enabled(libcrypto)
        signatures.append([ozdst.verify_digest(curve, public, bytes(range(32)), signature),
                           ozdst.verify_digest(curve, public, bytes(32), signature)])
print(json.dumps({
    "allowed_domains": config.allowed_domains, "ask_unknown_sites": config.ask_unknown_sites,
    "language": config.language, "sources": [str(s) for s in config.sources],
    "backend": gost94.BACKEND, "library": str(gost94._accelerator.path) if gost94.BACKEND == "library" else None,
    "kat": results, "websockets": websockets.__version__, "tk": tkinter.TkVersion,
    "ozdst_ec": str(ec.path) if hasattr(ec, "path") else repr(ec), "signatures": signatures,
    "libcrypto_calls": ozdst_libcrypto.call_count(),
    "cryptography_loaded": "cryptography" in sys.modules,
}))
"""


def test_tables_show_autostart_upgrade_and_properties(msi: Path) -> None:
    def table(name: str) -> str:
        return subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True,
                              check=True).stdout

    assert msi.stat().st_size <= MAX_MSI_BYTES, f"{msi.stat().st_size / 1e6:.1f} MB"
    print(f"MSI size: {msi.stat().st_size / 1e6:.1f} MB")
    registry = table("Registry")
    assert re.search(r"\t2\tSoftware\\Microsoft\\Windows\\CurrentVersion\\Run\teimzo-agent\t"
                     r'"\[INSTALLDIR\]pythonw\.exe" -B -m eimzo_agent serve\tAutostart', registry)
    upgrade = table("Upgrade")
    assert "{57043E59-1A56-4867-BB59-C81BF1593C6B}" in upgrade and "WIX_UPGRADE_DETECTED" in upgrade
    properties = dict(line.split("\t", 1) for line in table("Property").splitlines()[3:])
    assert properties["UpgradeCode"].upper() == "{57043E59-1A56-4867-BB59-C81BF1593C6B}"
    assert properties["ALLUSERS"] == "1"
    secure = properties["SecureCustomProperties"].split(";")
    for name in ("ALLOWED_DOMAINS", "ASK_UNKNOWN_SITES", "LANGUAGE", "CHROME_POLICY", "EDGE_POLICY",
                 "FIREFOX_POLICY"):
        assert name in secure
        assert f'"[{name}]"' in table("CustomAction")
    assert "eimzo-agent\tStartMenu\t[INSTALLDIR]pythonw.exe\t-B -m eimzo_agent serve" in table("Shortcut")
    sequence = {row.split("\t")[0]: int(row.split("\t")[2]) for row in table("InstallExecuteSequence").splitlines()[3:]}
    assert sequence["InstallInitialize"] < sequence["StopAgents"] < sequence["RemoveExistingProducts"] \
        < sequence["Unconfigure"] < sequence["InstallFiles"] < sequence["Configure"] < sequence["InstallFinalize"]


def test_silent_install_with_properties_then_uninstall(msi: Path, wine: Wine, logs: Path) -> None:
    status, log = msiexec(wine, logs, "/i", str(msi), "ALLOWED_DOMAINS=my.gov.uz, *.soliq.uz",
                          "ASK_UNKNOWN_SITES=0", "LANGUAGE=uz")
    assert status == 0, log[-3000:]
    try:
        folder = wine.host_path(INSTALL_DIR)
        for name in ("python.exe", "pythonw.exe", "python313.dll", "_tkinter.pyd", "eimzo-agent.cmd",
                     "BUILD-MANIFEST.txt", r"Lib\site-packages\eimzo_agent\crypto\gost94.dll",
                     r"Lib\site-packages\eimzo_agent\crypto\ozdst_ec.dll",
                     r"Lib\site-packages\websockets\__init__.py", r"policy-templates\eimzo-agent.admx"):
            assert (folder / Path(*name.split("\\"))).is_file(), name
        assert wine.reg_value(RUN_KEY, "eimzo-agent") == rf'"{INSTALL_DIR}\pythonw.exe" -B -m eimzo_agent serve'
        assert list((wine.prefix / "drive_c").rglob("eimzo-agent.lnk"))
        assert installed_products(wine) == [msi.name.split("-")[2]]
        # the properties, as Group Policy values (what the ADMX would write)
        assert wine.reg_value(POLICY + r"\sites\allowed_domains", "1") == "my.gov.uz"
        assert wine.reg_value(POLICY + r"\sites\allowed_domains", "2") == "*.soliq.uz"
        assert wine.reg_value(POLICY + r"\sites", "ask_unknown_sites") == "0x0"
        assert wine.reg_value(POLICY + r"\ui", "language") == "uz"
        # no browser policy: none was asked for
        assert wine.reg_query(CHROME + r"\LocalNetworkAccessAllowedForUrls") is None
        assert wine.reg_query(EDGE + r"\LocalNetworkAccessAllowedForUrls") is None
        # the bundled Python: the agent's own settings loader sees them, the accelerator passes the KAT vectors
        report = json.loads(bundled_python(wine, logs, CHECK, wine.windows_path(KAT)))
        assert report["allowed_domains"] == ["my.gov.uz", "*.soliq.uz"]
        assert report["ask_unknown_sites"] is False
        assert report["language"] == "uz"
        assert report["sources"] == [r"HKLM\SOFTWARE\Policies\eimzo-agent"]
        assert report["backend"] == "library"
        assert report["library"].lower().endswith(r"\eimzo_agent\crypto\gost94.dll")
        assert len(report["kat"]) >= 9
        for one_shot, streamed, expected in report["kat"]:
            assert one_shot == streamed == expected
        assert report["ozdst_ec"].lower().endswith(r"\eimzo_agent\crypto\ozdst_ec.dll")
        assert report["signatures"] == [[True, False]] * 6
        assert report["libcrypto_calls"] == 6  # the checks with libcrypto on: the bundled Python's libcrypto-3.dll
        assert report["websockets"] and report["tk"] == 8.6
        assert report["cryptography_loaded"] is False
    finally:
        status, log = msiexec(wine, logs, "/x", str(msi))
    assert status == 0, log[-3000:]
    assert_nothing_left(wine)


def test_browser_policies_only_when_asked_and_removed(msi: Path, wine: Wine, logs: Path) -> None:
    # An admin's Firefox with a policy of its own: ours is merged in, and taken out again.
    firefox = wine.host_path(r"C:\Program Files\Mozilla Firefox")
    (firefox / "distribution").mkdir(parents=True)
    (firefox / "firefox.exe").write_bytes(b"")
    admin_policies = {"policies": {"DisableTelemetry": True}}
    (firefox / "distribution" / "policies.json").write_text(json.dumps(admin_policies))
    try:
        status, log = msiexec(wine, logs, "/i", str(msi), "ALLOWED_DOMAINS=my.gov.uz,*.soliq.uz",
                              "CHROME_POLICY=1", "EDGE_POLICY=1", "FIREFOX_POLICY=1")
        assert status == 0, log[-3000:]
        for browser in (CHROME, EDGE):
            for policy in ("LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls"):
                assert wine.reg_value(rf"{browser}\{policy}", "1") == "https://my.gov.uz"
                assert wine.reg_value(rf"{browser}\{policy}", "2") == "https://[*.]soliq.uz"
        merged = json.loads((firefox / "distribution" / "policies.json").read_text())
        assert merged["policies"]["DisableTelemetry"] is True
        assert merged["policies"]["LocalNetworkAccess"]["SkipDomains"] == ["my.gov.uz", "soliq.uz"]

        status, log = msiexec(wine, logs, "/x", str(msi))
        assert status == 0, log[-3000:]
        assert_nothing_left(wine)
        assert wine.reg_query(r"HKLM\SOFTWARE\Policies\Google") is None  # made by the install, so removed
        assert json.loads((firefox / "distribution" / "policies.json").read_text()) == admin_policies
    finally:
        subprocess.run(["rm", "-rf", str(firefox)], check=True)


@pytest.mark.parametrize(("properties", "named"), [
    (["ASK_UNKNOWN_SITES=2"], "ASK_UNKNOWN_SITES: '2' must be 0 or 1"),
    (["ALLOWED_DOMAINS=https://my.gov.uz/login"], "ALLOWED_DOMAINS: 'https://my.gov.uz/login' is a web address"),
])
def test_bad_property_fails_naming_it_and_leaves_nothing(msi: Path, wine: Wine, logs: Path, properties: list[str],
                                                         named: str) -> None:
    # (every rule is checked on Linux in test_windows_setup.py; here: the message reaches the log, nothing stays)
    status, log = msiexec(wine, logs, "/i", str(msi), "LANGUAGE=ru", *properties)
    assert status == INSTALL_FAILURE
    assert f"eimzo-agent setup: {named}" in log
    assert_nothing_left(wine)


def sleeper(wine: Wine) -> subprocess.Popen[bytes]:
    """A program running from the install folder, as the agent does in every session (the real agent cannot run
    here: it needs cryptography)."""
    running = wine.start([str(wine.host_path(INSTALL_DIR) / "pythonw.exe"), "-c", "import time; time.sleep(600)"])
    time.sleep(3)
    assert running.poll() is None
    return running


def test_major_upgrade_replaces_the_product_and_ends_running_agents(msi: Path, upgrade_msi: Path, wine: Wine,
                                                                     logs: Path) -> None:
    status, log = msiexec(wine, logs, "/i", str(msi))
    assert status == 0, log[-3000:]
    try:
        running = sleeper(wine)
        status, log = msiexec(wine, logs, "/i", str(upgrade_msi))
        assert status == 0, log[-3000:]
        assert running.wait(timeout=60) is not None
        assert installed_products(wine) == [upgrade_msi.name.split("-")[2]]
        assert wine.reg_value(RUN_KEY, "eimzo-agent") is not None
        assert (wine.host_path(INSTALL_DIR) / "python.exe").is_file()
        running = sleeper(wine)
    finally:
        status, log = msiexec(wine, logs, "/x", str(upgrade_msi))
    assert status == 0, log[-3000:]
    assert running.wait(timeout=60) is not None
    assert rf"eimzo-agent setup: ending {INSTALL_DIR}\pythonw.exe" in log
    assert_nothing_left(wine)


def test_upgrade_keeps_settings(msi: Path, upgrade_msi: Path, wine: Wine, logs: Path) -> None:
    """Windows Installer removes the old version with UPGRADINGPRODUCTCODE set, and that removal keeps the
    settings for the new version. Wine's RemoveExistingProducts runs `msiexec /i {old} REMOVE=ALL` without that
    property (dlls/msi/action.c), so the old version's half is done here as Windows does it."""
    status, log = msiexec(wine, logs, "/i", str(msi), "ALLOWED_DOMAINS=my.gov.uz", "CHROME_POLICY=1",
                          "LANGUAGE=kaa")
    assert status == 0, log[-3000:]
    try:
        status, log = msiexec(wine, logs, "/x", str(msi), "UPGRADINGPRODUCTCODE={00000000-0000-0000-0000-000000000001}")
        assert status == 0, log[-3000:]
        assert not wine.host_path(INSTALL_DIR).exists()
        status, log = msiexec(wine, logs, "/i", str(upgrade_msi))  # no properties: what was set stays
        assert status == 0, log[-3000:]
        assert wine.reg_value(POLICY + r"\sites\allowed_domains", "1") == "my.gov.uz"
        assert wine.reg_value(POLICY + r"\ui", "language") == "kaa"
        assert wine.reg_value(CHROME + r"\LocalNetworkAccessAllowedForUrls", "1") == "https://my.gov.uz"
        # running the installer again with one property changes only that setting
        status, log = msiexec(wine, logs, "/i", str(upgrade_msi), "LANGUAGE=en", "CHROME_POLICY=0")
        assert status == 0, log[-3000:]
        assert wine.reg_value(POLICY + r"\ui", "language") == "en"
        assert wine.reg_value(POLICY + r"\sites\allowed_domains", "1") == "my.gov.uz"
        assert wine.reg_query(CHROME + r"\LocalNetworkAccessAllowedForUrls") is None
    finally:
        status, log = msiexec(wine, logs, "/x", str(upgrade_msi))
    assert status == 0, log[-3000:]
    assert_nothing_left(wine)
