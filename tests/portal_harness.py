"""Run the real verification server (`eimzo-agent portal serve`) as a subprocess, and speak to it as a portal's
backend does with E-IMZO-server: raw base64 bodies, `Host` and `X-Real-IP`, `|`-joined parts, over plain HTTP.

Keys come from `eimzo-agent dev mint-key` (agent_harness.mint); login signatures are made here, without a browser
or an agent, with the minted .pfx through eimzo_agent.crypto: the same CMS code the agent signs with, so a real
attached PKCS#7 over the challenge (tests of the browser path use the real agent).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_harness import PASSWORD, mint, stop_process

from eimzo_agent.crypto import cms
from eimzo_agent.keys.pkcs12 import UnlockedKey, open_pfx

READY = "eimzo-agent portal: listening on "
BACKEND_READY = "eimzo-agent portal: backend on "


@dataclass
class PortalProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    #: The separate /backend/* listener, when the server was started with one.
    backend_url: str | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class PortalLaunch:
    """A server process started but maybe not ready yet: start several, then `wait` for each (they start in
    parallel: a Python process with aiohttp takes a second or two)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def wait(self, timeout: float = 30) -> PortalProcess:
        """Until the ready line; reads stdout's bytes itself (a buffered reader could hold the backend line and
        the ready line together while select() waits for more)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        output, backend_url = b"", None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            chunk = os.read(fd, 4096) if ready else b""
            output += chunk
            for line in output.decode(errors="replace").splitlines(keepends=True):
                if not line.endswith("\n"):
                    continue
                if line.startswith(BACKEND_READY):
                    backend_url = line[len(BACKEND_READY):].strip()
                elif line.startswith(READY):
                    return PortalProcess(self.process, line[len(READY):].strip(), self.log_path, backend_url)
            if (ready and not chunk) or (not ready and self.process.poll() is not None):
                break
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"the portal server did not start:\n{self.log_path.read_text(errors='replace')}")


def launch_portal(tmp: Path, *args: str, config: str | None = None,
                  env: dict[str, str] | None = None) -> PortalLaunch:
    """Start `eimzo-agent portal serve --port 0 ARGS` (with `config` as its portal.toml). The environment is the
    caller's (tests run with a temporary HOME, see conftest.py)."""
    tmp.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "eimzo_agent", "portal", "serve", "--port", "0"]
    if config is not None:
        config_file = tmp / "portal.toml"
        config_file.write_text(config)
        command += ["--config", str(config_file)]
    log_path = tmp / "portal.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=log_file,
                                   env=env or dict(os.environ))
    return PortalLaunch(process, log_path)


def start_portal(tmp: Path, *args: str, config: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 30) -> PortalProcess:
    """`launch_portal` and wait until it listens."""
    return launch_portal(tmp, *args, config=config, env=env).wait(timeout)


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


def call(base_url: str, path: str, body: str | bytes | None = None, *, host: str | None = None,
         ip: str | None = None, method: str | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> Answer:
    """One request as E-IMZO-server's clients make it: the raw body, Host and X-Real-IP as given."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(base_url + path, data=data, method=method or ("POST" if data is not None
                                                                                    else "GET"))
    if host is not None:
        request.add_header("Host", host)
    if ip is not None:
        request.add_header("X-Real-IP", ip)
    if data is not None:
        request.add_header("Content-Type", "application/octet-stream")  # what the vendor's Java client sends
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Answer(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------------------------
# Keys and signatures


@dataclass(frozen=True)
class PortalKey:
    path: Path
    pinfl: str
    alg: str

    def unlocked(self) -> UnlockedKey:
        return open_pfx(self.path.read_bytes(), PASSWORD)

    def sign(self, content: bytes, *, detached: bool = False, signing_time: dt.datetime | None = None) -> bytes:
        """A PKCS#7 over `content` as the agent's create_pkcs7 makes it with this key."""
        signer = self.unlocked().signer
        return cms.create_pkcs7(content, signer, detached=detached, signing_time=signing_time,
                                signed_attributes=signer.cms_profile).cms_der


def mint_key(ca: Path, out: Path, alg: str, pinfl: str, *extra: str) -> PortalKey:
    """A key of the dev CA in `ca` (O'zDSt keys: its ozdst/ sub-CA), with the real `eimzo-agent dev mint-key`."""
    path = mint(ca, out, alg, "--cn", f"TEST {pinfl}", "--name", "ALI", "--surname", "VALIYEV", "--pinfl", pinfl,
                "--tin", pinfl[:9], *extra)
    return PortalKey(path, pinfl, alg)


def anchor_args(ca: Path) -> list[str]:
    """--trust-anchor options for the dev CA and its O'zDSt sub-CA."""
    return ["--trust-anchor", str(ca / "ca.crt.pem"), "--trust-anchor", str(ca / "ozdst" / "ca.crt.pem")]


def login(base_url: str, key: PortalKey, *, host: str = "portal.example", ip: str = "203.0.113.7",
          signing_time: dt.datetime | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole E-IMZO-server login: challenge, signature over it, /backend/auth; its JSON."""
    challenge = call(base_url, "/frontend/challenge", host=host, ip=ip).json()["challenge"]
    signed = key.sign(challenge.encode(), signing_time=signing_time)
    return call(base_url, "/backend/auth", b64(signed), host=host, ip=ip, headers=headers).json()
