"""A second, real, unprivileged Unix user for tests that need "another person on the same computer".

As root (CI), `other_user()` creates the system user `eimzo-test-other` once (it may stay between runs) and
finds a Python that user can run with our code and its dependencies importable; commands then run as that user
with `setpriv` (util-linux, always on Debian). Not root, or no way to become that user: the calling test is
skipped, with the reason.

The other user gets our code and its dependencies on PYTHONPATH (read-only; bytecode is not written): the
checkout and the venv where they are when that user can read them, else a world-readable copy of both made once
per test session under /tmp (a CI clone may sit in a folder only root can enter) and removed at exit. Files that
user must read or write live in `scratch_dir()` folders under /tmp, removed afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import eimzo_agent

USER_NAME = "eimzo-test-other"
CHECKOUT = Path(eimzo_agent.__file__).resolve().parent.parent
#: What the other user's Python must import to run the agent and the WebSocket test client.
_PROBE = (
    "import sys, eimzo_agent.cli, eimzo_agent.server.listener, websockets.sync.client; "
    f"sys.exit(sys.version_info[:2] != {tuple(sys.version_info[:2])!r})"
)


@dataclass(frozen=True)
class OtherUser:
    name: str
    uid: int
    gid: int
    python: str  # an interpreter this user can run that imports eimzo_agent (with `env()`'s PYTHONPATH)
    #: Where this user's Python finds our code and its dependencies.
    pythonpath: str = ""

    def command(self, *argv: str) -> list[str]:
        """`argv` run as this user (real and effective ids, its own groups, no way back to root)."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--no-new-privs",
                "--", *argv]

    def python_command(self, *argv: str) -> list[str]:
        return self.command(self.python, *argv)

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """A clean environment for this user's processes: its own HOME/XDG folders under `home`."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "EIMZO_AGENT_SYSTEM_CONFIG": os.devnull,
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.pythonpath,
            "PYTHONDONTWRITEBYTECODE": "1",
            "USER": self.name,
            "LOGNAME": self.name,
        }
        env.update(extra)
        return env


def _pythonpath() -> str:
    """The checkout (our code) and this interpreter's site-packages (its dependencies), in that order."""
    paths = [str(CHECKOUT), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return os.pathsep.join(dict.fromkeys(paths))


def _readable_copy() -> str:
    """A copy of our package and of the venv's site-packages that every user can read; removed at exit."""
    runtime = Path(tempfile.mkdtemp(prefix="eimzo-other-user-runtime-", dir="/tmp"))
    atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(CHECKOUT / "eimzo_agent", runtime / "eimzo_agent", ignore=skip)
    libraries = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    copies = []
    for number, library in enumerate(libraries):
        target = runtime / f"lib{number}"
        shutil.copytree(library, target, symlinks=True, ignore=skip)
        copies.append(str(target))
    for folder, _dirs, files in os.walk(runtime):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)
    return os.pathsep.join([str(runtime), *copies])


def other_user() -> OtherUser:
    """The second user, ready to run our Python code; skips the calling test when that cannot be had."""
    found = _other_user()
    if isinstance(found, str):
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail(f"CI runs as root, where these tests must run: {found}")
        pytest.skip(found)
    return found


@functools.cache
def _other_user() -> OtherUser | str:
    if not sys.platform.startswith("linux"):
        return "a second Unix user is only set up on Linux"
    if os.geteuid() != 0:
        return f"running commands as a second user ({USER_NAME}) needs root; CI runs the suite as root"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    try:
        entry = pwd.getpwnam(USER_NAME)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER_NAME],
            capture_output=True, text=True, timeout=60, check=False,
        )
        try:  # another test process may have created it at the same moment
            entry = pwd.getpwnam(USER_NAME)
        except KeyError:
            return f"could not create the test user {USER_NAME}: {result.stderr.strip()}"
    if entry.pw_uid == 0:
        return f"{USER_NAME} has uid 0"
    tried = []
    major_minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, f"/usr/bin/python{major_minor}", f"/usr/local/bin/python{major_minor}"]
    for make_path in (_pythonpath, _readable_copy):
        pythonpath = make_path()
        for python in dict.fromkeys(candidates):
            if not Path(python).exists():
                continue
            candidate = OtherUser(entry.pw_name, entry.pw_uid, entry.pw_gid, python, pythonpath)
            probe = subprocess.run(
                candidate.python_command("-c", _PROBE), env=candidate.env(Path("/nonexistent")), cwd="/",
                capture_output=True, text=True, timeout=120, check=False,
            )
            if probe.returncode == 0:
                return candidate
            last = (probe.stderr.strip().splitlines() or ["exit " + str(probe.returncode)])[-1]
            tried.append(f"{python} with {pythonpath}: {last}")
    return f"no Python {major_minor} that {USER_NAME} can run imports eimzo_agent: " + "; ".join(tried)


@contextlib.contextmanager
def scratch_dir(owner: OtherUser | None = None) -> Iterator[Path]:
    """A fresh folder under /tmp that the other user can reach (tmp_path sits in a root-only folder).

    `owner` None: owned by us and readable by everyone; else owned by `owner` alone. Removed afterwards.
    """
    path = Path(tempfile.mkdtemp(prefix="eimzo-other-user-", dir="/tmp"))
    try:
        if owner is None:
            path.chmod(0o755)
        else:
            os.chown(path, owner.uid, owner.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start_agent_as(user: OtherUser, home: Path, config: str, log_path: Path) -> tuple[subprocess.Popen[str], int]:
    """The real agent (`eimzo-agent serve`) running as `user`, with its folders under `home` (owned by `user`).

    Returns the process and its ws:// port, once it printed its ready line.
    """
    config_file = home / "agent-config.toml"
    config_file.write_text(config)
    os.chown(config_file, user.uid, user.gid)
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            user.python_command("-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0", "--no-tray",
                                "--config", str(config_file)),
            stdout=subprocess.PIPE, stderr=log_file, text=True, env=user.env(home), cwd=home,
        )
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stdout], [], [], 0.5)[0]:
            line = process.stdout.readline()  # type: ignore[union-attr]
            break
    if "ready: ws://127.0.0.1:" not in line:
        process.kill()
        process.wait()
        raise AssertionError(f"agent as {user.name} did not start: {line!r}\n{log_path.read_text()}")
    return process, int(line.split("ws://127.0.0.1:")[1].split("/")[0])
