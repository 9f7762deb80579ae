"""Who is on the other end of a loopback connection: this user, root, or another user of the same computer.

`localhost` pages are trusted and the Origin header is the only gate, so on a shared PC or a terminal server
another user's browser (or any program of theirs) could otherwise list this user's keys and raise dialogs.
Every user's loopback sockets are in the kernel's socket table, so we look up who owns the *peer's* end of each
accepted connection (the socket whose local end is the peer's address and whose remote end is ours):

- Linux: the kernel's socket-diag netlink lookup (what `ss` uses): one hash lookup by address, a few
  microseconds, giving the socket's uid. Where sock_diag is missing, `/proc/net/tcp` (and `tcp6`, for
  dual-stack clients seen as ::ffff:127.0.0.1) has the same uid column, but reading it walks the whole socket
  hash table (milliseconds, however few sockets there are), so that path runs in a thread.
- Windows: `GetExtendedTcpTable` gives the process owning the client's socket; its Terminal Services session is
  compared with ours. This path cannot be tested on our Linux CI (see docs/security.md).
- macOS and others: we cannot tell without private APIs, so connections are allowed (logged once).

Root may connect to any user's agent: root can read that user's key files anyway. A socket table we cannot
read, or one that does not even list our own socket (WSL 1, some sandboxes), means we cannot tell: allowed,
with one warning. A readable table without the peer's live socket is refused: fail closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.protocol import State
from websockets.server import ServerProtocol

from eimzo_agent import i18n
from eimzo_agent.protocol.errors import Status
from eimzo_agent.protocol.replies import encode_reply, failure
from eimzo_agent.server import http

log = logging.getLogger(__name__)

PROC_NET = Path("/proc/net")
#: How long a refused WebSocket client gets to read our reply and answer our close frame.
LINGER_SECONDS = 5.0
#: A refused page's frames are read only to find its close frame; a bigger one just ends the connection.
REFUSED_FRAME_BYTES = 64 * 1024
#: WebSocket close code "policy violation": the page sees it in its `close` event.
CLOSE_POLICY_VIOLATION = 1008
#: /proc/net/tcp is read in page-sized pieces that are not one snapshot: a row may slip past while sockets
#: come and go, so a missing peer is looked for again before the connection is refused.
_READ_ATTEMPTS = 3

_Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


class PeerKind(enum.Enum):
    SAME_USER = "same user"
    ROOT = "root"
    OTHER_USER = "other user"
    CANNOT_TELL = "cannot tell"
    NOT_FOUND = "not found"


@dataclass(frozen=True)
class PeerOwner:
    """The verdict on one connection; `uid` (POSIX) or `session` (Windows) is the peer's when known."""

    kind: PeerKind
    uid: int | None = None
    session: int | None = None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.kind in (PeerKind.SAME_USER, PeerKind.ROOT, PeerKind.CANNOT_TELL)

    def describe(self) -> str:
        """For log lines: the peer's uid or session and nothing else about it."""
        if self.uid is not None:
            return f"uid {self.uid}"
        if self.session is not None:
            return f"session {self.session}"
        return self.reason or self.kind.value


