"""Abuse from pages and local programs: limits, malformed traffic at volume, memory over time, secret hygiene."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agent_harness import (
    PASSWORD,
    TEST_CONFIG,
    AgentProcess,
    b64,
    make_askpass,
    mint,
    start_agent,
)
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import connect

from eimzo_agent.policy.limits import SiteLimiter


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_site_limiter_rate_and_concurrency() -> None:
    now = [0.0]
    limiter = SiteLimiter(rate=2.0, burst=3, max_running=2, clock=lambda: now[0])
    assert limiter.try_start("a") and limiter.try_start("a")
    assert not limiter.try_start("a")  # two in progress
    limiter.finish("a")
    assert limiter.try_start("a")  # third token of the burst
    limiter.finish("a")
    limiter.finish("a")
    assert not limiter.try_start("a")  # burst used up
    assert limiter.try_start("b")  # another site is unaffected
    now[0] += 0.5  # one token back at 2/s
    assert limiter.try_start("a")


def test_rate_limit_engages_and_other_sites_still_work(tmp_path: Path) -> None:
    agent = start_agent(tmp_path, config="[keys]\nscan_system_locations = false\n"
                        "[limits]\nrequests_per_second = 2\nrequest_burst = 5\n")
    try:
        statuses = []
        with connect(agent.url + "?keepConnection", origin="http://localhost:3000") as ws:
            for _ in range(30):
                ws.send(json.dumps({"name": "version"}))
                statuses.append(json.loads(ws.recv(10)))
        refused = [r for r in statuses if not r["success"]]
        assert 20 <= len(refused) <= 25, len(refused)
        assert refused[0] == {
            "success": False,
            "status": -9999,
            "reason": "Слишком много запросов с этого сайта. Повторите попытку через несколько секунд.",
        }
        assert agent.call("version", origin="http://127.0.0.1:3000")["success"] is True  # another site
        assert agent.call("version", origin="https://portal.example")["success"] is True
        time.sleep(1.1)
        assert agent.call("version", origin="http://localhost:3000")["success"] is True  # and it recovers
    finally:
        agent.stop()


def test_connection_limit(tmp_path: Path) -> None:
    agent = start_agent(tmp_path, config=TEST_CONFIG + "max_connections = 4\n")
    try:
        idle = [socket.create_connection(("127.0.0.1", agent.port)) for _ in range(4)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as extra:
            extra.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n\r\n".encode())
            assert extra.recv(100).startswith(b"HTTP/1.1 503")
        for s in idle:
            s.close()
        time.sleep(0.2)
        assert agent.call("version")["success"] is True
    finally:
        agent.stop()


def malformed_frames(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if kind == 1:
        return json.dumps({"plugin": rng.choice(["pfx", "pkcs7", "", "x", None, 7]), "name": rng.choice(
            ["load_key", "create_pkcs7", "list_disks", "nope", "", None]), "arguments": [
            rng.choice(["", "../..", "\x00", "A" * rng.randrange(0, 300), "/etc/passwd"])
            for _ in range(rng.randrange(0, 6))]})
    if kind == 2:
        return "[" * rng.randrange(1, 5000)
    if kind == 3:
        return json.dumps({"name": "apikey", "arguments": ["x"] * rng.randrange(0, 7)})
    if kind == 4:
        return '{"plugin":"pkcs7","name":"create_pkcs7","arguments":["' + "%" * rng.randrange(0, 50) + '","' \
            + f"{rng.getrandbits(128):032x}" + '","yes"]}'
    if kind == 5:
        return json.dumps(rng.random())
    if kind == 6:
        return '{"name":"version","arguments":' + json.dumps([[[]]] * rng.randrange(0, 10)) + "}"
    return json.dumps({"plugin": "pfx", "name": "list_certificates", "arguments": [rng.choice(["", "/", "C:\\"])]})


async def hammer(url: str, frames_per_socket: int, sockets: int, seed: int) -> int:
    async def one(index: int) -> int:
        rng = random.Random(seed + index)
        answered = 0
        # Origins that pass the site gate (local pages, an admin-allowed site), so every frame reaches parsing,
        # argument checks and the handlers; refused sites are tested elsewhere.
        async with aconnect(url + "?keepConnection", origin=rng.choice(
                ["http://localhost:1", "http://127.0.0.1:2", "https://allowed.example"]), compression=None,
                max_size=None) as ws:
            for _ in range(frames_per_socket // 50):
                for _ in range(50):
                    await ws.send(malformed_frames(rng))
                for _ in range(50):
                    reply = json.loads(await ws.recv())
                    assert isinstance(reply, dict | list)
                    answered += 1
        return answered

    return sum(await asyncio.gather(*(one(i) for i in range(sockets))))


async def bad_connections(port: int, count: int) -> None:
    garbage = [
        b"\x16\x03\x01\x02\x00garbage",
        b"GET /service/cryptapi HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() + b"\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"GET " + b"/a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"",
        b"OPTIONS * HTTP/1.1\r\nHost: localhost:" + str(port).encode() + b"\r\n\r\n",
    ]
    for i in range(count):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(garbage[i % len(garbage)])
            await writer.drain()
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (OSError, TimeoutError):
            pass


def test_hundred_thousand_malformed_frames_and_connections(tmp_path: Path) -> None:
    root = tmp_path / "flash"
    mint(tmp_path / "ca", root, "p256", "--cn", "FUZZ TEST", "--pinfl", "31234567890123")
    askpass = make_askpass(tmp_path)
    agent = start_agent(tmp_path / "agent", "--key-root", str(root), "--askpass", str(askpass.program),
                        "--log-level", "WARNING",
                        config=TEST_CONFIG + '[sites]\nallowed_domains = ["allowed.example"]\n')
    try:
        answered = asyncio.run(hammer(agent.url, frames_per_socket=5000, sockets=20, seed=1))
        assert answered == 100_000
        asyncio.run(bad_connections(agent.port, 600))
        # Still correct afterwards: a full signing round trip.
        entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
        key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                            plugin="pfx")["keyId"]
        reply = agent.call("create_pkcs7", b64(b"after the storm"), key_id, "no", plugin="pkcs7")
        assert reply["success"] is True and agent.process.poll() is None
        assert "Traceback" not in agent.log()
    finally:
        agent.stop()


def test_200_mib_pushed_through_one_keep_connection_socket_while_a_request_waits(tmp_path: Path) -> None:
    """A page that keeps sending while its request waits on a question must fill its own TCP buffers, not the
    agent's memory: the agent's RSS stays within 30 MB of its idle figure while 200 MiB go through one socket."""
    askpass = make_askpass(tmp_path)
    gate = askpass.directory / "go"
    program = askpass.program.read_text().replace(
        'if [ -f "$file" ]', f'while [ ! -f "{gate}" ]; do sleep 0.05; done\nif [ -f "$file" ]', 1)
    askpass.program.write_text(program)
    askpass.answer("once", "consent")
    agent = start_agent(tmp_path / "agent", "--askpass", str(askpass.program), "--log-level", "WARNING")
    try:
        assert agent.call("version")["success"] is True
        time.sleep(0.5)
        idle = rss_kib(agent.process.pid)
        peak = [idle]
        sampling = True

        def sample() -> None:
            while sampling:
                peak[0] = max(peak[0], rss_kib(agent.process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        frame = json.dumps({"name": "version", "arguments": ["x" * (1024 * 1024 - 40)]})
        count = 200
        replies: list[dict] = []
        with connect(agent.url + "?keepConnection", origin="https://portal.example.uz", compression=None,
                     max_size=None, open_timeout=10) as ws:
            ws.send(json.dumps({"plugin": "pfx", "name": "list_disks", "arguments": []}))  # waits on the question

            def push() -> None:
                for _ in range(count):
                    ws.send(frame)

            pusher = threading.Thread(target=push)
            pusher.start()
            time.sleep(3)  # the page pushes as fast as the agent lets it while the question is open
            stalled_at = peak[0]
            gate.write_text("")  # the person answers: everything queued is answered in turn
            while len(replies) < count + 1:
                replies.append(json.loads(ws.recv(60)))
            pusher.join(60)
        sampling = False
        sampler.join()
        assert replies[0] == {"success": True, "status": 1, "disks": []}
        assert all(r["status"] == 0 for r in replies[1:])  # version takes no argument: function_arguments
        assert stalled_at - idle <= 30 * 1024, f"RSS grew by {(stalled_at - idle) // 1024} MB while the page pushed"
        assert peak[0] - idle <= 30 * 1024, f"RSS grew by {(peak[0] - idle) // 1024} MB over the whole run"
    finally:
        agent.stop()


def test_soak_ten_thousand_calls_memory_stays_flat(tmp_path: Path) -> None:
    agent = start_agent(tmp_path, "--log-level", "WARNING")

    async def calls(n: int) -> None:
        for _ in range(n):
            async with aconnect(agent.url, origin="http://localhost:1", compression=None) as ws:
                await ws.send('{"name":"version"}')
                await ws.recv()

    try:
        asyncio.run(calls(500))  # warm-up: imports, caches, allocator pools
        before = rss_kib(agent.process.pid)
        asyncio.run(calls(10_000))
        after = rss_kib(agent.process.pid)
        assert after <= before * 1.10, (before, after)
    finally:
        agent.stop()


@pytest.fixture
def signing_agent(tmp_path: Path) -> tuple[AgentProcess, Path, Path]:
    root = tmp_path / "flash"
    pfx = mint(tmp_path / "ca", root, "p256", "--cn", "SECRET TEST", "--pinfl", "31234567890123")
    askpass = make_askpass(tmp_path)
    agent = start_agent(tmp_path / "agent", "--key-root", str(root), "--askpass", str(askpass.program),
                        "--log-level", "DEBUG")
    yield agent, pfx, askpass.directory
    agent.stop()


def sign_once(agent: AgentProcess) -> dict:
    entry = agent.call("list_all_certificates", plugin="pfx")["certificates"][0]
    key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                        plugin="pfx")["keyId"]
    return agent.call("create_pkcs7", b64(b"secret hygiene"), key_id, "no", plugin="pkcs7")


def journal_path() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "eimzo-agent" / "journal.jsonl"


def test_no_password_or_key_bytes_in_logs_journal_or_replies(signing_agent: tuple[AgentProcess, Path, Path]) -> None:
    agent, pfx, _ = signing_agent
    reply = sign_once(agent)
    assert reply["success"] is True
    key, _, _ = pkcs12.load_key_and_certificates(pfx.read_bytes(), PASSWORD.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    d = key.private_numbers().private_value.to_bytes(32, "big")
    secrets = [PASSWORD.encode(), PASSWORD.encode("utf-16-be"), d, d.hex().encode(), base64.b64encode(d)]
    agent.stop()  # flush everything
    haystacks = {
        "log": Path(agent.log_path).read_bytes(),
        "journal": journal_path().read_bytes(),
        "reply": json.dumps(reply).encode() + base64.b64decode(reply["pkcs7_64"]),
    }
    for name, data in haystacks.items():
        assert data, name
        for secret in secrets:
            assert secret not in data, f"a secret leaked into the {name}"


def test_journal_entry_survives_sigkill_right_after_signing(signing_agent: tuple[AgentProcess, Path, Path]) -> None:
    agent, _, _ = signing_agent
    assert sign_once(agent)["success"] is True
    os.kill(agent.process.pid, signal.SIGKILL)
    agent.process.wait()
    lines = journal_path().read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry["result"] == "signed" and entry["site"] == "http://localhost:8080"
    assert entry["operation"] == "pkcs7.create_pkcs7" and entry["owner"] == "SECRET TEST"
    assert entry["content_sha256"] == hashlib.sha256(b"secret hygiene").hexdigest()
    shown = subprocess.run([sys.executable, "-m", "eimzo_agent", "journal", "--json"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert json.loads(shown[-1]) == entry
    human = subprocess.run([sys.executable, "-m", "eimzo_agent", "journal"], capture_output=True, text=True,
                           check=True).stdout
    assert "signed" in human and "SECRET TEST" in human


def test_journal_records_cancel(signing_agent: tuple[AgentProcess, Path, Path]) -> None:
    agent, _, askpass_dir = signing_agent
    (askpass_dir / "password").write_text("CANCEL")
    assert sign_once(agent)["status"] == -5000
    entry = json.loads(journal_path().read_text().splitlines()[-1])
    assert entry["result"] == "cancelled" and entry["certificate_serial"]


def test_the_owner_stays_out_of_the_askpass_command_line_and_the_info_log(tmp_path: Path) -> None:
    """Every user of the machine can read a process's arguments (ps, /proc/*/cmdline): the question's name and
    PINFL go to the askpass program through its environment. The agent's INFO log names no owner either."""
    root = tmp_path / "flash"
    mint(tmp_path / "ca", root, "p256", "--cn", "QODIROVA MUXLISA", "--pinfl", "49876543210987", "--tin", "498765432")
    askpass = make_askpass(tmp_path)
    seen = askpass.directory / "seen"
    askpass.program.write_text(askpass.program.read_text().replace(
        'ASKPASS_DIR="$(dirname "$0")"\n',
        'ASKPASS_DIR="$(dirname "$0")"\n'
        f'tr "\\\\0" "\\\\n" < /proc/$$/cmdline >> "{seen}.argv"; echo "$EIMZO_AGENT_PROMPT" >> "{seen}.env"\n'))
    agent = start_agent(tmp_path / "agent", "--key-root", str(root), "--askpass", str(askpass.program),
                        "--log-level", "INFO")
    try:
        assert sign_once(agent)["success"] is True
        (askpass.directory / "password").write_text("wrong-password")
        assert sign_once(agent)["status"] == -5000
        assert agent.call("list_disks", plugin="pfx", origin="https://portal.example.uz")["status"] == -1022
    finally:
        agent.stop()
    argv = Path(f"{seen}.argv").read_text()
    env = Path(f"{seen}.env").read_text()
    for private in ("QODIROVA", "qodirova", "MUXLISA", "49876543210987", "498765432", "portal.example.uz"):
        assert private not in argv, f"{private} is on the askpass command line"
        assert private not in agent.log(), f"{private} is in the agent's INFO log"
    assert "QODIROVA" in env and "49876543210987" in env  # the program still gets the whole question
