"""A clean Debian 12 root for package tests: made by mmdebstrap from Debian's packages, used through chroot.

Every command runs in a private mount namespace (`unshare --mount`): /proc and /dev are mounted inside the root
there and vanish with the namespace, so nothing is ever mounted on the machine itself, even when a test dies.
Commands see a clean environment (HOME=/tmp/home inside the root), never the test run's own.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Inside the root: what a command finds in its environment.
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp/home", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
#: Mount /proc and /dev inside the root (argument 0), then run the command (the other arguments) there.
_ENTER = ('mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && mkdir -p "$0/tmp/home" && '
          f'exec env -i {" ".join(ENV)} chroot "$0" "$@"')
#: What changes with every apt run, or is scratch space: left out when a root's files are compared.
VOLATILE = ("proc", "dev", "sys", "run", "tmp", "var/lib/apt", "var/lib/dpkg", "var/cache", "var/log",
            "etc/ld.so.cache")


def make_tarball(target: Path) -> subprocess.Popen[bytes]:
    """Start mmdebstrap making a minimal bookworm root as a tarball: the packages of priority "required" and apt,
    what `debootstrap --variant=minbase` makes (with fewer, apt would find "required" ones like tzdata missing and
    keep them once something pulled them in)."""
    return subprocess.Popen(["mmdebstrap", "--quiet", "--variant=required", "bookworm", str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@dataclass
class DebianRoot:
    path: Path

    @classmethod
    def extract(cls, tarball: Path, path: Path) -> DebianRoot:
        path.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(path), "-xf", str(tarball)], check=True, timeout=300)
        # Debian's mirror is reached from inside through the machine's own resolver.
        shutil.copyfile("/etc/resolv.conf", path / "etc/resolv.conf")
        return cls(path)

    def command(self, *args: str) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, str(self.path), *args]

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, *args: str, log: Path, timeout: float = 60) -> tuple[subprocess.Popen[str], str]:
        """Start a long-running command (the agent) and return it with its first line of output."""
        process = subprocess.Popen(self.command(*args), stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                return process, process.stdout.readline()  # type: ignore[union-attr]
            if process.poll() is not None:
                break
        process.kill()
        process.wait()
        raise AssertionError(f"{' '.join(args)} printed nothing:\n{log.read_text()}")

    def file(self, inside: str) -> Path:
        return self.path / inside.lstrip("/")

    def snapshot(self) -> dict[str, str]:
        """Every file, link and folder (but the volatile ones) with its kind, mode and content hash or target."""
        found: dict[str, str] = {}
        for folder, dirs, files in os.walk(self.path):
            relative = os.path.relpath(folder, self.path)
            dirs[:] = [d for d in dirs if not _volatile(os.path.normpath(os.path.join(relative, d)))]
            for name in [*dirs, *files]:
                rel = os.path.normpath(os.path.join(relative, name))
                if _volatile(rel):
                    continue
                full = os.path.join(folder, name)
                info = os.lstat(full)
                if os.path.islink(full):
                    found[rel] = f"link {os.readlink(full)}"
                elif os.path.isdir(full):
                    found[rel] = f"dir {info.st_mode:o}"
                elif os.path.isfile(full):
                    with open(full, "rb") as handle:
                        found[rel] = f"file {info.st_mode:o} {hashlib.file_digest(handle, 'sha256').hexdigest()}"
                else:
                    found[rel] = f"special {info.st_mode:o}"
        return found


def _volatile(relative: str) -> bool:
    return any(relative == v or relative.startswith(v + "/") for v in VOLATILE)
