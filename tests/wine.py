"""Wine for the MSI tests: a private prefix (a Windows "machine" in a temporary folder), msiexec, reg, and the
installed programs, run by Debian's wine64 (the `wine64` package; its binary is /usr/lib/wine/wine64).

Everything lives under the prefix: the "registry" is its system.reg, "C:\\" is its drive_c. HOME and the XDG
folders point into the prefix's parent too, so wine writes nothing into the real home; `close()` ends the prefix's
wineserver (and with it every program started in it).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path, PureWindowsPath

WINE64 = Path("/usr/lib/wine/wine64")
WINESERVER = Path("/usr/lib/wine/wineserver")
#: msiexec's exit status 1603 (fatal error during installation) as a Unix exit status sees it (low 8 bits).
INSTALL_FAILURE = 1603 & 0xFF


class Wine:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.prefix = folder / "prefix"
        self._server: subprocess.Popen[bytes] | None = None
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_RUNTIME_DIR": str(home / "run"),
            "WINEPREFIX": str(self.prefix),
            "WINEDEBUG": "-all",
            # no Mono or Gecko: nothing here needs .NET or HTML, and wine would offer to download them
            "WINEDLLOVERRIDES": "mscoree=;mshtml=",
            "LANG": "C.UTF-8",
            "TMPDIR": str(folder / "tmp"),  # wine makes its server folder (wine-XXXXXX) here, not in /tmp
        }

    def boot(self) -> None:
        """Make the prefix, with a wineserver that stays until `close()` (started here with no pipes of ours:
        one that a program starts inherits that program's stdout, and lingers after it)."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        self._server = subprocess.Popen([str(WINESERVER), "--persistent", "--foreground"], env=self.env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        # The prefix's services start here and live as long as the wineserver: they must not inherit a pipe of
        # ours, or every later captured run would wait for them to close it.
        subprocess.run([str(WINE64), "wineboot", "--init"], env=self.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=True)

    def run(self, args: list[str], *, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess[str]:
        """A Windows program; stdin is NUL (Python will not start without valid standard streams, and under
        Wine only a pipe makes a standard output it accepts)."""
        return subprocess.run([str(WINE64), *args], env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout, check=check)

    def start(self, args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(WINE64), *args], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def host_path(self, windows_path: str) -> Path:
        """C:\\… as a path on this machine."""
        path = PureWindowsPath(windows_path)
        assert path.drive.upper() == "C:", windows_path
        return self.prefix / "drive_c" / Path(*path.parts[1:])

    def windows_path(self, host_path: Path) -> str:
        """A file of this machine as Windows programs see it (drive Z: is /)."""
        return "Z:" + str(host_path).replace("/", "\\")

    def msiexec(self, *args: str, log: Path) -> tuple[int, str]:
        """msiexec … /qn with a verbose log; (exit status, log text)."""
        # No pipes: msiexec starts the prefix's desktop process (explorer), which would hold them open for long
        # after msiexec has ended. What it says goes into the log.
        result = subprocess.run([str(WINE64), "msiexec", *args, "/qn", "/l*v", self.windows_path(log)],
                                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=600)
        text = log.read_text(encoding="utf-16" if log.read_bytes()[:2] == b"\xff\xfe" else "utf-8",
                             errors="replace") if log.exists() else ""
        return result.returncode, text

    def reg_query(self, key: str) -> dict[str, dict[str, tuple[str, str]]] | None:
        """`reg query KEY /s`: {key: {value name: (type, data)}}, None when the key does not exist."""
        result = self.run(["reg", "query", key, "/s"])
        if result.returncode != 0:
            return None
        found: dict[str, dict[str, tuple[str, str]]] = {}
        current = None
        for line in result.stdout.splitlines():
            if line.startswith("HKEY_"):
                current = found.setdefault(line.strip(), {})
            elif current is not None and (match := re.match(r"\s{4}(.*?)\s{4}(REG_\w+)\s{4}(.*)$", line)):
                current[match[1]] = (match[2], match[3])
            elif current is not None and (match := re.match(r"\s{4}(.*?)\s{4}(REG_\w+)$", line)):
                current[match[1]] = (match[2], "")
        return found

    def reg_value(self, key: str, name: str) -> str | None:
        found = self.reg_query(key)
        if found is None:
            return None
        full = re.sub(r"^HKLM\\", r"HKEY_LOCAL_MACHINE\\", key).lower()
        values = next((v for k, v in found.items() if k.lower() == full), {})
        return values[name][1] if name in values else None

    def close(self) -> None:
        """End every program of the prefix, and its wineserver."""
        subprocess.run([str(WINESERVER), "--kill"], env=self.env, capture_output=True, timeout=60)
        if self._server is not None:
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
