"""Linux: a systemd user unit tied to the graphical session, and an XDG autostart entry for desktops without one.

The unit is `WantedBy=graphical-session.target` and `PartOf` it: the agent starts when a desktop session starts
(after the session has imported DISPLAY/WAYLAND_DISPLAY into the user manager, which the tray and the dialogs
need) and stops when it ends. `Restart=on-failure` brings it back after a crash; the start limit stops the loop
when it cannot start at all (another program holds the port). Desktops that never start graphical-session.target
(Xfce, MATE, LXQt...) run the XDG autostart entry instead; it carries `X-GNOME-HiddenUnderSystemd` and
`X-systemd-skip`, so GNOME and systemd's xdg-autostart-generator leave it to the unit — the .deb does the same.

Enabling is the `.wants/` symlink that `systemctl enable` would make, made here directly: it works without a
running user manager (a fresh login, a container, an image), and uninstall removes only a link that points at
our own file — the .deb enables its unit through a link of the same name, which must survive. The user manager
is asked to reload and start the unit only for the person's own unit, and only when it is reachable.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from eimzo_agent.deploy.autostart.model import (
    MARKER,
    NAME,
    AutostartError,
    OtherAutostart,
    Outcome,
    Scope,
    Status,
    agent_command,
    check_usable_by_everyone,
)
from eimzo_agent.deploy.places import Places
from eimzo_agent.fsutil import write_atomically

UNIT = f"{NAME}.service"
ENTRY = f"{NAME}.desktop"
TARGET = "graphical-session.target"
#: Where packages put their autostart (the .deb: a user unit enabled for everyone, and an XDG autostart entry).
PACKAGE_FILES = (f"/usr/lib/systemd/user/{UNIT}", f"/lib/systemd/user/{UNIT}", f"/etc/xdg/autostart/{ENTRY}")
_PLAIN_ARGUMENT = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def unit_text(command: Sequence[str]) -> str:
    """The unit for `command` (the agent's program and its first arguments; "serve" is added)."""
    return "\n".join([
        f"# {MARKER}",
        "[Unit]",
        "Description=eimzo-agent: local signing agent for E-IMZO portals",
        f"PartOf={TARGET}",
        f"After={TARGET}",
        # 5 starts in 2 minutes, then give up: a port held by E-IMZO would otherwise mean a restart every 5 s.
        "StartLimitIntervalSec=120",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(exec_argument(arg) for arg in [*command, "serve"]),
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        f"WantedBy={TARGET}",
        "",
    ])


def entry_text(command: Sequence[str]) -> str:
    """The XDG autostart entry for `command`, for sessions that do not start graphical-session.target."""
    return "\n".join([
        f"# {MARKER}",
        "[Desktop Entry]",
        "Type=Application",
        "Name=eimzo-agent",
        "Comment=Local signing agent for E-IMZO portals",
        "Exec=" + " ".join(desktop_exec_argument(arg) for arg in [*command, "serve"]),
        "Terminal=false",
        "NoDisplay=true",
        "X-GNOME-Autostart-enabled=true",
        # Sessions that start graphical-session.target run the unit instead: GNOME's session manager and systemd's
        # xdg-autostart-generator skip this entry, so the agent never starts twice.
        "X-GNOME-HiddenUnderSystemd=true",
        "X-systemd-skip=true",
        "",
    ])


def exec_argument(arg: str) -> str:
    """One ExecStart argument: systemd expands % specifiers and $VARIABLES, and splits at blanks unless quoted."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN_ARGUMENT.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def desktop_exec_argument(arg: str) -> str:
    """One Exec argument of a desktop entry: % starts a field code; reserved characters need double quotes, inside
    which " ` $ \\ take a backslash — and the file's own string escaping doubles every backslash again."""
    escaped = arg.replace("%", "%%")
    if _PLAIN_ARGUMENT.fullmatch(escaped):
        return escaped
    quoted = '"' + re.sub(r'(["`$\\\\])', r"\\\1", escaped) + '"'
    return quoted.replace("\\", "\\\\")


class SystemdBackend:
    mechanism = "systemd user unit"

    def __init__(self, places: Places) -> None:
        self.places = places

    def command(self) -> list[str]:
        return agent_command()

    def unit_path(self, scope: Scope) -> Path:
        if scope is Scope.USER:
            return self.places.config_home / "systemd" / "user" / UNIT
        return self.places.system(f"/etc/systemd/user/{UNIT}")

    def entry_path(self, scope: Scope) -> Path:
        if scope is Scope.USER:
            return self.places.config_home / "autostart" / ENTRY
        return self.places.system(f"/etc/xdg/autostart/{ENTRY}")

    def _link(self, scope: Scope) -> tuple[Path, str]:
        """The enabling symlink and what it must point at (for all users: the path as the system will see it)."""
        unit = self.unit_path(scope)
        target = str(unit) if scope is Scope.USER else f"/etc/systemd/user/{UNIT}"
        return unit.parent / f"{TARGET}.wants" / UNIT, target

    @staticmethod
    def _ours(path: Path) -> bool | None:
        """True: our file; False: a file we did not write; None: no file."""
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                return MARKER in f.readline()
        except FileNotFoundError:
            return None
        except OSError:
            return False

    def _enabled(self, scope: Scope) -> bool:
        link, target = self._link(scope)
        return link.is_symlink() and os.readlink(link) == target

    def status(self, scope: Scope) -> Status:
        ours = self._ours(self.unit_path(scope))
        running = None
        if scope is Scope.USER and ours:
            state = _systemctl("--user", "is-active", UNIT)
            answer = state.stdout.strip() if state is not None else ""
            if answer in ("active", "activating", "reloading", "inactive", "failed", "deactivating"):
                running = answer in ("active", "activating", "reloading")
        entry_foreign = ours is not False and self._ours(self.entry_path(scope)) is False
        location = self.entry_path(scope) if entry_foreign else self.unit_path(scope)
        return Status(scope, self.mechanism, str(location), installed=bool(ours),
                      enabled=bool(ours) and self._enabled(scope), running=running,
                      foreign=ours is False or entry_foreign)

    def others(self, scope: Scope) -> list[OtherAutostart]:
        found: list[OtherAutostart] = []
        seen: set[str] = set()
        for name in PACKAGE_FILES:
            path = self.places.system(name)
            real = os.path.realpath(path)
            if path.is_file() and real not in seen and not self._ours(path):
                seen.add(real)
                found.append(OtherAutostart("installed package", str(path), package=True))
        if scope is Scope.USER and self._ours(self.unit_path(Scope.ALL_USERS)) and self._enabled(Scope.ALL_USERS):
            found.append(OtherAutostart("eimzo-agent service install (every user)",
                                        str(self.unit_path(Scope.ALL_USERS)), package=False))
        return found

    def install(self, scope: Scope, command: Sequence[str], *, start_now: bool) -> Outcome:
        files = {self.unit_path(scope): unit_text(command), self.entry_path(scope): entry_text(command)}
        for path in files:
            if self._ours(path) is False:
                raise AutostartError(f"{path} exists and was not written by `eimzo-agent service install`: "
                                     "it is left as it is (remove it first to replace it)")
        if scope is Scope.ALL_USERS and self.places.real_root and os.geteuid() != 0:
            raise AutostartError(f"writing {self.unit_path(scope)} for every user needs root: run it with sudo, "
                                 "or use --user for yourself")
        if scope is Scope.ALL_USERS:
            check_usable_by_everyone(command)
        outcome = Outcome()
        new = [path for path in files if not path.exists()]
        try:
            for path, text in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(path, text.encode(), mode=0o644)
                outcome.done.append(f"wrote {path}")
            link, target = self._link(scope)
            link.parent.mkdir(exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
            outcome.done.append(f"enabled it: {link} -> {target}")
        except OSError as exc:
            for path in new:  # nothing half-installed
                with contextlib.suppress(OSError):
                    path.unlink()
            raise AutostartError(f"cannot write {exc.filename or self.unit_path(scope)}: {exc.strerror or exc}") \
                from exc
        if scope is Scope.ALL_USERS:
            outcome.notes.append("it starts in each user's next graphical session")
        else:
            self._reload_and_start(outcome, start_now)
        return outcome

    def _reload_and_start(self, outcome: Outcome, start_now: bool) -> None:
        reload = _systemctl("--user", "daemon-reload")
        if reload is None or reload.returncode != 0:
            why = "systemctl not found" if reload is None else (reload.stderr.strip() or "no reply")
            outcome.notes.append(f"no systemd user manager reachable ({why}): the agent starts at your next "
                                 "graphical login")
            return
        outcome.done.append("systemd user manager reloaded")
        running = _systemctl("--user", "is-active", "--quiet", UNIT)
        if running is not None and running.returncode == 0:
            done = _systemctl("--user", "try-restart", UNIT)
            if done is not None and done.returncode == 0:
                outcome.done.append("restarted it with the new command line")
            else:
                outcome.notes.append(f"could not restart it: see `systemctl --user status {UNIT}`")
            return
        session = _systemctl("--user", "is-active", "--quiet", TARGET)
        if session is None or session.returncode != 0:
            outcome.notes.append("no graphical session runs under systemd now: the agent starts at your next "
                                 "graphical login")
        elif not start_now:
            outcome.notes.append("an agent already holds the port: the unit takes over at your next login")
        else:
            started = _systemctl("--user", "start", UNIT)
            if started is not None and started.returncode == 0:
                outcome.done.append("started it")
            else:
                outcome.notes.append(f"could not start it now: see `systemctl --user status {UNIT}`")

    def uninstall(self, scope: Scope) -> Outcome:
        unit, entry = self.unit_path(scope), self.entry_path(scope)
        ours = {path: self._ours(path) for path in (unit, entry)}
        for path, mine in ours.items():
            if mine is False:
                raise AutostartError(f"{path} was not written by `eimzo-agent service install`: it is left as it is")
        if scope is Scope.ALL_USERS and self.places.real_root and os.geteuid() != 0 and any(ours.values()):
            raise AutostartError(f"removing {unit} for every user needs root: run it with sudo")
        outcome = Outcome()
        manager = scope is Scope.USER and ours[unit]
        if manager:
            stopped = _systemctl("--user", "stop", UNIT)
            if stopped is not None and stopped.returncode == 0:
                outcome.done.append("stopped it")
        link, target = self._link(scope)
        try:
            if link.is_symlink() and os.readlink(link) == target:
                link.unlink()
                outcome.done.append(f"removed {link}")
                _remove_if_empty(link.parent)
            for path, mine in ours.items():
                if not mine:
                    continue
                path.unlink()
                outcome.done.append(f"removed {path}")
                # The user's own folders that install may have made; /etc/systemd/user and /etc/xdg/autostart
                # belong to their packages.
                if scope is Scope.USER:
                    for folder in path.parents:
                        if folder == self.places.config_home or not _remove_if_empty(folder):
                            break
        except OSError as exc:
            raise AutostartError(f"cannot remove {exc.filename or unit}: {exc.strerror or exc}") from exc
        if manager:
            _systemctl("--user", "daemon-reload")
        if not outcome.done:
            outcome.notes.append(f"nothing to remove: {unit} does not exist")
        elif scope is Scope.ALL_USERS:
            outcome.notes.append("agents already running stop when their users log out")
        return outcome


def _remove_if_empty(folder: Path) -> bool:
    with contextlib.suppress(OSError):
        folder.rmdir()
        return True
    return False


def _systemctl(*args: str) -> subprocess.CompletedProcess[str] | None:
    """systemctl's answer; None when systemctl is not installed (no systemd: nothing to ask)."""
    program = shutil.which("systemctl")
    if program is None:
        return None
    try:
        return subprocess.run([program, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
