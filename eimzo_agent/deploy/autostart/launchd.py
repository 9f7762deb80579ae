"""macOS: a LaunchAgent, which launchd starts in each GUI login session (dialogs and the menu-bar icon need one).

`RunAtLoad` starts it at login; `KeepAlive: {SuccessfulExit: false}` brings it back after a crash but not after
the person chose "Quit"; `LimitLoadToSessionType: Aqua` keeps it out of SSH and background sessions.
Written and checked with plistlib here; `launchctl` runs only on a Mac (not tested on our Linux CI).
"""

from __future__ import annotations

import glob
import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eimzo_agent.deploy.autostart.model import (
    MARKER,
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

LABEL = "uz.eimzo-agent"
#: The marker as an XML comment ("--" may not appear inside one).
_COMMENT = MARKER.replace("--", "-").encode()


def plist_data(command: Sequence[str]) -> dict[str, Any]:
    return {
        "Label": LABEL,
        "ProgramArguments": [*command, "serve"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
    }


def plist_bytes(command: Sequence[str]) -> bytes:
    """The plist, with our marker as an XML comment (launchd and plistlib ignore comments)."""
    text = plistlib.dumps(plist_data(command), fmt=plistlib.FMT_XML, sort_keys=True)
    head, _, rest = text.partition(b"\n")
    return head + b"\n<!-- " + _COMMENT + b" -->\n" + rest


class LaunchdBackend:
    mechanism = "LaunchAgent"

    def __init__(self, places: Places) -> None:
        self.places = places

    def command(self) -> list[str]:
        return agent_command()

    def plist_path(self, scope: Scope) -> Path:
        if scope is Scope.USER:
            return self.places.home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        return self.places.system(f"/Library/LaunchAgents/{LABEL}.plist")

    @staticmethod
    def _ours(path: Path) -> bool | None:
        try:
            return _COMMENT in path.read_bytes()[:512]
        except FileNotFoundError:
            return None
        except OSError:
            return False

    @staticmethod
    def _launchctl_here(scope: Scope) -> bool:
        """launchctl acts on the person's own GUI session: only for their own LaunchAgent, only on a Mac."""
        return sys.platform == "darwin" and scope is Scope.USER

    def status(self, scope: Scope) -> Status:
        path = self.plist_path(scope)
        ours = self._ours(path)
        running = None
        if ours and self._launchctl_here(scope):
            running = _launchctl("print", f"gui/{os.getuid()}/{LABEL}") == 0
        # launchd loads every plist in a LaunchAgents folder at login: installed is enabled.
        return Status(scope, self.mechanism, str(path), installed=bool(ours), enabled=bool(ours),
                      running=running, foreign=ours is False)

    def others(self, scope: Scope) -> list[OtherAutostart]:
        """LaunchAgents of the agent besides ours: the .pkg (and service_installers/macos/install.sh) write
        /Library/LaunchAgents/uz.eimzo-agent.plist too, without our marker."""
        found = []
        mine = self.plist_path(scope)
        system = self.places.system("/Library/LaunchAgents")
        folders = [system] + ([self.places.home / "Library" / "LaunchAgents"] if scope is Scope.ALL_USERS else [])
        for folder in folders:
            for name in sorted(glob.glob(glob.escape(str(folder)) + "/*eimzo-agent*.plist")):
                path = Path(name)
                ours = self._ours(path)
                if path == mine and ours is not False:
                    continue
                package = folder == system and not ours
                found.append(OtherAutostart("installed package" if package else "eimzo-agent service install",
                                            str(path), package=package))
        return found

    def install(self, scope: Scope, command: Sequence[str], *, start_now: bool) -> Outcome:
        path = self.plist_path(scope)
        if self._ours(path) is False:
            raise AutostartError(f"{path} exists and was not written by `eimzo-agent service install`: "
                                 "it is left as it is")
        if scope is Scope.ALL_USERS and self.places.real_root and os.geteuid() != 0:
            raise AutostartError(f"writing {path} for every user needs root: run it with sudo, or use --user")
        if scope is Scope.ALL_USERS:
            check_usable_by_everyone(command)
        outcome = Outcome()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, plist_bytes(command), mode=0o644)
        except OSError as exc:
            raise AutostartError(f"cannot write {path}: {exc.strerror or exc}") from exc
        outcome.done.append(f"wrote {path}")
        if not self._launchctl_here(scope):
            outcome.notes.append("launchd loads it at the next login" + ("" if sys.platform == "darwin"
                                                                         else " (launchctl is macOS only)"))
        elif start_now:
            domain = f"gui/{os.getuid()}"
            _launchctl("bootout", domain, str(path))  # an older copy of it, if loaded
            if _launchctl("bootstrap", domain, str(path)) == 0:
                outcome.done.append(f"loaded it: launchctl bootstrap {domain}")
            else:
                outcome.notes.append("launchctl could not load it now: it starts at the next login")
        else:
            outcome.notes.append("an agent already holds the port: the LaunchAgent takes over at the next login")
        return outcome

    def uninstall(self, scope: Scope) -> Outcome:
        path = self.plist_path(scope)
        ours = self._ours(path)
        if ours is False:
            raise AutostartError(f"{path} was not written by `eimzo-agent service install`: it is left as it is")
        outcome = Outcome()
        if not ours:
            outcome.notes.append(f"nothing to remove: {path} does not exist")
            return outcome
        if self._launchctl_here(scope) and _launchctl("bootout", f"gui/{os.getuid()}", str(path)) == 0:
            outcome.done.append("unloaded it (launchctl bootout)")
        try:
            path.unlink()
        except OSError as exc:
            raise AutostartError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        outcome.done.append(f"removed {path}")
        return outcome


def _launchctl(*args: str) -> int:
    try:
        return subprocess.run(["launchctl", *args], capture_output=True, timeout=30, check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1
