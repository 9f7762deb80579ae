"""`eimzo-agent service install|uninstall|status`: the autostart entries it writes, checked by the OS's own tools.

Linux: the unit is checked by `systemd-analyze --user verify` (which needs no running systemd, only an
XDG_RUNTIME_DIR it can write: a temporary one) and the enabling link by `systemctl is-enabled`, which reads unit
files without a manager. No systemd user manager is reachable in these tests (XDG_RUNTIME_DIR and the session bus
are unset for the CLI), so nothing is started and the real user's manager is never touched. System-wide files go
into a temporary root through $EIMZO_AGENT_SYSTEM_ROOT. macOS and Windows: the plist parses and the Run value is
what the backend writes (launchctl and winreg cannot run here).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eimzo_agent.deploy import autostart
from eimzo_agent.deploy.autostart import AutostartError, Scope
from eimzo_agent.deploy.autostart.launchd import LABEL, LaunchdBackend, plist_bytes
from eimzo_agent.deploy.autostart.model import MARKER
from eimzo_agent.deploy.autostart.systemd import SystemdBackend, entry_text, unit_text
from eimzo_agent.deploy.autostart.windows import WindowsBackend, run_value, windows_command
from eimzo_agent.deploy.places import ENV_SYSTEM_ROOT, Places

UNIT = "eimzo-agent.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("systemctl") is None
                                   or shutil.which("desktop-file-validate") is None,
                                   reason="systemd and desktop-file-utils are needed (scripts/bootstrap.sh --test)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def env(root: Path, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: the test's home (conftest), a temporary system root, no session manager."""
    environment = dict(os.environ, **{ENV_SYSTEM_ROOT: str(root)})
    for name in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        environment.pop(name, None)
    return environment


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def user_unit_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """systemd's own check of a unit file; the user mode wants a runtime folder, which the test provides."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], capture_output=True, text=True,
                          env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)), timeout=60, check=False)


def validate_entry(entry: Path) -> None:
    """desktop-file-validate: the XDG autostart entry is one every desktop can read (no errors, no warnings)."""
    done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done


def is_enabled(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["systemctl", *args, "is-enabled", UNIT], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    return done.stdout.strip() or done.stderr.strip()


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@needs_systemd
def test_user_install_writes_a_unit_systemd_accepts_and_uninstall_removes_it(env: dict[str, str],
                                                                              tmp_path: Path) -> None:
    config_home = Path(os.environ["XDG_CONFIG_HOME"])
    before = tree(config_home)
    assert cli(env, "service", "status", "--user").returncode == 1  # nothing starts the agent yet

    done = cli(env, "service", "install", "--user")
    assert done.returncode == 0, done.stderr
    unit = user_unit_dir() / UNIT
    text = unit.read_text()
    assert text.startswith(f"# {MARKER}\n")
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    program, *arguments = exec_start.removeprefix("ExecStart=").split()
    assert Path(program).is_absolute() and os.access(program, os.X_OK)
    assert arguments[-1] == "serve"
    assert "WantedBy=graphical-session.target" in text and "PartOf=graphical-session.target" in text
    assert "no systemd user manager reachable" in done.stdout  # said plainly, not hidden

    checked = verify(unit, tmp_path)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    link = user_unit_dir() / "graphical-session.target.wants" / UNIT
    assert link.is_symlink() and link.resolve() == unit.resolve()
    assert is_enabled(env, "--user") == "enabled"  # systemd's own reading of the link
    # Desktops without graphical-session.target (Xfce, MATE) start the XDG entry; the others leave it to the unit.
    entry = config_home / "autostart" / "eimzo-agent.desktop"
    validate_entry(entry)
    assert f"\nExec={program} serve\n" in entry.read_text()
    assert "X-GNOME-HiddenUnderSystemd=true" in entry.read_text() and "X-systemd-skip=true" in entry.read_text()
    status = cli(env, "service", "status", "--user")
    assert status.returncode == 0 and "installed and enabled" in status.stdout

    again = cli(env, "service", "install", "--user")  # again: updated in place, still one unit
    assert again.returncode == 0 and unit.read_text() == text

    removed = cli(env, "service", "uninstall", "--user")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not link.is_symlink() and not entry.exists()
    assert tree(config_home) == before  # nothing of ours left, not even empty folders
    assert is_enabled(env, "--user") != "enabled"
    assert cli(env, "service", "status", "--user").returncode == 1
    nothing = cli(env, "service", "uninstall", "--user")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stdout


@needs_systemd
def test_unit_quotes_paths_with_blanks_and_percent_signs(tmp_path: Path) -> None:
    folder = tmp_path / "Program 100% files"
    folder.mkdir()
    program = folder / "eimzo-agent"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / UNIT
    unit.write_text(unit_text([str(program), "--flag=$HOME"]))
    checked = verify(unit, tmp_path)  # systemd checks that ExecStart's program exists: the quoting must be right
    assert checked.returncode == 0 and not checked.stderr.strip(), checked
    line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    assert line == f'ExecStart="{str(program).replace("%", "%%")}" "--flag=$$HOME" serve'
    entry = tmp_path / "eimzo-agent.desktop"
    entry.write_text(entry_text([str(program), 'say "$x" \\ `y`']))
    validate_entry(entry)
    line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    assert line == (f'Exec="{str(program).replace("%", "%%")}" '
                    '"say \\\\"\\\\$x\\\\" \\\\\\\\ \\\\`y\\\\`" serve')


def test_a_package_autostart_means_nothing_to_install(env: dict[str, str], root: Path) -> None:
    package_unit = root / "usr/lib/systemd/user" / UNIT
    package_unit.parent.mkdir(parents=True)
    package_unit.write_text("[Service]\nExecStart=/usr/bin/eimzo-agent serve\n")
    done = cli(env, "service", "install", "--user")
    assert done.returncode == 0, done.stderr
    assert "already starts at login: installed package" in done.stdout and str(package_unit) in done.stdout
    assert not (user_unit_dir() / UNIT).exists()
    status = cli(env, "service", "status", "--user")
    assert status.returncode == 0 and str(package_unit) in status.stdout


def test_files_not_written_by_install_are_never_replaced_or_removed(env: dict[str, str]) -> None:
    unit = user_unit_dir() / UNIT
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/opt/mine serve\n")
    for action in ("install", "uninstall"):
        done = cli(env, "service", action, "--user")
        assert done.returncode == 1 and "not written by `eimzo-agent service install`" in done.stderr
        assert unit.read_text() == "[Service]\nExecStart=/opt/mine serve\n"
    assert "not written by this command" in cli(env, "service", "status", "--user").stdout


@needs_systemd
def test_every_user_install_goes_to_etc_and_uninstall_leaves_a_package_link(root: Path, tmp_path: Path) -> None:
    places = Places(root=root, home=Path.home(), config_home=Path(os.environ["XDG_CONFIG_HOME"]))
    backend = SystemdBackend(places)
    # Any program every user can run will do for the unit's checks (the checkout may sit in a private folder).
    outcome, others = autostart.install(backend, Scope.ALL_USERS, command=["/bin/sh"])
    assert not others and outcome.done
    unit = root / "etc/systemd/user" / UNIT
    link = root / "etc/systemd/user/graphical-session.target.wants" / UNIT
    assert os.readlink(link) == f"/etc/systemd/user/{UNIT}"  # as the installed system will see it
    validate_entry(root / "etc/xdg/autostart/eimzo-agent.desktop")
    assert backend.others(Scope.ALL_USERS) == []  # our own entry in /etc/xdg/autostart is not a package's
    assert is_enabled(dict(os.environ), f"--root={root}", "--global") == "enabled"
    checked = verify(unit, tmp_path)  # (--global has no verify: the user manager checks it as its own)
    assert checked.returncode == 0 and not checked.stderr.strip(), checked
    assert backend.status(Scope.ALL_USERS).enabled
    # A user's own install sees it and adds nothing.
    assert autostart.install(backend, Scope.USER)[1][0].location == str(unit)

    # A package enables its own unit later through a link of the same name: uninstall keeps that link.
    link.unlink()
    link.symlink_to(f"/usr/lib/systemd/user/{UNIT}")
    backend.uninstall(Scope.ALL_USERS)
    assert not unit.exists() and not (root / "etc/xdg/autostart/eimzo-agent.desktop").exists()
    assert os.readlink(link) == f"/usr/lib/systemd/user/{UNIT}"


def test_every_user_install_refuses_a_program_other_users_cannot_run(root: Path, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    program = private / "eimzo-agent"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    backend = SystemdBackend(Places(root=root, home=Path.home(), config_home=Path(os.environ["XDG_CONFIG_HOME"])))
    with pytest.raises(AutostartError, match="other users cannot run"):
        autostart.install(backend, Scope.ALL_USERS, command=[str(program)])
    assert not (root / "etc").exists()  # nothing half-written


def test_agent_command_finds_the_running_entry_point(tmp_path: Path) -> None:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.symlink_to(sys.executable)
    entry = bin_dir / "eimzo-agent"
    entry.write_text("#!/bin/sh\n")
    entry.chmod(0o755)
    assert autostart.agent_command(str(entry), str(python)) == [str(entry)]
    # python -m eimzo_agent: the entry point beside the interpreter; the venv's python link is not resolved
    assert autostart.agent_command("/x/eimzo_agent/__main__.py", str(python)) == [str(entry)]
    entry.unlink()
    assert autostart.agent_command("/x/eimzo_agent/__main__.py", str(python)) == [str(python), "-m", "eimzo_agent"]


def test_launch_agent_plist_has_what_launchd_needs(tmp_path: Path) -> None:
    data = plistlib.loads(plist_bytes(["/Users/a/.local/bin/eimzo-agent"]))
    assert data == {"Label": LABEL, "ProgramArguments": ["/Users/a/.local/bin/eimzo-agent", "serve"],
                    "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False}, "LimitLoadToSessionType": "Aqua",
                    "ProcessType": "Interactive"}
    places = Places(root=tmp_path / "root", home=tmp_path / "home", config_home=tmp_path / "home" / ".config")
    backend = LaunchdBackend(places)
    outcome, _ = autostart.install(backend, Scope.USER, command=["/opt/eimzo-agent"])
    plist = tmp_path / "home/Library/LaunchAgents" / f"{LABEL}.plist"
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"] == ["/opt/eimzo-agent", "serve"]
    assert any("launchctl" in note for note in outcome.notes)  # not run here: said so
    assert backend.status(Scope.USER).enabled
    # a package's LaunchAgent for every user: the user's own install adds nothing
    package = places.system("/Library/LaunchAgents/uz.eimzo-agent.pkg.plist")
    package.parent.mkdir(parents=True)
    package.write_bytes(plistlib.dumps({"Label": "x"}))
    assert [o.package for o in backend.others(Scope.USER)] == [True]
    backend.uninstall(Scope.USER)
    assert not plist.exists() and package.exists()
    # The .pkg's own plist has our file name for every user: it is the package's, never ours to replace.
    package.rename(places.system(f"/Library/LaunchAgents/{LABEL}.plist"))
    outcome, others = autostart.install(backend, Scope.ALL_USERS, command=["/bin/sh"])
    assert not outcome.done and others[0].package


class DictRegistry:
    """A stand-in for the Windows registry (the OS facility, not our code): values by (hive, key, name)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], str] = {}

    def read(self, hive: str, key: str, name: str) -> str | None:
        return self.values.get((hive, key, name))

    def write(self, hive: str, key: str, name: str, data: str) -> None:
        if hive == "HKLM" and not getattr(self, "admin", False):
            raise PermissionError(5, "Access is denied")
        self.values[(hive, key, name)] = data

    def delete(self, hive: str, key: str, name: str) -> None:
        del self.values[(hive, key, name)]


