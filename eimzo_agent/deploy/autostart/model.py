"""What every autostart mechanism shares: who it is for, what its state is, what a change did, and the command
line that starts the agent."""

from __future__ import annotations

import enum
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: The first line of every file `service install` writes: only files that carry it are ever changed or removed.
MARKER = "Written by `eimzo-agent service install`; `eimzo-agent service uninstall` removes it."
#: The name of the systemd unit, the LaunchAgent's file stem and the Windows Run value (the packages use it too).
NAME = "eimzo-agent"


class Scope(enum.Enum):
    """`--user`: the person running the command. Without it: every user of this computer (needs root/admin)."""

    USER = "user"
    ALL_USERS = "all-users"


class AutostartError(Exception):
    """A change that is refused or failed before anything was written; the message says why and what to do."""


@dataclass(frozen=True)
class Status:
    scope: Scope
    mechanism: str  #: "systemd user unit", "LaunchAgent", "Run registry value"
    location: str  #: the file or registry value `install` writes for this scope
    installed: bool  #: our entry is there
    enabled: bool  #: it will start the agent at login
    running: bool | None = None  #: None: cannot tell here (no session manager reachable, or not supported)
    foreign: bool = False  #: an entry of that name exists that `service install` did not write


@dataclass(frozen=True)
class OtherAutostart:
    """An autostart of the agent that is not this scope's own: a package's, or the other scope's."""

    description: str
    location: str
    package: bool  #: installed by a package (.deb, .msi, .pkg) rather than by `service install`


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)  #: what was written, enabled, started, removed
    notes: list[str] = field(default_factory=list)  #: what was not done, and what happens instead


class Backend(Protocol):
    """One OS's autostart mechanism."""

    mechanism: str

    def command(self) -> list[str]:
        """The command (without "serve") that starts this installation of the agent at login."""

    def status(self, scope: Scope) -> Status: ...

    def others(self, scope: Scope) -> list[OtherAutostart]:
        """Autostarts of the agent besides `scope`'s own entry (a second one would start the agent twice)."""

    def install(self, scope: Scope, command: Sequence[str], *, start_now: bool) -> Outcome: ...

    def uninstall(self, scope: Scope) -> Outcome: ...


def agent_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The command that starts this very installation of the agent (without "serve").

    The `eimzo-agent` entry point that is running (pip, pipx, a venv), else the one beside the interpreter, else
    `python -m eimzo_agent`. Paths are made absolute but symlinks are kept: pipx's ~/.local/bin link and a venv's
    python link stay valid when the target is upgraded, and resolving a venv's python would leave the venv.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    names = ("eimzo-agent", "eimzo-agent.exe")
    if Path(argv0).name in names:
        found = argv0 if os.sep in argv0 or (os.altsep and os.altsep in argv0) else shutil.which(argv0)
        if found and os.access(found, os.X_OK):
            return [os.path.abspath(found)]
    for name in names:
        beside = Path(executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return [os.path.abspath(beside)]
    return [os.path.abspath(executable), "-m", "eimzo_agent"]


def check_usable_by_everyone(command: Sequence[str]) -> None:
    """AutostartError unless every user can run `command`'s program (POSIX permissions).

    An autostart for every user must not name a program inside someone's home folder or a root-only venv.
    """
    blocked = unusable_by_others(command[0])
    if blocked is not None:
        raise AutostartError(f"other users cannot run {command[0]} ({blocked} is closed to them): install "
                             "eimzo-agent where every user can run it, or use --user")


def unusable_by_others(path: str) -> Path | None:
    """The first folder or file on the way to `path` that other users cannot pass through or run; None if all can."""
    real = Path(os.path.realpath(path))
    for step in (*reversed(real.parents), real):
        try:
            mode = step.stat().st_mode
        except OSError:
            return step
        needed = stat.S_IXOTH | (stat.S_IROTH if step == real else 0)
        if mode & needed != needed:
            return step
    return None
