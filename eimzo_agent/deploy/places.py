"""Where the files that `service` and `doctor` look at live: the system's folders and the user's.

One value instead of hard-coded paths, so the same code can look at another root: tests point it at a temporary
folder, and a packager can check a system image before it boots (`EIMZO_AGENT_SYSTEM_ROOT=/mnt/image eimzo-agent
doctor`). Only files are moved this way; programs that act on the running system (systemctl, launchctl) are run
only when the root is the real one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: A folder that stands in for "/" wherever system-wide files are looked at or written (for tests and packagers).
ENV_SYSTEM_ROOT = "EIMZO_AGENT_SYSTEM_ROOT"


@dataclass(frozen=True)
class Places:
    root: Path  #: stands for "/" (system-wide files: packages' autostart, browser policies, /etc/systemd/user)
    home: Path  #: the user's home folder (~/Library/LaunchAgents, NSS databases, ~/DSKEYS)
    config_home: Path  #: $XDG_CONFIG_HOME or ~/.config (systemd user units, XDG autostart entries)

    @classmethod
    def from_environment(cls) -> Places:
        home = Path.home()
        config_home = os.environ.get("XDG_CONFIG_HOME") or ""
        return cls(
            root=Path(os.environ.get(ENV_SYSTEM_ROOT) or "/"),
            home=home,
            # The XDG spec ignores a relative value, and so does systemd.
            config_home=Path(config_home) if os.path.isabs(config_home) else home / ".config",
        )

    @property
    def real_root(self) -> bool:
        """True when system-wide files are the running system's own (programs like systemctl may be used)."""
        return self.root.resolve() == Path("/").resolve()

    def system(self, path: str) -> Path:
        """A system path ("/etc/…") under the root."""
        return self.root / path.lstrip("/")