def test_windows_run_values(tmp_path: Path) -> None:
    (tmp_path / "python.exe").write_text("")
    (tmp_path / "pythonw.exe").write_text("")
    command = windows_command(str(tmp_path / "python.exe"))
    assert command == [str(tmp_path / "pythonw.exe"), "-m", "eimzo_agent"]  # no console window at logon
    assert run_value([r"C:\Program Files\Python313\pythonw.exe", "-m", "eimzo_agent"]) == \
        r'"C:\Program Files\Python313\pythonw.exe" -m eimzo_agent serve'

    registry = DictRegistry()
    backend = WindowsBackend(registry, executable=str(tmp_path / "python.exe"))
    run = r"Software\Microsoft\Windows\CurrentVersion\Run"
    autostart.install(backend, Scope.USER)
    assert registry.values == {("HKCU", run, "eimzo-agent"): run_value(command)}
    with pytest.raises(AutostartError, match="administrator"):
        autostart.install(backend, Scope.ALL_USERS)
    backend.uninstall(Scope.USER)
    assert registry.values == {}

    # The MSI's HKLM value: the user's install adds nothing, and it is never removed here.
    registry.values[("HKLM", run, "eimzo-agent")] = r'"C:\Program Files\eimzo-agent\pythonw.exe" -m eimzo_agent serve'
    outcome, others = autostart.install(backend, Scope.USER)
    assert others[0].package and not outcome.done and ("HKCU", run, "eimzo-agent") not in registry.values
    with pytest.raises(AutostartError, match="installer"):
        backend.uninstall(Scope.ALL_USERS)
    assert ("HKLM", run, "eimzo-agent") in registry.values
