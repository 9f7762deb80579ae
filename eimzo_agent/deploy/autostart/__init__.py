"""`eimzo-agent service`: start the agent at login, for people who installed it with pip or pipx.

One backend per OS (a systemd user unit, a LaunchAgent, a Run registry value), each writing only files or values
that carry its marker and removing only those. Packages (.deb, .msi, .pkg) bring their own autostart; `install`
never adds a second one next to it (`others()` finds it), because two would race for the same port.
"""

from __future__ import annotations

import sys

from eimzo_agent.deploy.autostart.launchd import LaunchdBackend
from eimzo_agent.deploy.autostart.model import (
    AutostartError,
    Backend,
    OtherAutostart,
    Outcome,
    Scope,
    Status,
    agent_command,
)
from eimzo_agent.deploy.autostart.systemd import SystemdBackend
from eimzo_agent.deploy.autostart.windows import WindowsBackend
from eimzo_agent.deploy.places import Places

__all__ = [
    "AutostartError",
    "Backend",
    "OtherAutostart",
    "Outcome",
    "Scope",
    "Status",
    "agent_command",
    "backend_for",
    "install",
]


def backend_for(platform: str | None = None, places: Places | None = None) -> Backend:
    """This OS's backend (`platform` as sys.platform names it; tests pick one)."""
    platform = platform or sys.platform
    places = places or Places.from_environment()
    if platform == "win32":
        return WindowsBackend()
    if platform == "darwin":
        return LaunchdBackend(places)
    return SystemdBackend(places)


def install(backend: Backend, scope: Scope, *, command: list[str] | None = None,
            start_now: bool = True) -> tuple[Outcome, list[OtherAutostart]]:
    """Write and enable `scope`'s autostart, unless another one already starts the agent (then nothing is done and
    that one is returned)."""
    others = backend.others(scope)
    if others:
        return Outcome(), others
    return backend.install(scope, command or backend.command(), start_now=start_now), []
