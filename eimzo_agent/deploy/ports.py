"""Who listens on a local TCP port: the process (as far as permissions let us see) and its user.

Linux only: the kernel's tables list listening sockets with their owner's uid and the socket's inode
(`/proc/net/tcp`, `tcp6`), and each process's open files show which inode it holds (`/proc/<pid>/fd`). Another
user's processes cannot be looked into without root: then the uid is all we know. On other systems nothing is
found, and the doctor names the program by what it answers on the port instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    address: str  #: the local address it listens on ("127.0.0.1", "0.0.0.0", "::")
    port: int
    uid: int
    inode: int
    pid: int | None = None
    name: str | None = None  #: the program's name (/proc/<pid>/comm)
    command: str | None = None  #: its command line

    @property
    def user(self) -> str:
        try:
            import pwd

            return pwd.getpwuid(self.uid).pw_name
        except (ImportError, KeyError):
            return str(self.uid)


def listeners(port: int, *, proc: Path = PROC) -> list[Listener]:
    """The sockets listening on `port` (any local address), with their processes where visible; [] off Linux."""
    if not sys.platform.startswith("linux"):
        return []
    found = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            text = (proc / "net" / table).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, hex_port = fields[1].partition(":")
            with contextlib.suppress(ValueError):
                if int(hex_port, 16) == port:
                    found.append(Listener(_address(address, v6=v6), port, uid=int(fields[7]), inode=int(fields[9])))
    if not found:
        return []
    owners = _processes_holding({entry.inode for entry in found}, proc)
    result = []
    for entry in found:
        pid = owners.get(entry.inode)
        if pid is None:
            result.append(entry)
            continue
        result.append(Listener(entry.address, entry.port, entry.uid, entry.inode, pid, _read(proc / str(pid) / "comm"),
                               _read(proc / str(pid) / "cmdline", nul_separated=True)))
    return result


def _address(field: str, *, v6: bool) -> str:
    """/proc/net/tcp prints addresses as 32-bit words in host byte order."""
    raw = bytes.fromhex(field)
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    packed = b"".join(struct.pack("!I", word) for word in words)
    ip = ipaddress.IPv6Address(packed) if v6 else ipaddress.IPv4Address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _processes_holding(inodes: set[int], proc: Path) -> dict[int, int]:
    """inode -> pid of a process that has that socket open (the ones we may look into)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    try:
        pids = [entry.name for entry in os.scandir(proc) if entry.name.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        try:
            with os.scandir(proc / pid / "fd") as fds:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        inode = wanted.get(os.readlink(fd.path))
                        if inode is not None and inode not in owners:
                            owners[inode] = int(pid)
        except OSError:  # gone meanwhile, or another user's process
            continue
        if len(owners) == len(wanted):
            break
    return owners


def _read(path: Path, *, nul_separated: bool = False) -> str | None:
    try:
        data = path.read_bytes()[:4096]
    except OSError:
        return None
    if nul_separated:
        data = data.rstrip(b"\0").replace(b"\0", b" ")
    return data.decode(errors="replace").strip() or None