async def check_peer(sockname: Any, peername: Any) -> PeerOwner:
    """`peer_owner()` without stalling the event loop.

    The sock_diag lookup is answered inline (a thread hand-off alone costs about ten times more); the
    whole-table readers (/proc, Windows) run in a thread.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(TypeError, ValueError, IndexError):
            owner = _sock_diag_owner(endpoint(sockname), endpoint(peername))
            if owner is not None:
                return owner
    return await asyncio.to_thread(peer_owner, sockname, peername, sock_diag=False)


def peer_owner(sockname: Any, peername: Any, *, sock_diag: bool = True) -> PeerOwner:
    """Who owns the client end of an accepted connection (`transport.get_extra_info` "sockname"/"peername").

    Never raises. Blocking: up to milliseconds when it has to read whole socket tables (see `check_peer`).
    `sock_diag=False` skips the Linux netlink lookup (the caller already tried it).
    """
    try:
        local, peer = endpoint(sockname), endpoint(peername)
    except (TypeError, ValueError, IndexError):
        return _cannot_tell("the connection has no IP addresses")
    if sys.platform.startswith("linux"):
        owner = linux_peer_owner(local, peer, sock_diag=sock_diag)
    elif sys.platform == "win32":
        try:
            owner = windows_peer_owner(local, peer)
        except (OSError, AttributeError, ValueError) as exc:
            owner = PeerOwner(PeerKind.CANNOT_TELL, reason=f"the Windows socket table is unavailable ({exc})")
    else:
        owner = PeerOwner(PeerKind.CANNOT_TELL, reason=f"{sys.platform} does not show who owns a socket")
    if owner.kind is PeerKind.CANNOT_TELL:
        return _cannot_tell(owner.reason)
    return owner


_told: set[str] = set()


def _cannot_tell(reason: str) -> PeerOwner:
    """Allowed, and said once per reason: a warning where we expected to know (Linux, Windows), else INFO."""
    if reason not in _told:
        _told.add(reason)
        level = logging.WARNING if sys.platform.startswith("linux") or sys.platform == "win32" else logging.INFO
        log.log(level, "cannot tell which OS user connects (%s): connections from other users are not refused",
                reason)
    return PeerOwner(PeerKind.CANNOT_TELL, reason=reason)


def endpoint(address: Any) -> _Endpoint:
    """A socket address (host, port[, flow, scope]) as (IP address, port); ::ffff:a.b.c.d becomes a.b.c.d."""
    ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(address[1])


def _verdict_for_uid(uid: int, our_uid: int) -> PeerOwner:
    if uid == our_uid:
        return PeerOwner(PeerKind.SAME_USER, uid=uid)
    if uid == 0:
        return PeerOwner(PeerKind.ROOT, uid=0)
    return PeerOwner(PeerKind.OTHER_USER, uid=uid)


# --- Linux ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    uid: int
    inode: int  # 0: the owning process has closed the socket (orphaned, TIME_WAIT); its uid then means nothing


def _owner_of_rows(rows: list[_Row], our_uid: int) -> PeerOwner | None:
    live = [row for row in rows if row.inode != 0]
    if live:
        return _verdict_for_uid(live[0].uid, our_uid)
    if rows:
        return PeerOwner(PeerKind.NOT_FOUND, reason="the client closed its socket before it could be identified")
    return None


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_TCP_LISTEN = 10
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
#: inet_diag_req_v2 (family, protocol, extensions, pad, states) + inet_diag_sockid (ports, addresses, interface,
#: cookie "none" = all ones).
_DIAG_REQUEST = struct.Struct("=BBBBI")
_DIAG_SOCKID = struct.Struct("!HH16s16s")
_DIAG_SOCKID_TAIL = struct.Struct("=III")
#: inet_diag_msg: family, state, timer, retrans, sockid (48 bytes), expires, rqueue, wqueue, uid, inode.
_DIAG_MSG = struct.Struct("=BBBB4x16s16s12xIIIII")


def _diag_address(family: int, raw: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    ip = ipaddress.IPv6Address(raw)
    return ip.ipv4_mapped or ip


def _sock_diag_lookup(local: _Endpoint, remote: _Endpoint) -> list[_Row]:
    """The TCP socket whose ends are `local` and `remote`, by the kernel's exact sock_diag lookup ([] if none).

    Raises OSError where netlink sock_diag is not available (old or sandboxed kernels).
    """
    family = socket.AF_INET if local[0].version == 4 else socket.AF_INET6
    body = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + _DIAG_SOCKID.pack(
        local[1], remote[1], local[0].packed, remote[0].packed) + _DIAG_SOCKID_TAIL.pack(0, 0xFFFFFFFF, 0xFFFFFFFF)
    request = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as netlink:
        netlink.settimeout(1.0)
        netlink.sendto(request, (0, 0))
        reply = netlink.recv(8192)
    if len(reply) < _NLMSGHDR.size + 4:
        raise OSError(errno.EPROTO, "short sock_diag reply")
    kind = _NLMSGHDR.unpack_from(reply)[1]
    if kind == _NLMSG_ERROR:
        error = -struct.unpack_from("=i", reply, _NLMSGHDR.size)[0]
        if error == errno.ENOENT:
            return []
        raise OSError(error, os.strerror(error))
    if kind != _SOCK_DIAG_BY_FAMILY or len(reply) < _NLMSGHDR.size + _DIAG_MSG.size:
        raise OSError(errno.EPROTO, "unexpected sock_diag reply")
    fam, state, _timer, _retrans, src, dst, _exp, _rq, _wq, uid, inode = _DIAG_MSG.unpack_from(reply, _NLMSGHDR.size)
    sport, dport = struct.unpack_from("!HH", reply, _NLMSGHDR.size + 4)
    # The lookup also falls back to listening sockets: accept only the exact connection we asked about.
    if state == _TCP_LISTEN or ((_diag_address(fam, src), sport), (_diag_address(fam, dst), dport)) != (local, remote):
        return []
    return [_Row(uid=uid, inode=inode)]


def _sock_diag_owner(local: _Endpoint, peer: _Endpoint, *, our_uid: int | None = None) -> PeerOwner | None:
    """The owner of `peer`'s socket by sock_diag; None when sock_diag cannot be used here, not even to find our
    own end of the connection (then the /proc tables are the way)."""
    our_uid = os.geteuid() if our_uid is None else our_uid
    try:
        peer_rows = _sock_diag_lookup(peer, local)
        if any(row.inode != 0 for row in peer_rows):
            return _owner_of_rows(peer_rows, our_uid)  # the usual case: one lookup
        # No live client socket: an answer only if the table shows our own end of the connection.
        if not [row for row in _sock_diag_lookup(local, peer) if row.inode != 0]:
            return None
        return _owner_of_rows(peer_rows, our_uid) or PeerOwner(
            PeerKind.NOT_FOUND, reason="the client's socket is not in the kernel's socket table")
    except OSError:
        return None


def _proc_net_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, *, v6: bool) -> str:
    """An endpoint as /proc/net/tcp{,6} prints it: each 32-bit word of the address in host byte order, then port.

    `v6` gives the tcp6 form (IPv4 addresses become ::ffff:a.b.c.d, as a dual-stack socket shows them).
    """
    if v6:
        packed = ip.packed if ip.version == 6 else b"\0" * 10 + b"\xff\xff" + ip.packed
        return "".join(f"{w:08X}" for w in struct.unpack("=4I", packed)) + f":{port:04X}"
    if ip.version != 4:
        raise ValueError("an IPv6 address has no /proc/net/tcp form")
    return f"{struct.unpack('=I', ip.packed)[0]:08X}:{port:04X}"


def _proc_net_rows(table: str, local: str, remote: str) -> list[_Row]:
    """The rows of a /proc/net/tcp text whose local and remote fields are exactly `local` and `remote`.

    A substring search, not a parse of every row: tables on busy servers have tens of thousands of rows.
    """
    needle = f": {local} {remote} "  # ": " only follows the row number, so this anchors on the local field
    rows = []
    start = table.find(needle)
    while start >= 0:
        end = table.find("\n", start)
        fields = table[start:end if end >= 0 else None].split()
        # fields: ':' local remote st tx:rx tr:when retrnsmt uid timeout inode ...
        with contextlib.suppress(IndexError, ValueError):
            rows.append(_Row(uid=int(fields[7]), inode=int(fields[9])))
        start = table.find(needle, start + 1)
    return rows


def linux_peer_owner(local: _Endpoint, peer: _Endpoint, *, proc_net: Path = PROC_NET, our_uid: int | None = None,
                     sock_diag: bool = True) -> PeerOwner:
    """The owner of the client socket `peer` connected to our `local` end: sock_diag, else `proc_net`/tcp{,6}."""
    our_uid = os.geteuid() if our_uid is None else our_uid
    if sock_diag and (owner := _sock_diag_owner(local, peer, our_uid=our_uid)) is not None:
        return owner
    if local[0].version != 4 or peer[0].version != 4:
        return PeerOwner(PeerKind.CANNOT_TELL, reason="not an IPv4 connection")
    saw_our_socket = False
    closed: PeerOwner | None = None
    for _attempt in range(_READ_ATTEMPTS):
        for name, v6 in (("tcp", False), ("tcp6", True)):
            try:
                table = (proc_net / name).read_text(encoding="ascii", errors="replace")
            except OSError as exc:
                if v6 and isinstance(exc, FileNotFoundError):
                    continue  # a kernel without IPv6
                return PeerOwner(PeerKind.CANNOT_TELL, reason=f"cannot read {proc_net / name}: {exc.strerror}")
            if not v6:
                # Our listener is always there: a table without it cannot be trusted to show the peer either.
                saw_our_socket = saw_our_socket or f": {_proc_net_address(*local, v6=False)} " in table
            rows = _proc_net_rows(table, _proc_net_address(*peer, v6=v6), _proc_net_address(*local, v6=v6))
            owner = _owner_of_rows(rows, our_uid)
            if owner is not None and owner.kind is not PeerKind.NOT_FOUND:
                return owner
            closed = closed or owner
        if not saw_our_socket:
            return PeerOwner(PeerKind.CANNOT_TELL, reason=f"{proc_net / 'tcp'} does not list this agent's sockets")
    return closed or PeerOwner(PeerKind.NOT_FOUND, reason="the client's socket is not in the kernel's socket table")


# --- Windows (not testable on our Linux CI: written from the API documentation) ---------------------------------


def windows_endpoint(addr: int | bytes, port: int) -> _Endpoint:
    """A MIB_TCP(6)ROW_OWNER_PID address and port. An IPv4 address is a DWORD holding network-order bytes, an
    IPv6 one 16 bytes; the port is a DWORD whose low 16 bits hold the port in network order."""
    if isinstance(addr, int):
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(struct.pack("<I", addr & 0xFFFFFFFF))
    else:
        v6 = ipaddress.IPv6Address(bytes(addr))
        ip = v6.ipv4_mapped or v6
    return ip, int.from_bytes((port & 0xFFFF).to_bytes(2, "little"), "big")


def windows_peer_owner(local: _Endpoint, peer: _Endpoint) -> PeerOwner:
    """The Terminal Services session of the process owning the client socket, compared with ours.

    Windows has no cheap uid per socket; the session is what separates users on a terminal server. Two users
    in one session (`runas`) are not told apart. If Windows will not tell the peer process's session, refuse.
    Dual-stack clients' sockets may be listed in the IPv6 table (as ::ffff:127.0.0.1), so both are read.
    """
    import ctypes
    from ctypes import wintypes

    iphlpapi = ctypes.WinDLL("iphlpapi")  # type: ignore[attr-defined]
    kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    tcp_table_owner_pid_all, error_insufficient_buffer = 5, 122

    class Row4(ctypes.Structure):  # MIB_TCPROW_OWNER_PID
        _fields_ = [(name, wintypes.DWORD) for name in
                    ("state", "local_addr", "local_port", "remote_addr", "remote_port", "pid")]

    class Row6(ctypes.Structure):  # MIB_TCP6ROW_OWNER_PID
        _fields_ = [("local_addr", ctypes.c_ubyte * 16), ("local_scope", wintypes.DWORD),
                    ("local_port", wintypes.DWORD), ("remote_addr", ctypes.c_ubyte * 16),
                    ("remote_scope", wintypes.DWORD), ("remote_port", wintypes.DWORD),
                    ("state", wintypes.DWORD), ("pid", wintypes.DWORD)]

    def table(family: int, row_type: type[ctypes.Structure]) -> list[Any]:
        size = wintypes.DWORD(0)
        buffer = ctypes.create_string_buffer(4)
        for _attempt in range(5):  # the table may grow between the size query and the read
            result = iphlpapi.GetExtendedTcpTable(buffer, ctypes.byref(size), False, family,
                                                  tcp_table_owner_pid_all, 0)
            if result == 0:
                count = ctypes.c_uint32.from_buffer(buffer).value
                return list((row_type * count).from_buffer(buffer, ctypes.sizeof(wintypes.DWORD)))
            if result != error_insufficient_buffer:
                raise OSError(result, "GetExtendedTcpTable failed")
            buffer = ctypes.create_string_buffer(size.value + 16 * ctypes.sizeof(row_type))
        raise OSError(error_insufficient_buffer, "GetExtendedTcpTable kept growing")

    def session_of(pid: int) -> int | None:
        session = wintypes.DWORD()
        return session.value if kernel32.ProcessIdToSessionId(wintypes.DWORD(pid), ctypes.byref(session)) else None

    peer_pid = None
    saw_our_socket = False
    for family, row_type in ((socket.AF_INET, Row4), (23, Row6)):  # 23: Windows' AF_INET6
        for row in table(family, row_type):
            here = windows_endpoint(bytes(row.local_addr) if family != socket.AF_INET else row.local_addr,
                                    row.local_port)
            there = windows_endpoint(bytes(row.remote_addr) if family != socket.AF_INET else row.remote_addr,
                                     row.remote_port)
            if (here, there) == (local, peer) and row.pid == os.getpid():
                saw_our_socket = True
            elif (here, there) == (peer, local) and peer_pid is None:
                peer_pid = row.pid
        if peer_pid is not None:
            break
    ours = session_of(os.getpid())
    if ours is None or not saw_our_socket:
        return PeerOwner(PeerKind.CANNOT_TELL, reason="the Windows socket table does not list this agent's socket")
    if peer_pid is None:
        return PeerOwner(PeerKind.NOT_FOUND, reason="the client's socket is not in the Windows socket table")
    theirs = session_of(peer_pid)
    if theirs is None:
        return PeerOwner(PeerKind.NOT_FOUND, reason="Windows did not tell the client process's session")
    if theirs == ours:
        return PeerOwner(PeerKind.SAME_USER, session=theirs)
    return PeerOwner(PeerKind.OTHER_USER, session=theirs)


# --- what a refused client gets ----------------------------------------------------------------------------------


def websocket_refusal(request: http.HttpRequest, reason: str) -> ServerProtocol:
    """A protocol whose queued output completes the handshake, sends an E-IMZO-shaped -9999 `reason` and
    closes with 1008; feed it the page's bytes until it is CLOSED.

    A refused handshake would leave the page with a bare network error; a reply tells the person why.
    """
    protocol = ServerProtocol(extensions=None, max_size=REFUSED_FRAME_BYTES)
    protocol.receive_data(request.raw)
    events = protocol.events_received()
    response = protocol.accept(events[0]) if events else protocol.reject(400, "bad handshake")
    protocol.send_response(response)
    if response.status_code == 101:
        protocol.send_text(encode_reply(failure(Status.OTHER, reason)).encode("utf-8"))
        protocol.send_close(CLOSE_POLICY_VIOLATION, "another user's agent")
    return protocol


async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: http.HttpRequest,
                 owner: PeerOwner, lang: str) -> None:
    """Answer a connection `owner` may not make: 403 to plain HTTP, a readable reason to a WebSocket page."""
    if owner.kind is PeerKind.OTHER_USER:
        log.warning("refused a connection from another user of this computer (%s)", owner.describe())
    else:
        log.warning("refused a connection whose user could not be identified: %s", owner.reason)
    if not (request.is_websocket_upgrade() and request.path == http.WEBSOCKET_PATH):
        writer.write(http.forbidden_other_user(lang))
        return
    protocol = websocket_refusal(request, i18n.text(lang, "reasons", "other_user"))
    # Dropping the connection right away would reset it if the page already sent its request, and a reset may
    # discard our reply unread: wait (briefly) for the page's own close frame, as a WebSocket server should.
    eof = False
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while True:
                chunks = protocol.data_to_send()
                writer.write(b"".join(chunks))
                await writer.drain()
                if b"" in chunks or protocol.state is State.CLOSED or eof:
                    return  # the protocol says: close the TCP connection now
                data = await reader.read(64 * 1024)
                if data:
                    protocol.receive_data(data)
                else:
                    eof = True
                    protocol.receive_eof()
                protocol.events_received()  # the page's request and close frames: nothing to answer
