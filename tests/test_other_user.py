"""Connections from another OS user of the same computer are refused (server/peer.py, issue 10).

The socket-owner lookups run against real sockets; the refusal is checked end to end with the real agent and a
second real Unix user (tests/other_user.py): as root on CI, skipped with the reason elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import TEST_CONFIG, AgentProcess, http_exchange, start_agent
from other_user import OtherUser, other_user, scratch_dir, start_agent_as
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from eimzo_agent import i18n
from eimzo_agent.server import http, peer
from eimzo_agent.server.peer import PeerKind

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="socket owners are read the Linux way")

#: Both Linux lookups: the kernel's sock_diag netlink query, and the /proc/net/tcp{,6} tables it falls back to.
LOOKUPS = [pytest.param(True, id="sock_diag"), pytest.param(False, id="proc")]

CLIENT_SCRIPT = r'''
import json, socket, sys
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

mode, port = sys.argv[1], int(sys.argv[2])
if mode == "ws":  # what a portal's page does: open, send a request at once, read the answer and the close
    url = f"ws://127.0.0.1:{port}/service/cryptapi"
    with connect(url, origin="http://localhost:8080", compression=None, open_timeout=10, close_timeout=10) as ws:
        try:
            ws.send(json.dumps({"plugin": "pfx", "name": "list_all_certificates", "arguments": []}))
        except ConnectionClosed:
            pass  # the agent may have closed already: its reply is still queued for recv()
        reply = ws.recv(10)
        try:
            ws.recv(10)
            extra = True
        except ConnectionClosed:
            extra = False
        close = ws.protocol.close_rcvd
    print(json.dumps({"reply": json.loads(reply), "close": close.code if close else None, "extra": extra}))
elif mode == "http":
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    print(json.dumps({"answer": data.decode("utf-8", "replace")}))
elif mode == "hold":  # connect, say from which port, stay connected until stdin closes
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        print(sock.getsockname()[1], flush=True)
        sys.stdin.read()
'''


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with server:
        yield server


def accept_from(server: socket.socket, family: int = socket.AF_INET) -> tuple[socket.socket, socket.socket]:
    client = socket.socket(family)
    client.connect(("::ffff:127.0.0.1" if family == socket.AF_INET6 else "127.0.0.1", server.getsockname()[1]))
    accepted, _ = server.accept()
    return client, accepted


def lookup(accepted: socket.socket, sock_diag: bool) -> peer.PeerOwner:
    return peer.peer_owner(accepted.getsockname(), accepted.getpeername(), sock_diag=sock_diag)


# --- the lookups, on real sockets -------------------------------------------------------------------------------


@pytest.mark.parametrize("sock_diag", LOOKUPS)
def test_own_connection_is_the_same_user(listener: socket.socket, sock_diag: bool) -> None:
    client, accepted = accept_from(listener)
    with client, accepted:
        owner = lookup(accepted, sock_diag)
    assert (owner.kind, owner.uid) == (PeerKind.SAME_USER, os.geteuid())
    assert owner.allowed


@pytest.mark.parametrize("sock_diag", LOOKUPS)
def test_dual_stack_client_is_found(listener: socket.socket, sock_diag: bool) -> None:
    if not socket.has_ipv6 or not Path("/proc/net/tcp6").exists():
        pytest.skip("no IPv6 in this kernel")
    client, accepted = accept_from(listener, socket.AF_INET6)
    with client, accepted:
        owner = lookup(accepted, sock_diag)
    assert (owner.kind, owner.uid) == (PeerKind.SAME_USER, os.geteuid())


@pytest.mark.parametrize("sock_diag", LOOKUPS)
def test_client_that_closed_its_socket_is_refused(listener: socket.socket, sock_diag: bool) -> None:
    # A closed socket lingers (FIN_WAIT2) with uid 0 and no inode: root's uid must not be read into it.
    client, accepted = accept_from(listener)
    with accepted:
        client.close()
        owner = lookup(accepted, sock_diag)
    assert owner.kind is PeerKind.NOT_FOUND
    assert not owner.allowed


@pytest.mark.parametrize("sock_diag", LOOKUPS)
def test_unknown_client_is_refused(listener: socket.socket, sock_diag: bool) -> None:
    with socket.socket() as unconnected:
        unconnected.bind(("127.0.0.1", 0))
        owner = peer.peer_owner(listener.getsockname(), unconnected.getsockname(), sock_diag=sock_diag)
    assert owner.kind is PeerKind.NOT_FOUND
    assert not owner.allowed


def test_unreadable_or_empty_socket_table_cannot_tell(listener: socket.socket, tmp_path: Path) -> None:
    client, accepted = accept_from(listener)
    with client, accepted:
        local, remote = peer.endpoint(accepted.getsockname()), peer.endpoint(accepted.getpeername())
        missing = peer.linux_peer_owner(local, remote, proc_net=tmp_path / "no-proc", sock_diag=False)
        # A /proc that lists no sockets at all (WSL 1, some sandboxes) shows nothing about the peer either.
        empty = tmp_path / "empty"
        empty.mkdir()
        header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        (empty / "tcp").write_text(header)
        (empty / "tcp6").write_text(header)
        unlisted = peer.linux_peer_owner(local, remote, proc_net=empty, sock_diag=False)
    assert missing.kind is PeerKind.CANNOT_TELL and missing.allowed
    assert "no-proc" in missing.reason
    assert unlisted.kind is PeerKind.CANNOT_TELL and unlisted.allowed


def test_cannot_tell_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eimzo_agent.server.peer"):
        first = peer.peer_owner("", "")
        second = peer.peer_owner(None, None)
    assert first.kind is second.kind is PeerKind.CANNOT_TELL
    assert first.allowed
    assert len([r for r in caplog.records if "cannot tell which OS user" in r.getMessage()]) == 1


def test_windows_row_decoding() -> None:
    # MIB_TCPROW_OWNER_PID holds 127.0.0.1 as the bytes 7f 00 00 01 and port 64646 (0xFC86) as fc 86 in the low
    # 16 bits (garbage above); the IPv6 table holds raw bytes, ::ffff:127.0.0.1 for dual-stack sockets.
    assert peer.windows_endpoint(0x0100007F, 0xABCD86FC) == peer.endpoint(("127.0.0.1", 64646))
    mapped = bytes(10) + b"\xff\xff\x7f\x00\x00\x01"
    assert peer.windows_endpoint(mapped, 0x86FC) == peer.endpoint(("127.0.0.1", 64646))


# --- the refusal a page reads (sans-I/O, no sockets) -------------------------------------------------------------


def test_websocket_refusal_is_a_readable_eimzo_reply_then_close_1008() -> None:
    client = ClientProtocol(parse_uri("ws://127.0.0.1:64646/service/cryptapi"))
    handshake = client.connect()
    client.send_request(handshake)
    request = http.parse_request_head(b"".join(client.data_to_send()))
    server = peer.websocket_refusal(request, "someone else's agent")
    client.receive_data(b"".join(server.data_to_send()))
    events = client.events_received()
    assert isinstance(events[0], Response) and events[0].status_code == 101
    frames = [e for e in events[1:] if isinstance(e, Frame)]
    assert frames[0].opcode is Opcode.TEXT
    assert json.loads(frames[0].data) == {"success": False, "status": -9999, "reason": "someone else's agent"}
    assert client.close_rcvd is not None and client.close_rcvd.code == 1008


def test_plain_http_refusal_is_403_in_the_agents_language() -> None:
    answer = http.forbidden_other_user("uz")
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert i18n.text("uz", "reasons", "other_user").encode() in answer


# --- a second real user ----------------------------------------------------------------------------------------


@pytest.fixture
def other() -> OtherUser:
    return other_user()


@pytest.fixture
def client_script() -> Iterator[Path]:
    with scratch_dir() as folder:
        script = folder / "client.py"
        script.write_text(CLIENT_SCRIPT)
        script.chmod(0o644)
        yield script


def run_client(user: OtherUser, script: Path, mode: str, port: int) -> dict[str, object]:
    result = subprocess.run(user.python_command(str(script), mode, str(port)), env=user.env(script.parent),
                            cwd=script.parent, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("sock_diag", LOOKUPS)
def test_lookup_names_the_other_users_uid(listener: socket.socket, other: OtherUser, client_script: Path,
                                          sock_diag: bool) -> None:
    holder = subprocess.Popen(
        other.python_command(str(client_script), "hold", str(listener.getsockname()[1])),
        env=other.env(client_script.parent), cwd=client_script.parent,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(holder.stdout.readline())  # type: ignore[union-attr]
        accepted, peername = listener.accept()
        with accepted:
            assert peername[1] == port
            owner = lookup(accepted, sock_diag)
    finally:
        holder.communicate("", timeout=30)
    assert (owner.kind, owner.uid) == (PeerKind.OTHER_USER, other.uid)
    assert not owner.allowed
    assert owner.describe() == f"uid {other.uid}"


def test_agent_refuses_another_users_page_and_serves_its_own(tmp_path: Path, agent_env: dict[str, str],
                                                              other: OtherUser, client_script: Path) -> None:
    agent = start_agent(tmp_path / "agent", env={**agent_env, "LANG": "uz_UZ.UTF-8"})
    try:
        reason = i18n.text("uz", "reasons", "other_user")
        refused = run_client(other, client_script, "ws", agent.port)
        assert refused == {"reply": {"success": False, "status": -9999, "reason": reason}, "close": 1008,
                           "extra": False}
        page = run_client(other, client_script, "http", agent.port)
        assert str(page["answer"]).startswith("HTTP/1.1 403 ")
        assert reason in str(page["answer"])
        # The agent's own user is served as before, by the same agent.
        assert agent.call("list_all_certificates", plugin="pfx")["success"] is True
        status, _, _ = http_exchange(agent.port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n\r\n".encode())
        assert status == 200
    finally:
        agent.stop()
    log = agent.log()
    assert f"refused a connection from another user of this computer (uid {other.uid})" in log
    assert log.count("refused a connection from another user") == 2


def test_root_may_use_another_users_agent(tmp_path: Path, other: OtherUser) -> None:
    with scratch_dir(other) as home:
        process, port = start_agent_as(other, home, TEST_CONFIG, tmp_path / "agent.log")
        agent = AgentProcess(process, port, tmp_path / "agent.log")
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            assert f"Uid:\t{other.uid}\t" in status  # the agent really runs as the other user
            assert agent.call("list_all_certificates", plugin="pfx")["success"] is True
            assert agent.call("version")["success"] is True
        finally:
            agent.stop()
    assert "refused a connection" not in agent.log()
