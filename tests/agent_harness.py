"""Run the real agent as a subprocess and talk to it the way e-imzo.js does: a new socket per call."""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

PASSWORD = "Test-Passw0rd"
DEFAULT_ORIGIN = "http://localhost:8080"

ASKPASS_SCRIPT = """#!/bin/sh
# Test askpass: answers from files in its own folder, logs every question. "CANCEL" in a file = press Cancel.
# Secrets fall back to the "password" file; the consent question is answered "deny" unless a test says otherwise
# (never with a password: a test must not pass because a password happened to be an invalid consent answer).
ASKPASS_DIR="$(dirname "$0")"
echo "$EIMZO_AGENT_PROMPT_KIND $EIMZO_AGENT_ATTEMPT $EIMZO_AGENT_SITE" >> "$ASKPASS_DIR/log"
file="$ASKPASS_DIR/$EIMZO_AGENT_PROMPT_KIND"
if [ -f "$file" ]; then answer=$(cat "$file")
elif [ "$EIMZO_AGENT_PROMPT_KIND" = consent ]; then answer=deny
else answer=$(cat "$ASKPASS_DIR/password"); fi
[ "$answer" = "CANCEL" ] && exit 1
printf '%s\\n' "$answer"
"""


@dataclass
class Askpass:
    directory: Path
    program: Path

    def answer(self, password: str, kind: str = "password") -> None:
        (self.directory / kind).write_text(password)

    def questions(self) -> list[str]:
        log = self.directory / "log"
        return log.read_text().splitlines() if log.exists() else []

    def clear(self) -> None:
        (self.directory / "log").unlink(missing_ok=True)
        for kind in ("new_password", "repeat_new_password"):
            (self.directory / kind).unlink(missing_ok=True)


def make_askpass(tmp: Path) -> Askpass:
    directory = tmp / "askpass"
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / "askpass.sh"
    program.write_text(ASKPASS_SCRIPT)
    program.chmod(0o755)
    askpass = Askpass(directory, program)
    askpass.answer(PASSWORD)
    return askpass


def mint(ca: Path, out: Path, alg: str, *extra: str, password: str = PASSWORD) -> Path:
    """Mint a key with the real CLI (tests exercise `eimzo-agent dev mint-key` itself)."""
    result = subprocess.run(
        [sys.executable, "-m", "eimzo_agent", "dev", "mint-key", "--alg", alg, "--ca", str(ca), "--out", str(out),
         "--password", password, *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_file()
    return path


@dataclass
class AgentProcess:
    process: subprocess.Popen[str]
    port: int
    log_path: Path
    origin: str = DEFAULT_ORIGIN
    calls: int = field(default=0)
    wss_port: int | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/service/cryptapi"

    def call(self, name: str, *args: str, plugin: str | None = None, origin: str | None = "default",
             raw: str | bytes | None = None, timeout: float = 60) -> Any:
        """One E-IMZO call on a fresh socket; checks the agent closes with 1000 after its single reply."""
        origin = self.origin if origin == "default" else origin
        with connect(self.url, origin=origin, compression=None, max_size=None, open_timeout=10,
                     close_timeout=5) as ws:
            if raw is not None:
                ws.send(raw)
            else:
                request: dict[str, Any] = {"name": name, "arguments": list(args)}
                if plugin:
                    request["plugin"] = plugin
                ws.send(json.dumps(request))
            reply = ws.recv(timeout)
            try:
                ws.recv(10)
                raise AssertionError("agent sent a second frame")
            except ConnectionClosed:
                pass
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000, ws.protocol.close_rcvd
        self.calls += 1
        return json.loads(reply)

    def load_key(self, pfx: Path, origin: str | None = "default") -> str:
        """The keyId of the key file `pfx` for `origin`, found and loaded as a portal does (pfx.list_all_certificates,
        then pfx.load_key)."""
        listed = self.call("list_all_certificates", plugin="pfx", origin=origin)["certificates"]
        e = next(c for c in listed if c["name"] == pfx.stem)
        return self.call("load_key", e["disk"], e["path"], e["name"], e["alias"], plugin="pfx", origin=origin)["keyId"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s: the agent and the portal server both stop cleanly on SIGTERM."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: Tests call far faster than any portal, so the per-site rate limit is raised here (test_security checks it).
TEST_CONFIG = "[keys]\nscan_system_locations = false\n[limits]\nrequests_per_second = 10000\nrequest_burst = 10000\n"


def start_agent(tmp: Path, *args: str, config: str = TEST_CONFIG,
                env: dict[str, str] | None = None, tray: bool = False) -> AgentProcess:
    """`tray`: let the agent show its tray icon (give `env` a DISPLAY); by default it runs with --no-tray."""
    tmp.mkdir(parents=True, exist_ok=True)
    config_file = tmp / "agent-config.toml"
    config_file.write_text(config)
    log_path = tmp / "agent.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "eimzo_agent", "serve", "--ws-port", "0", "--wss-port", "0",
         *([] if tray else ["--no-tray"]), "--config", str(config_file), *args],
        stdout=subprocess.PIPE, stderr=log_file, text=True, env=env or dict(os.environ),
    )
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()  # type: ignore[union-attr]
            break
        if process.poll() is not None:
            break
    if "ready: ws://127.0.0.1:" not in line:
        process.kill()
        raise AssertionError(f"agent did not start: {line!r}\n{log_path.read_text()}")
    port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
    wss_port = int(line.split("wss://127.0.0.1:")[1].split("/")[0]) if "wss://" in line else None
    return AgentProcess(process, port, log_path, wss_port=wss_port)


def http_exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the agent closes after one response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
