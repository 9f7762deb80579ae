"""Windows: a value under `…\\CurrentVersion\\Run` that Explorer runs at each logon, in the person's session.

Per user: HKCU (no administrator rights). Every user: HKLM, the value the MSI writes too — so an HKLM value whose
command is not ours is the installer's, never changed or removed here. The command is `pythonw.exe -m eimzo_agent
serve`: pythonw has no console window (the `eimzo-agent.exe` launcher pip makes would open one at every logon).
A Windows service is no option: it runs in session 0, where no dialog can be shown.

The registry is reached through a small interface, so the rules above are checked on Linux with a stand-in;
`winreg` itself runs only on Windows (not tested on our CI).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Protocol

from eimzo_agent.deploy.autostart.model import NAME, AutostartError, OtherAutostart, Outcome, Scope, Status

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
HIVES = {Scope.USER: "HKCU", Scope.ALL_USERS: "HKLM"}


class Registry(Protocol):
    def read(self, hive: str, key: str, name: str) -> str | None: ...

    def write(self, hive: str, key: str, name: str, data: str) -> None: ...

    def delete(self, hive: str, key: str, name: str) -> None: ...


class WinRegistry:
    """The real registry (Windows only)."""

    def _hive(self, hive: str) -> int:
        import winreg

        return winreg.HKEY_CURRENT_USER if hive == "HKCU" else winreg.HKEY_LOCAL_MACHINE

    def read(self, hive: str, key: str, name: str) -> str | None:
        import winreg

        try:
            with winreg.OpenKey(self._hive(hive), key) as handle:
                value, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return str(value)

    def write(self, hive: str, key: str, name: str, data: str) -> None:
        import winreg

        with winreg.CreateKeyEx(self._hive(hive), key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, data)

    def delete(self, hive: str, key: str, name: str) -> None:
        import winreg

        with winreg.OpenKey(self._hive(hive), key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.DeleteValue(handle, name)


def windows_command(executable: str | None = None) -> list[str]:
    """pythonw.exe beside the running interpreter (a venv's Scripts folder has one too), else the interpreter."""
    executable = executable or sys.executable
    folder, name = os.path.split(executable)
    pythonw = os.path.join(folder, "pythonw.exe")
    if name.lower() != "pythonw.exe" and os.path.isfile(pythonw):
        executable = pythonw
    return [executable, "-m", "eimzo_agent"]


def run_value(command: Sequence[str]) -> str:
    """The Run value's data: the program always quoted (Program Files has a blank), then the arguments."""
    program, *arguments = [*command, "serve"]
    return " ".join([f'"{program}"', *arguments])


class WindowsBackend:
    mechanism = "Run registry value"

    def __init__(self, registry: Registry | None = None, executable: str | None = None) -> None:
        self.registry = registry or WinRegistry()
        self.executable = executable

    def command(self) -> list[str]:
        return windows_command(self.executable)

    def location(self, scope: Scope) -> str:
        return f"{HIVES[scope]}\\{RUN_KEY}\\{NAME}"

    def _value(self, scope: Scope) -> str | None:
        try:
            return self.registry.read(HIVES[scope], RUN_KEY, NAME)
        except OSError:
            return None

    def _ours(self, scope: Scope) -> bool | None:
        """HKCU's value is ours whatever it says (no installer writes it); HKLM's only with our command."""
        value = self._value(scope)
        if value is None:
            return None
        return scope is Scope.USER or value == run_value(self.command())

    def status(self, scope: Scope) -> Status:
        ours = self._ours(scope)
        return Status(scope, self.mechanism, self.location(scope), installed=bool(ours), enabled=bool(ours),
                      foreign=ours is False)

    def others(self, scope: Scope) -> list[OtherAutostart]:
        machine = self._ours(Scope.ALL_USERS)
        if machine is None or (scope is Scope.ALL_USERS and machine):
            return []
        return [OtherAutostart("installed package" if not machine else "eimzo-agent service install (every user)",
                               self.location(Scope.ALL_USERS), package=not machine)]

    def install(self, scope: Scope, command: Sequence[str], *, start_now: bool) -> Outcome:
        if self._ours(scope) is False:
            raise AutostartError(f"{self.location(scope)} was written by the installer: it is left as it is")
        try:
            self.registry.write(HIVES[scope], RUN_KEY, NAME, run_value(command))
        except PermissionError as exc:
            raise AutostartError(f"writing {self.location(scope)} needs administrator rights: run it as "
                                 "administrator, or use --user for yourself") from exc
        except OSError as exc:
            raise AutostartError(f"cannot write {self.location(scope)}: {exc}") from exc
        return Outcome(done=[f"wrote {self.location(scope)} = {run_value(command)}"],
                       notes=["it starts at the next logon"])

    def uninstall(self, scope: Scope) -> Outcome:
        ours = self._ours(scope)
        if ours is False:
            raise AutostartError(f"{self.location(scope)} was written by the installer: uninstall the package "
                                 "to remove it")
        if ours is None:
            return Outcome(notes=[f"nothing to remove: {self.location(scope)} does not exist"])
        try:
            self.registry.delete(HIVES[scope], RUN_KEY, NAME)
        except PermissionError as exc:
            raise AutostartError(f"removing {self.location(scope)} needs administrator rights") from exc
        except OSError as exc:
            raise AutostartError(f"cannot remove {self.location(scope)}: {exc}") from exc
        return Outcome(done=[f"removed {self.location(scope)}"], notes=["a running agent keeps running until "
                                                                         "logoff or Quit"])
